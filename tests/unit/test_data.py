"""Loading ViSurf-schema datasets (parquet, arrow, jsonl + images) and preparing examples."""

from __future__ import annotations

import io
import json
import logging

import datasets
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from visurf.data import (
    PROMPT_TEMPLATE,
    BadRowError,
    Example,
    build_prompt,
    collate_examples,
    load_split,
    prepare_dataset,
    prepare_example,
)
from visurf.data.labels import scale_objects
from visurf.data.synth import features, generate_rows, write_splits


def _png(width=224, height=112, color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def _row(**changes) -> dict:
    row = {
        "id": "row-7",
        "problem": "the red square",
        "solution": '[{"bbox_2d": [20, 10, 120, 60], "point_2d": [70, 35]}]',
        "image": {"bytes": _png(), "path": None},
        "img_height": 112,
        "img_width": 224,
    }
    row.update(changes)
    return row


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    write_splits(out, num_train=24, num_test=8, seed=0)
    return out


def test_synth_parquet_round_trip(synth_dir):
    rows = generate_rows(24, seed=0)
    ds = load_split(synth_dir)
    assert len(ds) == 24 and len(load_split(synth_dir, split="test")) == 8
    examples, skipped = prepare_dataset(ds, 112)
    assert skipped == 0 and len(examples) == 24
    for ex, row in zip(examples, rows):
        assert isinstance(ex, Example)
        assert (ex.id, ex.problem, ex.group, ex.think) == (
            row["id"],
            row["problem"],
            row["group"],
            row["think"],
        )
        assert ex.raw_solution == row["solution"]
        # same frame: the canonical solution holds the same objects, in the compact layout
        assert json.loads(ex.solution) == json.loads(row["solution"])
        assert ex.solution == json.dumps(json.loads(row["solution"]), separators=(",", ":"))
        assert ex.image.size == (112, 112) and ex.image.mode == "RGB"
        assert (ex.width, ex.height) == (112, 112)
        assert ex.prompt == build_prompt(row["problem"])


def test_synth_labels_follow_a_smaller_frame(synth_dir):
    examples, _ = prepare_dataset(load_split(synth_dir / "train.parquet"), 56)
    for ex in examples:
        for obj, raw in zip(ex.objects, json.loads(ex.raw_solution)):
            assert obj["bbox_2d"] == [(v + 1) // 2 for v in raw["bbox_2d"]]  # halved, rounded half up
        assert ex.image.size == (56, 56)


def test_missing_split_and_missing_file_name_where_they_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"valid\.parquet"):
        load_split(tmp_path, split="valid")
    with pytest.raises(FileNotFoundError, match="nope.parquet"):
        load_split(tmp_path / "nope.parquet")


def test_jsonl_with_relative_image_files(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(_png())
    row = _row(image="imgs/a.png")
    (tmp_path / "train.jsonl").write_text(json.dumps(row) + "\n")
    examples, _ = prepare_dataset(load_split(tmp_path), 112)
    assert examples[0].objects == [{"bbox_2d": [10, 10, 60, 60], "point_2d": [35, 35]}]


def test_jsonl_with_an_image_root(tmp_path):
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.png").write_bytes(_png())
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "data.jsonl").write_text(json.dumps(_row(image="a.png")) + "\n")
    ds = load_split(tmp_path / "meta" / "data.jsonl", image_root=tmp_path / "pics")
    examples, _ = prepare_dataset(ds, 112)
    assert examples[0].image.size == (112, 112)


def test_arrow_file(tmp_path):
    table = datasets.Dataset.from_list(generate_rows(3, seed=5), features=features()).data.table
    with pa.OSFile(str(tmp_path / "train.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    ds = load_split(tmp_path)
    examples, _ = prepare_dataset(ds, 112)
    assert [e.id for e in examples] == ["train-000000", "train-000001", "train-000002"]


def test_coordinates_scale_with_the_resize():
    ex = prepare_example(_row(), 112)
    assert ex.image.size == (112, 112)
    assert ex.objects == [{"bbox_2d": [10, 10, 60, 60], "point_2d": [35, 35]}]  # x halved, y unchanged
    assert ex.solution == '[{"bbox_2d":[10,10,60,60],"point_2d":[35,35]}]'
    assert ex.raw_solution == _row()["solution"]
    wide = prepare_example(_row(), (448, 56))  # (width, height)
    assert wide.objects == [{"bbox_2d": [40, 5, 240, 30], "point_2d": [140, 18]}]
    assert (wide.width, wide.height) == (448, 56) and wide.image.size == (448, 56)


def test_scaled_boxes_stay_non_empty_and_inside_the_frame():
    objs = [
        {"bbox_2d": [0.0, 0.0, 1.0, 1.0], "point_2d": [0.5, 0.5]},
        {"bbox_2d": [999, 5, 1000, 6], "point_2d": [1000, 6]},
    ]
    for obj in scale_objects(objs, (1000, 1000), (28, 28)):
        x1, y1, x2, y2 = obj["bbox_2d"]
        assert 0 <= x1 < x2 <= 28 and 0 <= y1 < y2 <= 28


def test_prompt_contains_the_problem_and_template_is_checked():
    ex = prepare_example(_row(), 112)
    assert "the red square" in ex.prompt and ex.prompt.startswith("Find the red square.")
    assert "{problem}" in PROMPT_TEMPLATE
    with pytest.raises(ValueError, match=r"\{problem\}"):
        build_prompt("x", template="Find it.")
    with pytest.raises(ValueError, match=r"\{problem\}"):
        prepare_example(_row(), 112, template="no placeholder")


def test_defaults_for_optional_columns():
    ex = prepare_example(_row(), 112)
    assert ex.group == "known" and ex.think == ""
    ex = prepare_example(_row(group="novel", think=None, img_width=None, img_height=None), 112)
    assert ex.group == "novel" and ex.think == ""


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"image": "/nonexistent/dir/a.png"}, "image file not found"),
        ({"image": {"bytes": b"\x89PNG not really", "path": None}}, "corrupt image"),
        ({"image": {"bytes": _png()[:60], "path": None}}, "corrupt image"),
        ({"image": None}, "image is missing"),
        ({"solution": '[{"bbox_2d": [1, 2'}, "not valid JSON"),
        ({"solution": '{"bbox_2d": [1, 2, 3, 4], "point_2d": [2, 3]}'}, "not a JSON list"),
        ({"solution": '[{"bbox_2d": [1, 2, 3], "point_2d": [2, 3]}]'}, "bbox_2d of 4 numbers"),
        ({"solution": '[{"bbox_2d": [1, 2, 3, "4"], "point_2d": [2, 3]}]'}, "bbox_2d of 4 numbers"),
        ({"solution": '[{"bbox_2d": [1, 2, 3, 4]}]'}, "point_2d of 2 numbers"),
        ({"solution": '[{"bbox_2d": [10, 10, 300, 60], "point_2d": [20, 20]}]'}, "outside the 224x112 image"),
        ({"solution": '[{"bbox_2d": [-20, 10, 30, 60], "point_2d": [20, 20]}]'}, "outside the 224x112 image"),
        ({"solution": '[{"bbox_2d": [50, 10, 50, 60], "point_2d": [50, 20]}]'}, "x2 > x1"),
        ({"solution": '[{"bbox_2d": [60, 10, 50, 60], "point_2d": [55, 20]}]'}, "x2 > x1"),
        ({"solution": '[{"bbox_2d": [10, 60, 50, 10], "point_2d": [20, 20]}]'}, "y2 > y1"),
        (
            {"solution": '[{"bbox_2d": [10, 10, 50, 60], "point_2d": [20, 500]}]'},
            "point_2d [20, 500] is outside",
        ),
        (
            {"solution": '[{"bbox_2d": [10, 10, 50, 60], "point_2d": [100, 20]}]'},
            "point_2d [100, 20] is outside its own bbox_2d [10, 10, 50, 60]",
        ),
        ({"problem": "   "}, "problem is empty"),
        ({"problem": None}, "problem is empty"),
        ({"img_width": 0}, "img_width must be a positive integer, got 0"),
        ({"img_height": "tall"}, "img_height must be a positive integer"),
    ],
)
def test_bad_rows_name_the_row_and_the_reason(changes, reason):
    with pytest.raises(BadRowError) as info:
        prepare_example(_row(**changes), 112)
    assert "row-7" in str(info.value) and reason in str(info.value)
    assert info.value.row_id == "row-7"


