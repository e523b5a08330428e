"""Rows with several images or none, and answer-text labels: reading them from files, labels in
each image's own frame (against hand-computed values), and the bad rows named."""

from __future__ import annotations

import io
import json

import datasets
import pytest
from PIL import Image

from tests.mixed_data import write_mixed
from visurf.data import BadRowError, DataError, prepare_example
from visurf.data.labels import scale_to_frame
from visurf.data.loading import load_split
from visurf.data.prompt import PROMPT_TEMPLATE, TEMPLATES, build_prompt
from visurf.data.rows import SplitRows
from visurf.evaluation.metrics import AnswerMetrics, GroundingMetrics, metric_for
from visurf.rewards import GroundingReward, build_reward, label_answer


def _png(width: int, height: int) -> dict:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, format="PNG")
    return {"bytes": buf.getvalue(), "path": None}


def _two(**changes) -> dict:
    """A row with a 112 x 112 and a 224 x 112 image; one object in each."""
    row = {
        "id": "two-1",
        "problem": "both red squares",
        "images": [_png(112, 112), _png(224, 112)],
        "solution": json.dumps(
            [
                {"bbox_2d": [60, 60, 100, 100], "point_2d": [80, 80], "image": 0},
                {"bbox_2d": [20, 10, 120, 60], "point_2d": [70, 35], "image": 1},
            ]
        ),
    }
    return row | changes


def test_each_object_maps_with_its_own_images_resize():
    # 96 x 160 -> 112: x * 112/96, y * 0.7, rounded half up; 224 x 112 -> 112: x * 0.5, y * 1
    objects = [
        {"bbox_2d": [8, 80, 48, 150], "point_2d": [28, 115], "image": 0},
        {"bbox_2d": [20, 10, 120, 60], "point_2d": [70, 35], "image": 1},
    ]
    assert scale_to_frame(objects, [(96, 160), (224, 112)], (112, 112)) == [
        {"bbox_2d": [9, 56, 56, 105], "point_2d": [33, 81], "image": 0},
        {"bbox_2d": [10, 10, 60, 60], "point_2d": [35, 35], "image": 1},
    ]
    # one image: no index is kept (the layout of one-image rows does not change)
    one = scale_to_frame([objects[1] | {"image": 0}], [(224, 112)], (112, 112))
    assert one == [{"bbox_2d": [10, 10, 60, 60], "point_2d": [35, 35]}]


def test_a_two_image_row_as_an_example_and_its_answers_back_in_each_originals_pixels():
    example = prepare_example(_two(img_width=[224, 448], img_height=[224, 224]), 112)
    assert [im.size for im in example.image] == [(112, 112), (112, 112)]
    assert example.solution == (
        '[{"bbox_2d":[60,60,100,100],"point_2d":[80,80],"image":0},'
        '{"bbox_2d":[10,10,60,60],"point_2d":[35,35],"image":1}]'
    )
    assert example.original_sizes == ((224, 224), (448, 224))
    mapped = example.to_original(f"<answer>{example.solution}</answer>")
    # image 0: x2, y2 (224 / 112); image 1: x4 (448 / 112), y2
    assert mapped.boxes == [[120, 120, 200, 200], [40, 20, 240, 120]]
    assert mapped.points == [[160, 160], [140, 70]]
    assert mapped.images == [0, 1]
    assert (
        example.to_original('<answer>[{"bbox_2d":[1,1,2,2],"point_2d":[1,1],"image":2}]</answer>').boxes == []
    )


def test_a_text_only_row_and_markers_in_the_problem():
    text = prepare_example(
        {"id": "t", "problem": "What is 2+2?", "images": [], "solution": "4"},
        112,
        answer=label_answer("counting"),
    )
    assert text.image == [] and text.solution == "4" and text.objects == []
    assert text.original_width == 112  # no image: the frame
    # the problem's markers place the images; the template's own marker is left out
    prompt = build_prompt("Is <image> larger than <image>?", TEMPLATES["seg_zero"])
    assert prompt.count("<image>") == 2 and prompt.startswith('Please find "is <image> larger')
    assert build_prompt("the cat", TEMPLATES["seg_zero"]).startswith("<image>\n")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"problem": "compare <image>, <image> and <image>"},
            "the prompt has 3 <image> markers for 2 images",
        ),
        (
            {"images": [_png(112, 112), "/nonexistent/b.png"]},
            "images[1]: image file not found: /nonexistent/b.png",
        ),
        ({"images": [_png(112, 112), None]}, "images[1] is missing"),
        (
            {"solution": '[{"bbox_2d": [1, 1, 9, 9], "point_2d": [5, 5], "image": 2}]'},
            "solution[0] lies in image 2, but the row has 2 images",
        ),
        (
            {"solution": '[{"bbox_2d": [20, 10, 200, 60], "point_2d": [70, 35], "image": 0}]'},
            "bbox_2d [20, 10, 200, 60] is outside the 112x112 image 0",
        ),
        (
            {"solution": '[{"bbox_2d": [1, 1, 9, 9], "point_2d": [5, 5], "image": -1}]'},
            "image must be an image index",
        ),
        ({"image": _png(112, 112)}, "gives both image and images"),
        ({"images": "a.png"}, "images must be a list of images"),
        ({"img_width": 224}, "img_width of a row with 2 images is a list of 2 sizes"),
    ],
)
def test_bad_rows_with_several_images_name_the_row_and_the_reason(changes, reason):
    with pytest.raises(BadRowError) as info:
        prepare_example(_two(**changes), 112)
    assert info.value.row_id == "two-1" and reason in str(info.value)


