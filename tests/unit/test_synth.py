"""The synthetic grounding world: determinism, geometry, unambiguous questions, groups, CLI."""

from __future__ import annotations

import io
import json
import re
from collections import Counter

import datasets
import pytest
from PIL import Image

from visurf.data.synth import SynthConfig, corpus_texts, generate_items, generate_rows, main, write_splits
from visurf.data.synth_questions import relation_offset

CFG = SynthConfig()
NOVEL_WORDS = CFG.novel_colors + CFG.novel_shapes + CFG.novel_relations
KNOWN_CONCEPTS = set(CFG.known_colors + CFG.known_shapes + CFG.known_relations)


@pytest.fixture(scope="module")
def rows():
    return generate_rows(300, seed=0)


@pytest.fixture(scope="module")
def items():
    return generate_items(300, seed=0)


def test_same_seed_gives_identical_rows_and_other_seed_differs():
    a, b = generate_rows(20, seed=7), generate_rows(20, seed=7)
    assert a == b  # includes the PNG bytes
    c = generate_rows(20, seed=8)
    assert [r["image"]["bytes"] for r in a] != [r["image"]["bytes"] for r in c]
    assert [r["problem"] for r in a] != [r["problem"] for r in c]


def test_rows_have_the_schema(rows):
    row = rows[0]
    assert set(row) == {
        "id",
        "problem",
        "solution",
        "image",
        "img_height",
        "img_width",
        "group",
        "uses_novel",
        "think",
    }
    assert row["id"] == "train-000000"
    assert row["image"]["path"] is None
    img = Image.open(io.BytesIO(row["image"]["bytes"]))
    assert img.size == (row["img_width"], row["img_height"]) == (112, 112)


def test_every_group_appears(rows):
    counts = Counter(r["group"] for r in rows)
    assert set(counts) == {"known", "novel", "non_object", "multi"}
    assert min(counts.values()) >= 20


def test_labels_use_the_dataset_layout_and_lie_inside_the_image(rows):
    for row in rows:
        objs = json.loads(row["solution"])
        # json.dumps defaults, as the ViSurf / VisionReasoner training sets write it
        assert row["solution"] == json.dumps(objs)
        for obj in objs:
            assert list(obj) == ["bbox_2d", "point_2d"]
            x1, y1, x2, y2 = obj["bbox_2d"]
            px, py = obj["point_2d"]
            assert all(isinstance(v, int) for v in obj["bbox_2d"] + obj["point_2d"])
            assert 0 <= x1 < x2 <= row["img_width"] and 0 <= y1 < y2 <= row["img_height"]
            assert x1 <= px <= x2 and y1 <= py <= y2


def test_groups_follow_the_answer_and_novelty(rows):
    for row in rows:
        n = len(json.loads(row["solution"]))
        if n == 0:
            assert row["group"] == "non_object"
        elif n >= 2:
            assert row["group"] == "multi"
        else:
            assert row["group"] == ("novel" if row["uses_novel"] else "known")


def _answer(problem: str, objects) -> list:
    """Re-derive the answer from the problem text and the scene, independently of the generator."""
    m = re.fullmatch(r"the (\w+(?: shape)?) (left of|right of|above|below) the (\w+) (\w+)", problem)
    if m:
        desc, relation, ref_name = m.group(1), m.group(2), f"{m.group(3)} {m.group(4)}"
        (ref,) = [o for o in objects if o.name == ref_name]
        pool = [o for o in objects if o is not ref and _fits(o, desc)]
        return [o for o in pool if relation_offset(o, ref, relation) > 0]
    m = re.fullmatch(r"all the (\w+) shapes|all the (\w+)s", problem)
    if m:
        return [o for o in objects if o.color == m.group(1) or o.shape == m.group(2)]
    m = re.fullmatch(r"the (.+)", problem)
    return [o for o in objects if _fits(o, m.group(1))]


def _fits(obj, desc: str) -> bool:
    if desc.endswith(" shape"):
        return obj.color == desc[: -len(" shape")]
    return desc in (obj.shape, obj.name)


def test_questions_are_unambiguous(items):
    kinds = Counter()
    for item in items:
        q = item.question
        kinds[q.kind] += 1
        derived = _answer(q.text, item.objects)
        if q.kind in ("single", "relation"):
            assert derived == list(q.targets), q.text  # exactly one object fits
        else:
            assert sorted(derived, key=id) == sorted(q.targets, key=id), q.text
    assert kinds["relation"] >= 20


def test_scene_objects_have_unique_names_and_do_not_overlap(items):
    for item in items:
        names = [o.name for o in item.objects]
        assert len(set(names)) == len(names)
        assert 2 <= len(item.objects) <= 4
        for i, a in enumerate(item.objects):
            for b in item.objects[i + 1 :]:
                ax1, ay1, ax2, ay2 = a.box
                bx1, by1, bx2, by2 = b.box
                assert ax2 <= bx1 or bx2 <= ax1 or ay2 <= by1 or by2 <= ay1