@pytest.mark.parametrize("column", ["solution", "image", "problem"])
def test_missing_column(column):
    row = _row()
    del row[column]
    with pytest.raises(BadRowError, match=rf"row-7.*missing required column.*{column}"):
        prepare_example(row, 112)


def test_corrupt_image_in_a_parquet_dataset_names_its_row(tmp_path):
    rows = generate_rows(3, seed=1)
    rows[1]["image"] = {"bytes": b"garbage", "path": None}
    path = tmp_path / "train.parquet"
    datasets.Dataset.from_list(rows, features=features()).to_parquet(str(path))
    with pytest.raises(BadRowError, match="train-000001.*corrupt image"):
        prepare_dataset(load_split(path), 112)


def test_skip_mode_counts_and_logs_bad_rows(caplog):
    rows = [_row(id="a"), _row(id="b", solution="nope"), _row(id="c"), _row(id="d", problem="")]
    with caplog.at_level(logging.WARNING):
        examples, skipped = prepare_dataset(rows, 112, on_bad_row="skip")
    assert skipped == 2 and [e.id for e in examples] == ["a", "c"]
    log = caplog.text
    assert "'b'" in log and "not valid JSON" in log and "'d'" in log and "skipped 2 of 4 rows" in log


def test_skip_mode_uses_the_given_logger(caplog):
    logger = logging.getLogger("my.run")
    with caplog.at_level(logging.WARNING, logger="my.run"):
        prepare_dataset([_row(), _row(id="x", solution="[")], 112, on_bad_row="skip", logger=logger)
    assert any(r.name == "my.run" and "'x'" in r.getMessage() for r in caplog.records)