def test_text_only_rows_are_said_so_and_hold_no_boxes():
    row = {"id": "t", "problem": "the unicorn", "solution": '[{"bbox_2d": [1, 1, 9, 9], "point_2d": [5, 5]}]'}
    with pytest.raises(BadRowError, match="'t'.*lies in image 0, but the row has no image"):
        prepare_example(row | {"images": []}, 112)
    with pytest.raises(BadRowError, match=r"'t'.*image is missing \(a text-only row gives images: \[\]\)"):
        prepare_example(row | {"image": None}, 112)
    with pytest.raises(BadRowError, match="'t'.*the prompt has 2 <image> markers for 0 images"):
        prepare_example(row | {"images": [], "solution": "[]", "problem": "<image> or <image>"}, 112)


@pytest.mark.parametrize(
    ("reward", "solution", "label", "bad"),
    [
        ("counting", " +3 ", "3", "3.5"),
        ("counting", 2, "2", True),
        ("multiple_choice", "(b)", "B", "F"),
        ("exact_answer", " 3/4 ", "3/4", "  "),
    ],
)
def test_answer_text_labels_take_the_canonical_form_and_bad_ones_are_named(reward, solution, label, bad):
    read = label_answer(reward)
    assert label_answer("grounding") is None and label_answer("vision_reasoner") is None
    row = {"id": "a", "problem": "how many?", "images": [], "solution": solution}
    example = prepare_example(row, 112, answer=read)
    assert example.solution == label
    assert build_reward(reward)(f"<think>x</think><answer>{label}</answer>", example.solution)["correct"] == 1
    with pytest.raises(BadRowError, match=rf"'a'.*is not .*\(reward {reward}\)"):
        prepare_example(row | {"solution": bad}, 112, answer=read)