def test_non_object_rows_name_an_absent_object(items, rows):
    seen = 0
    for item, row in zip(items, rows):
        if row["group"] != "non_object":
            continue
        seen += 1
        assert json.loads(row["solution"]) == []
        name = row["problem"].removeprefix("the ")
        assert name not in {o.name for o in item.objects}
        color, shape = name.split()
        assert color in CFG.known_colors + CFG.novel_colors and shape in CFG.known_shapes + CFG.novel_shapes
    assert seen > 0


def test_think_text_exactly_for_rows_without_novel_concepts(rows):
    for row in rows:
        assert bool(row["think"]) == (not row["uses_novel"])
        assert len(row["think"].split()) <= 32
        names_novel = any(w in row["problem"] for w in NOVEL_WORDS)
        assert names_novel == row["uses_novel"], row["problem"]


def test_novel_fraction_zero_gives_only_known_concepts():
    cfg = SynthConfig(novel_fraction=0.0)
    for item in generate_items(200, seed=1, cfg=cfg):
        assert not any(w in item.question.text for w in NOVEL_WORDS), item.question.text
        assert all({o.color, o.shape} <= KNOWN_CONCEPTS for o in item.objects)
        assert not item.uses_novel and item.think and item.group != "novel"


def test_novel_fraction_one_names_a_novel_concept_in_every_row():
    cfg = SynthConfig(novel_fraction=1.0)
    for row in generate_rows(60, seed=2, cfg=cfg):
        assert row["uses_novel"] and row["think"] == ""
        assert any(w in row["problem"] for w in NOVEL_WORDS), row["problem"]


def test_image_size_is_configurable():
    cfg = SynthConfig(image_size=56)
    for row in generate_rows(20, seed=0, cfg=cfg):
        assert Image.open(io.BytesIO(row["image"]["bytes"])).size == (56, 56)
        for obj in json.loads(row["solution"]):
            assert obj["bbox_2d"][2] <= 56 and obj["bbox_2d"][3] <= 56


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (
            {"image_size": 20},
            "image_size",
        ),  # not a multiple of anything: the images are resized to the model's frame
        ({"image_size": 0}, "image_size"),
        ({"known_colors": ("red", "yellow")}, "known_colors"),
        ({"novel_shapes": ("circle",)}, "known_shapes"),
        ({"novel_colors": ("magenta",)}, "novel_colors"),
        ({"known_relations": ("under",)}, "known_relations"),
        ({"known_shapes": ()}, "known_shapes"),
        ({"novel_fraction": 1.5}, "novel_fraction"),
        ({"multi_fraction": 0.6, "relation_fraction": 0.6}, "relation_fraction"),
        ({"min_objects": 1}, "min_objects"),
        ({"min_objects": 3, "max_objects": 2}, "max_objects"),
        ({"max_objects": 6}, "max_objects"),
        ({"known_colors": "red"}, "known_colors"),
    ],
)
def test_config_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SynthConfig(**kwargs)