def test_error_mode_raises_on_the_first_bad_row():
    with pytest.raises(BadRowError, match="'b'"):
        prepare_dataset([_row(id="a"), _row(id="b", solution="nope"), _row(id="c", solution="[")], 112)


def test_all_rows_bad_is_an_error_even_when_skipping():
    with pytest.raises(ValueError, match="all 2 rows are malformed"):
        prepare_dataset([_row(problem=""), _row(solution="x")], 112, on_bad_row="skip")


def test_invalid_arguments():
    with pytest.raises(ValueError, match="on_bad_row must be one of \\['error', 'skip'\\]"):
        prepare_dataset([_row()], 112, on_bad_row="ignore")
    with pytest.raises(ValueError, match="frame"):
        prepare_dataset([_row()], 0)
    with pytest.raises(TypeError, match="DatasetDict"):
        prepare_dataset(datasets.DatasetDict({"train": datasets.Dataset.from_list([{"a": 1}])}), 112)


def test_collate_returns_the_examples():
    examples, _ = prepare_dataset([_row(id="a"), _row(id="b")], 112)
    assert collate_examples(examples) == examples


def test_a_row_without_id_is_named_by_its_index():
    row = _row()
    del row["id"]
    with pytest.raises(BadRowError, match=r"#1 \(no id\).*missing required column.*id"):
        prepare_dataset([_row(), row], 112)


def test_load_split_from_a_list_of_files(synth_dir, tmp_path):
    ds = load_split([synth_dir / "train.parquet", synth_dir / "test.parquet"])
    assert len(ds) == 32
    (tmp_path / "train.csv").write_text("id,problem\n")
    with pytest.raises(ValueError, match="data files must all be one of"):
        load_split([synth_dir / "train.parquet", tmp_path / "train.csv"])


@settings(max_examples=200, deadline=None)
@given(
    src=st.tuples(st.integers(1, 2000), st.integers(1, 2000)),
    dst=st.tuples(st.integers(1, 1000), st.integers(1, 1000)),
    data=st.data(),
)
def test_scaling_keeps_boxes_non_empty_and_inside_the_frame(src, dst, data):
    x1 = data.draw(st.floats(0, src[0] - 0.01))
    x2 = data.draw(st.floats(x1 + 0.01, src[0]))
    y1 = data.draw(st.floats(0, src[1] - 0.01))
    y2 = data.draw(st.floats(y1 + 0.01, src[1]))
    (obj,) = scale_objects([{"bbox_2d": [x1, y1, x2, y2], "point_2d": [x1, y1]}], src, dst)
    bx1, by1, bx2, by2 = obj["bbox_2d"]
    assert 0 <= bx1 < bx2 <= dst[0] and 0 <= by1 < by2 <= dst[1]
    assert 0 <= obj["point_2d"][0] <= dst[0] and 0 <= obj["point_2d"][1] <= dst[1]