def test_the_mixed_files_load_lazily_and_a_bad_list_image_follows_on_bad_row(tmp_path):
    folder = write_mixed(tmp_path / "mixed")
    rows = SplitRows.open(load_split(folder), 112, PROMPT_TEMPLATE)
    described = {e.id: e.image for e in rows.described()}  # nothing decoded: the image counts
    assert described == {
        "q0-text": [],
        "q1-one": None,
        "q2-two": [None, None],
        "q3-text": [],
        "q4-one": None,
        "q5-two": [None, None],
    }
    assert [len(e.image) if isinstance(e.image, list) else 1 for e in rows] == [0, 1, 2, 0, 1, 2]
    assert [e.id for e in rows[1::2]] == ["q1-one", "q3-text", "q5-two"]  # a subset keeps each row's sizes
    assert [e.image for e in rows[1::2].described()] == [None, [], [None, None]]

    # q5's second image truncated: its header reads (the checks pass), its pixels do not
    data = (folder / "images" / "wide.png").read_bytes()
    (folder / "images" / "cut.png").write_bytes(data[: len(data) // 2])
    lines = (
        (folder / "train.jsonl")
        .read_text()
        .replace('"images/square.png", "images/wide.png"', '"images/square.png", "images/cut.png"')
    )
    (folder / "train.jsonl").write_text(lines)
    strict = SplitRows.open(load_split(folder), 112, PROMPT_TEMPLATE)
    with pytest.raises(BadRowError, match=r"'q5-two'.*images\[1\]: corrupt image"):
        list(strict)
    lenient = SplitRows.open(load_split(folder), 112, PROMPT_TEMPLATE, on_bad_row="skip")
    assert [e.id for e in lenient] == ["q0-text", "q1-one", "q2-two", "q3-text", "q4-one"]
    assert lenient.bad_ids == {"q5-two"}

    # a missing file in a list is found up front, before training
    (folder / "images" / "cut.png").unlink()
    with pytest.raises(BadRowError, match=r"'q5-two'.*images\[1\]: image file not found: .*cut.png"):
        SplitRows.open(load_split(folder), 112, PROMPT_TEMPLATE)


def test_a_split_needs_an_image_column_and_parquet_lists_of_images_load(tmp_path):
    ds = datasets.Dataset.from_list([{"id": "a", "problem": "p", "solution": "[]"}])
    with pytest.raises(DataError, match=r"lacks required column\(s\) \['image \(or images\)'\]"):
        SplitRows.open(ds, 112, PROMPT_TEMPLATE)
    features = datasets.Features(
        {c: datasets.Value("string") for c in ("id", "problem", "solution")}
        | {"images": datasets.List(datasets.Image())}
    )
    rows = [{k: v for k, v in _two().items()}, {"id": "t", "problem": "p", "solution": "[]", "images": []}]
    datasets.Dataset.from_list(rows, features=features).to_parquet(str(tmp_path / "train.parquet"))
    loaded = SplitRows.open(load_split(tmp_path), 112, PROMPT_TEMPLATE)
    assert [len(e.image) for e in loaded] == [2, 0]
    assert loaded[0].objects[1] == {"bbox_2d": [10, 10, 60, 60], "point_2d": [35, 35], "image": 1}


def test_the_grounding_reward_matches_each_object_in_its_own_image():
    reward = GroundingReward()
    label = [{"bbox_2d": [10, 10, 60, 60], "point_2d": [35, 35], "image": 1}]
    right = '<think>x</think><answer>[{"bbox_2d":[10,10,60,60],"point_2d":[35,35],"image":1}]</answer>'
    wrong = right.replace('"image":1', '"image":0')
    assert (
        reward(right, label, 112, 112)["accuracy"] == 3.0 and reward(right, label, 112, 112)["correct"] == 1
    )
    assert (
        reward(wrong, label, 112, 112)["accuracy"] == 0.0 and reward(wrong, label, 112, 112)["correct"] == 0
    )


def test_grounding_metrics_overlap_image_by_image():
    metric = GroundingMetrics()
    label = [
        {"bbox_2d": [0, 0, 10, 10], "point_2d": [5, 5], "image": 0},
        {"bbox_2d": [0, 0, 10, 10], "point_2d": [5, 5], "image": 1},
    ]
    # the same two boxes, both said to lie in image 0: image 0 overlaps 100 of 100 px, image 1
    # has 100 px of label and none predicted -> (100) / (100 + 100)
    text = '<answer>[{"bbox_2d":[0,0,10,10],"point_2d":[5,5],"image":0},{"bbox_2d":[0,0,10,10],"point_2d":[5,5]}]</answer>'
    metric.update([text], [{"total": 0.0, "correct": 0}], [label], ["known"], 112, 112)
    assert metric.compute()["giou"] == pytest.approx(0.5) and metric.compute()["ciou"] == pytest.approx(0.5)


def test_answer_metrics_are_accuracy_by_the_reward():
    reward = build_reward("counting")
    metric = metric_for(reward)
    assert isinstance(metric, AnswerMetrics) and isinstance(metric_for(GroundingReward()), GroundingMetrics)
    texts = ["<think>a b</think><answer>3</answer>", "<answer>2</answer>", "<answer>many</answer>"]
    rewards = [reward(t, "3") for t in texts]
    metric.update(texts, rewards, [[], [], []], ["known", "known", "novel"], 112, 112)
    out = metric.compute()
    assert out["accuracy"] == pytest.approx(1 / 3) and out["format_rate"] == pytest.approx(2 / 3)
    assert out["strict_format_rate"] == pytest.approx(1 / 3) and out["think_words"] == pytest.approx(2 / 3)
    assert out["mean_reward"] == pytest.approx((3 + 1 + 0) / 3)
    assert out["giou"] is None and out["n_acc"] is None and out["groups"]["novel"]["accuracy"] == 0.0


@pytest.mark.parametrize("layout", ["files", "saved", "hub_snapshot", "prepared_cache"])
def test_every_source_reads_rows_of_every_kind(tmp_path, monkeypatch, layout):
    from omegaconf import OmegaConf

    from tests import replica_layouts as held
    from visurf.data.sources import load_examples

    features = datasets.Features(
        {c: datasets.Value("string") for c in ("id", "problem", "solution")}
        | {"image": datasets.Image(), "images": datasets.List(datasets.Image())}
    )
    one = {"id": "one", "problem": "p", "image": _png(224, 112), "images": None, "solution": "[]"}
    text = {"id": "text", "problem": "p", "image": None, "images": [], "solution": "[]"}
    ds = datasets.Dataset.from_list([_two() | {"image": None}, text, one], features=features)
    splits = {"train": ds, "test": ds}
    cfg = {"on_bad_row": "error", "prompt_template": None, "image_root": None}
    if layout in ("files", "saved"):
        write = held.split_files if layout == "files" else held.saved_to_disk
        cfg |= {"source": "local", "path": str(write(tmp_path / layout, splits))}
    else:
        monkeypatch.setenv("HF_HOME", str(getattr(held, layout)(tmp_path / "hf", splits)))
        monkeypatch.delenv("HF_HUB_CACHE", raising=False)
        monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
        cfg |= {"source": "hub", "hub_id": held.HUB_ID}
    examples = load_examples(OmegaConf.create(cfg), 112, "train")
    assert [e.id for e in examples] == ["two-1", "text", "one"]
    assert [len(e.image) if isinstance(e.image, list) else 1 for e in examples] == [2, 0, 1]
    assert examples[0].objects[1] == {"bbox_2d": [10, 10, 60, 60], "point_2d": [35, 35], "image": 1}
