"""experiments/scene_reading.py: the parse of "I see …" sentences and its counts."""

from __future__ import annotations

import pytest

from experiments.scene_reading import objects_seen, scene_reading

TRUE = "I see a red square at (1,2), a blue circle at (3,1) and a green square at (4,4). The red square is the target."


def test_objects_seen_parses_plain_and_positioned_sentences():
    assert objects_seen(TRUE) == [("red", "square"), ("blue", "circle"), ("green", "square")]
    assert objects_seen("<think>I see a red circle and a blue square. None of them is…") == [
        ("red", "circle"),
        ("blue", "square"),
    ]
    assert objects_seen("<answer>[]</answer>") is None


def test_scene_reading_counts_colours_and_shapes_of_correctly_counted_scenes():
    pairs = [
        (TRUE, "<think>I see a red circle, a blue circle and a green square. …"),  # one shape wrong
        (TRUE, "<think>I see a red square and a blue circle. …"),  # one object missing
        (TRUE, "<think>" + TRUE),  # exact
    ]
    result = scene_reading(pairs)
    assert result["rows"] == 3 and result["count"] == pytest.approx(2 / 3)
    assert result["colour"] == 1.0 and result["shape"] == pytest.approx(5 / 6)
    assert result["exact"] == pytest.approx(1 / 3)