def test_a_16_bit_grayscale_image_keeps_its_shades():
    """PIL's convert("RGB") clips 16-bit values at 255: the image came out all white."""
    import numpy as np

    ramp = (np.arange(224 * 112).reshape(112, 224) * (65535 / (224 * 112))).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, format="PNG")
    assert Image.open(io.BytesIO(buf.getvalue())).mode.startswith("I")  # decoded as 16-bit
    example = prepare_example(_row(image={"bytes": buf.getvalue(), "path": None}), (224, 112))
    pixels = np.asarray(example.image)
    assert pixels.shape == (112, 224, 3) and (pixels[..., 0] == pixels[..., 2]).all()
    expected = np.rint(ramp / 257.0)
    assert np.abs(pixels[..., 0].astype(float) - expected).max() <= 1
    assert pixels.min() == 0 and pixels.max() >= 254 and 120 < pixels.mean() < 135


def test_duplicate_ids_are_reported(caplog):
    rows = [_row(id="a"), _row(id="b"), _row(id="a"), _row(id="a")]
    with caplog.at_level(logging.WARNING):
        examples, skipped = prepare_dataset(rows, 112)
    assert len(examples) == 4 and skipped == 0  # kept: evaluation keys questions by position
    assert "2 rows repeat the id of an earlier row (e.g. 'a')" in caplog.text


def _jsonl_with_a_broken_line(tmp_path):
    (tmp_path / "a.png").write_bytes(_png())
    good = json.dumps(_row(image="a.png"))
    lines = [
        good,
        '{"id": "cut", "problem": "the red',
        "[1, 2]",
        "",
        json.dumps(_row(id="row-8", image="a.png")),
    ]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n")


def test_a_malformed_jsonl_line_is_a_bad_row_naming_file_and_line(tmp_path):
    _jsonl_with_a_broken_line(tmp_path)
    with pytest.raises(BadRowError, match=r"train\.jsonl line 2.*not a JSON object"):
        load_split(tmp_path)


def test_malformed_jsonl_lines_can_be_skipped(tmp_path, caplog):
    _jsonl_with_a_broken_line(tmp_path)
    with caplog.at_level(logging.WARNING):
        ds = load_split(tmp_path, on_bad_row="skip")
    assert list(ds["id"]) == ["row-7", "row-8"]
    assert "train.jsonl line 3" in caplog.text and "skipped 2 malformed jsonl lines" in caplog.text
    examples, _ = prepare_dataset(ds, 112)
    assert [e.id for e in examples] == ["row-7", "row-8"]


def _crowded_row(n: int, **changes) -> dict:
    """A row whose label has n objects, each a small box with its point inside."""
    objects = [
        {"bbox_2d": [x, y, x + 8, y + 8], "point_2d": [x + 4, y + 4]}
        for x, y in ((10 * (i % 20), 10 * (i // 20)) for i in range(n))
    ]
    return _row(id=f"crowd-{n}", solution=json.dumps(objects), img_width=224, img_height=112, **changes)


def test_a_label_too_long_for_the_model_is_a_bad_row(tiny_dir, caplog):
    """A 200-object label overflowed the tiny model's 4096-token context with only a warning."""
    from visurf.data.lengths import drop_overlong
    from visurf.models.processing import VLProcessor
    from visurf.recipes.train import longest_label

    processor = VLProcessor.from_pretrained(tiny_dir)
    examples, _ = prepare_dataset([_row(), _crowded_row(200), _crowded_row(3)], 112)
    with pytest.raises(BadRowError, match=r"crowd-200.*200 objects in the label.*context of 4096"):
        drop_overlong(examples, processor, 4096, longest_label)
    with caplog.at_level(logging.WARNING):
        kept = drop_overlong(examples, processor, 4096, longest_label, on_bad_row="skip")
    assert [e.id for e in kept] == ["row-7", "crowd-3"]
    assert "skipped 1 of 3 rows as too long for the model" in caplog.text
    # The count is the model's: prompt (chat text, 16 image tokens at 112 px) + label + end of turn.
    prompt = processor([examples[0].prompt], [examples[0].image])["input_ids"].shape[1]
    label = len(processor.completion_ids([longest_label(examples[0])])[0])
    assert drop_overlong(examples[:1], processor, prompt + label, longest_label) == examples[:1]
    with pytest.raises(BadRowError, match=f"{prompt + label} tokens"):
        drop_overlong(examples[:1], processor, prompt + label - 1, longest_label)
    # ... and the prompt + the most the run may generate (rollout.max_new_tokens, eval.max_new_tokens)
    with pytest.raises(BadRowError, match=rf"up to {label + 1} generated\): {prompt + label + 1} tokens"):
        drop_overlong(examples[:1], processor, prompt + label, longest_label, new_tokens=label + 1)
