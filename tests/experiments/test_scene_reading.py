"""experiments/probes/scene_reading.py: the parse of "I see …" sentences and its counts."""

from __future__ import annotations

import pytest

from experiments.probes.scene_reading import objects_seen, scene_reading

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


def test_landing_tells_target_other_object_and_empty_background():
    from types import SimpleNamespace

    from experiments.probes.scene_reading import landing, landings
    from visurf.data.synth_scene import SceneObject, render_scene

    red = SceneObject("red", "square", (4, 4, 25, 25))
    blue = SceneObject("blue", "circle", (60, 60, 81, 81))
    image = render_scene([red, blue], 112, background="gradient")

    def answer(x, y):
        return f'<think>…</think><answer>[{{"bbox_2d":[{x - 5},{y - 5},{x + 5},{y + 5}],"point_2d":[{x},{y}]}}]</answer>'

    target = red.label()
    assert landing(image, answer(14, 14), target) == "target"
    assert landing(image, answer(70, 70), target) == "other object"
    assert landing(image, answer(100, 40), target) == "empty"
    assert landing(image, "<answer>[]</answer>", target) == "no answer"
    assert landing(image, "no tags at all", target) == "no answer"

    rows = [
        (SimpleNamespace(problem="the red square", image=image, objects=[target]), answer(14, 14)),
        (SimpleNamespace(problem="the red shape", image=image, objects=[target]), answer(100, 40)),
        (
            SimpleNamespace(problem="the square left of the blue circle", image=image, objects=[target]),
            answer(70, 70),
        ),
    ]
    shares = landings(rows)
    assert shares["single"] == {"target": 0.5, "other object": 0.0, "empty": 0.5, "no answer": 0.0, "rows": 2}
    assert shares["relation"]["other object"] == 1.0 and shares["relation"]["rows"] == 1


def test_binding_compares_landings_with_chance_and_the_first_listed_object():
    from types import SimpleNamespace

    from experiments.probes.scene_reading import binding, scene_objects
    from visurf.data.synth_scene import SceneObject, render_scene

    left = SceneObject("red", "circle", (4, 32, 25, 53))
    right = SceneObject("green", "square", (60, 4, 81, 25))
    image = render_scene([right, left], 112, background="gradient")
    parts = scene_objects(image)
    assert len(parts) == 2 and (14, 42) in parts[0] and (70, 14) in parts[1]  # left to right

    def answer(x, y):
        return f'<answer>[{{"bbox_2d":[{x - 5},{y - 5},{x + 5},{y + 5}],"point_2d":[{x},{y}]}}]</answer>'

    def row(target, x, y):
        return SimpleNamespace(image=image, objects=[target.label()]), answer(x, y)

    rows = [
        row(right, 14, 42),  # the first-listed object, not the target
        row(right, 70, 14),  # the target
        row(left, 14, 42),  # the target, first-listed
        row(left, 100, 100),  # empty background: not counted
        (SimpleNamespace(image=image, objects=[left.label()]), "<answer>[]</answer>"),  # no answer
    ]
    b = binding(rows)
    assert b["rows"] == 3 and b["chance"] == 0.5
    assert b["target"] == pytest.approx(2 / 3) and b["first listed"] == pytest.approx(2 / 3)
    assert b["target first listed"] == pytest.approx(1 / 3)
    assert binding(rows[3:]) == {"rows": 0}