def test_cli_writes_loadable_parquet_splits(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--num-train", "30", "--num-test", "10", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "train.parquet: 30 rows" in out and "test.parquet: 10 rows" in out and "known=" in out
    train = datasets.load_dataset("parquet", data_files=str(tmp_path / "train.parquet"), split="train")
    test = datasets.load_dataset("parquet", data_files=str(tmp_path / "test.parquet"), split="train")
    assert len(train) == 30 and len(test) == 10
    assert isinstance(train.features["image"], datasets.Image)
    assert train[0]["image"].size == (112, 112)
    assert train[0]["id"] == "train-000000" and test[0]["id"] == "test-000000"
    # The test split comes from a different derived seed.
    assert train[0]["solution"] != test[0]["solution"] or train[0]["problem"] != test[0]["problem"]


def test_write_splits_matches_generate_rows(tmp_path):
    train_path, test_path = write_splits(tmp_path, 5, 3, seed=4, cfg=SynthConfig(novel_fraction=0.0))
    assert train_path.name == "train.parquet" and test_path.name == "test.parquet"
    ds = datasets.load_dataset("parquet", data_files=str(train_path), split="train")
    ds = ds.cast_column("image", datasets.Image(decode=False))
    expected = generate_rows(5, seed=4, cfg=SynthConfig(novel_fraction=0.0))
    assert [r["image"]["bytes"] for r in ds] == [r["image"]["bytes"] for r in expected]
    assert ds["solution"] == [r["solution"] for r in expected]


def test_cli_rejects_a_bad_config(tmp_path):
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--num-train", "1", "--num-test", "1", "--image-size", "20"])


def test_corpus_covers_novel_words_and_the_completion_format():
    lines = corpus_texts(SynthConfig(novel_fraction=0.0), num=100)
    text = "\n".join(lines)
    for word in NOVEL_WORDS + ("<think>", "</answer>", "bbox_2d", "point_2d"):
        assert word in text


def test_grid_layout_puts_each_object_in_its_own_cell():
    from visurf.data.synth import SynthConfig, generate_items

    cfg = SynthConfig(image_size=112, grid=4)
    for item in generate_items(50, seed=3, cfg=cfg):
        cells = set()
        for obj in item.objects:
            x1, y1, x2, y2 = obj.box
            cell = (x1 // 28, y1 // 28)
            assert ((x2 - 1) // 28, (y2 - 1) // 28) == cell  # inside one 28-px cell
            cells.add(cell)
        assert len(cells) == len(item.objects)


def test_gradient_background_encodes_position():
    import io

    from PIL import Image

    from visurf.data.synth import SynthConfig, generate_rows

    row = generate_rows(1, seed=0, cfg=SynthConfig(image_size=112, grid=4, background="gradient"))[0]
    image = Image.open(io.BytesIO(row["image"]["bytes"])).convert("RGB")
    top_left, top_right, bottom_left = (
        image.getpixel((0, 0)),
        image.getpixel((111, 0)),
        image.getpixel((0, 111)),
    )
    assert top_left[0] > top_right[0] and top_left[2] == top_right[2]  # red falls with x
    assert top_left[2] > bottom_left[2] and top_left[0] == bottom_left[0]  # blue falls with y


def test_each_scene_draws_on_its_own_copy_of_the_background():
    from visurf.data.synth_scene import SceneObject, gradient_background, render_scene

    blank = gradient_background(112).tobytes()
    # the tint as defined, pixel by pixel: red falls 255 -> 195 with x, blue with y, green 235
    ramp = [round(255 - 60 * i / 111) for i in range(112)]
    assert blank == bytes(v for y in range(112) for x in range(112) for v in (ramp[x], 235, ramp[y]))
    first = render_scene([SceneObject("red", "square", (0, 0, 28, 28))], 112, "gradient")
    second = render_scene([SceneObject("blue", "circle", (56, 56, 84, 84))], 112, "gradient")
    assert first.getpixel((10, 10)) == (220, 40, 40) and second.getpixel((10, 10)) != (220, 40, 40)
    assert gradient_background(112).tobytes() == blank  # the drawn shapes did not reach the shared one


def test_think_positions_name_each_objects_grid_cell():
    import re

    from visurf.data.synth import SynthConfig, generate_items

    cfg = SynthConfig(image_size=224, grid=4, novel_fraction=0.0, think_positions=True)
    for item in generate_items(40, seed=5, cfg=cfg):
        listed = re.findall(r"an? (\w+ \w+) at \((\d),(\d)\)", item.think)
        # One entry per object, left to right, each with its own (column,row) counted from 1.
        expected = sorted(item.objects, key=lambda o: (o.center[0], o.center[1]))
        assert [(name, int(c), int(r)) for name, c, r in listed] == [
            (o.name, o.box[0] // 56 + 1, o.box[1] // 56 + 1) for o in expected
        ]
    plain = generate_items(40, seed=5, cfg=SynthConfig(image_size=224, grid=4, novel_fraction=0.0))
    assert all(" at (" not in item.think for item in plain)  # off by default


@pytest.mark.parametrize(
    "field,value",
    [("grid", -1), ("grid", 1), ("background", "stripes"), ("think_positions", "yes")],
)
def test_layout_options_are_validated(field, value):
    from visurf.data.synth import SynthConfig

    with pytest.raises(ValueError, match=field):
        SynthConfig(**{field: value})


def test_think_positions_need_a_grid():
    from visurf.data.synth import SynthConfig

    with pytest.raises(ValueError, match="think_positions=true needs grid > 0"):
        SynthConfig(grid=0, think_positions=True)


def test_shape_at_tells_a_shapes_fill_from_the_tinted_background():
    from visurf.data.synth_scene import SceneObject, colour_at, render_scene, shape_at

    image = render_scene(
        [SceneObject("yellow", "circle", (4, 4, 25, 25)), SceneObject("blue", "square", (60, 60, 81, 81))],
        112,
        background="gradient",
    )
    assert colour_at(image, 14, 14) == "yellow" and colour_at(image, 70, 70) == "blue"
    assert colour_at(image, 5, 5) is None  # background
    assert shape_at(image, 14, 14) and not shape_at(image, 5, 5)  # the centre, a corner outside the circle
    assert not shape_at(image, 111, 111) and not shape_at(
        image, 500, -3
    )  # background; clamped into the image
