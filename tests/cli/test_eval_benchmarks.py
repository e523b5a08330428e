"""visurf.eval on replicas of the authors' evaluation sets (ReasonSeg-like, RefCOCO-like, gRefCOCO-like
with no-target samples), with and without a segmenter, against hand-worked figures.

The model is a tiny one taught in 60 SFT steps to answer "the thing" with one box and "no such
thing" with `[]` (`answerer`), so every figure below follows from the replicas by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visurf.cli.eval import main
from visurf.data.prompt import PROMPT_TEMPLATE
from visurf.evaluation.answers import map_answer
from visurf.evaluation.protocol import overlap
from visurf.models.segmenter import Sam2Segmenter
from visurf.models.tiny_sam2 import tiny_sam2_dir

FRAME = 112  # the smoke model's frame
BOX, POINT = [20, 30, 80, 90], [50, 60]  # the answer to "the thing", in the model frame


def rect(height: int, width: int, *rects) -> list[list[bool]]:
    """A mask as the hub stores it (nested lists of booleans) with (row0, row1, col0, col1) rectangles set."""
    mask = np.zeros((height, width), dtype=bool)
    for r0, r1, c0, c1 in rects:
        mask[r0:r1, c0:c1] = True
    return mask.tolist()


def image(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def sample(index: int, text: str, width: int, height: int, mask, bbox=None) -> dict:
    row = {
        "image": image(width, height, index),
        "text": text,
        "mask": mask,
        "image_id": f"img{index}",
        "ann_id": f"ann{index}",
        "img_height": height,
        "img_width": width,
    }
    return row if bbox is None else {**row, "bbox": bbox}


# ReasonSeg-like: no bbox column (the label box is the mask's), questions with '?' and '.'.
REASONSEG = [
    # 224 x 112: factors 2 and 1, the answer maps to [40, 30, 160, 90]; the mask fills exactly that.
    sample(0, "The Thing?", 224, 112, rect(112, 224, (30, 90, 40, 160))),
    # 112 x 224: the answer maps to [20, 60, 80, 180]; the label is a 10 x 10 corner far from it.
    sample(1, "the thing", 112, 224, rect(224, 112, (0, 10, 0, 10))),
    # 168 x 168: factor 1.5, [30, 45, 120, 135]; the label is the box's top half.
    sample(2, "The thing.", 168, 168, rect(168, 168, (45, 90, 30, 120))),
]
# RefCOCO-like: a bbox column.
REFCOCO = [
    sample(3, "the thing", 224, 224, rect(224, 224, (60, 180, 40, 160)), bbox=[40, 60, 160, 180]),
    sample(4, "the thing", 224, 224, rect(224, 224, (0, 100, 0, 100)), bbox=[0, 0, 100, 100]),
]
# gRefCOCO-like: no-target samples (empty mask, bbox []), a hallucination, a miss, two targets.
GREFCOCO = [
    sample(5, "no such thing", 112, 112, rect(112, 112), bbox=[]),
    sample(6, "No such thing!", 200, 100, rect(100, 200), bbox=[]),
    sample(7, "the thing", 112, 112, rect(112, 112), bbox=[]),
    sample(8, '"no such thing"', 112, 112, rect(112, 112, (0, 10, 0, 10)), bbox=[0, 0, 10, 10]),
    sample(
        9, "the thing", 112, 112, rect(112, 112, (30, 60, 20, 50), (60, 90, 50, 80)), bbox=[20, 30, 80, 90]
    ),
]
REPLICAS = {"reasonseg": REASONSEG, "refcoco": REFCOCO, "grefcoco": GREFCOCO}


def write_replica(folder: Path, rows: list[dict], split: str = "test") -> Path:
    """`rows` as a split file with the hub sets' features."""
    import datasets

    features = {
        "image": datasets.Image(),
        "text": datasets.Value("string"),
        "mask": datasets.Sequence(datasets.Sequence(datasets.Value("bool"))),
        "image_id": datasets.Value("string"),
        "ann_id": datasets.Value("string"),
        "img_height": datasets.Value("int64"),
        "img_width": datasets.Value("int64"),
    }
    if "bbox" in rows[0]:
        features["bbox"] = datasets.Sequence(datasets.Value("int32"))
    folder.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(rows, features=datasets.Features(features)).to_parquet(
        str(folder / f"{split}.parquet")
    )
    return folder


@pytest.fixture(scope="module")
def replicas(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("benchmarks")
    return {name: write_replica(root / name, rows) for name, rows in REPLICAS.items()}


def evaluate(answerer, replica: Path, tmp_path, *extra: str) -> tuple[dict, dict]:
    out = tmp_path / "eval.json"
    printed = main([f"checkpoint={answerer}", f"data.path={replica}", "split=test", f"out={out}", *extra])
    return printed, json.loads(out.read_text())


def test_reasonseg_like_box_level(answerer, replicas, tmp_path, capsys):
    printed, result = evaluate(answerer, replicas["reasonseg"], tmp_path)
    samples = result.pop("samples")
    assert printed == {**result, "samples": samples} and "samples" not in capsys.readouterr().out
    assert result["level"] == "box" and result["segmenter"] is None and "giou" not in result
    assert [s["boxes"] for s in samples] == [[[40, 30, 160, 90]], [[20, 60, 80, 180]], [[30, 45, 120, 135]]]
    assert [s["points"] for s in samples] == [[[100, 60]], [[50, 120]], [[75, 90]]]
    assert [s["question"] for s in samples] == ["the thing"] * 3
    # Box hits against the masks' boxes: [40, 30, 159, 89] is 119 x 59 of the answer's 120 x 60
    # (0.975); the corner misses; the top half is 89 x 44 / 90 x 90 = 0.483, no hit.
    assert [s["box_hit"] for s in samples] == [1.0, 0.0, 0.0]
    # Box regions: 7200 / 7200; 0 / (7200 + 100); 4050 / 8100.
    assert [(s["box_intersection"], s["box_union"]) for s in samples] == [
        (7200, 7200),
        (0, 7300),
        (4050, 8100),
    ]
    assert result["box_giou"] == pytest.approx((1 + 0 + 0.5) / 3)
    assert result["box_ciou"] == pytest.approx(11250 / 22600)
    assert result["box_hit"] == pytest.approx(1 / 3)
    assert result["n_acc"] is None and result["num_no_target"] == 0 and result["num_examples"] == 3
    assert result["prompt_template"] == PROMPT_TEMPLATE and result["max_new_tokens"] == 40


def test_refcoco_like_scores_against_the_bbox_column(answerer, replicas, tmp_path):
    _, result = evaluate(answerer, replicas["refcoco"], tmp_path)
    samples = result["samples"]
    assert [s["boxes"] for s in samples] == [[[40, 60, 160, 180]], [[40, 60, 160, 180]]]
    # The first bbox is the answer itself; the second meets it in 60 x 40 of 14400 + 10000 - 2400.
    assert [s["box_hit"] for s in samples] == [1.0, 0.0]
    assert result["box_giou"] == pytest.approx((1 + 2400 / 22000) / 2)


def test_grefcoco_like_no_target_rules(answerer, replicas, tmp_path):
    _, result = evaluate(answerer, replicas["grefcoco"], tmp_path)
    samples = result["samples"]
    assert [s["boxes"] for s in samples] == [[], [], [BOX], [], [BOX]]
    assert [s["no_target"] for s in samples] == [1, 1, 1, 0, 0]
    assert [s["no_target_correct"] for s in samples] == [1, 1, 0, 0, 0]
    # Right "nothing there" x 2: IoU 1 and a hit; the hallucinated box: 0 over its 3600 px; the
    # missed target: 0 over its bbox's 100 px; two targets in one box that is their bbox: 1.
    assert [s["box_iou"] for s in samples] == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert [s["box_union"] for s in samples] == [0, 0, 3600, 100, 3600]
    assert [s["box_hit"] for s in samples] == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert result["n_acc"] == pytest.approx(2 / 3) and result["num_no_target"] == 3
    assert result["box_giou"] == pytest.approx(3 / 5)
    assert result["box_ciou"] == pytest.approx(3600 / (3600 + 100 + 3600))
    assert result["box_hit"] == pytest.approx(3 / 5)


def test_with_a_segmenter_the_masks_are_sam2_s(answerer, replicas, tmp_path, visurf_cache):
    sam2 = tiny_sam2_dir("image")
    _, result = evaluate(answerer, replicas["grefcoco"], tmp_path, f"eval.segmenter.path={sam2}")
    assert result["level"] == "mask" and result["segmenter"] == str(sam2)
    segmenter = Sam2Segmenter.from_pretrained(sam2)
    for row, record in zip(GREFCOCO, result["samples"]):
        label = np.array(row["mask"])
        original = row["image"]
        mapped = map_answer(record["completion"], original.width / FRAME, original.height / FRAME)
        mask = segmenter.answer_mask(original, mapped.boxes, mapped.points)
        expected = overlap(mask, label, right_empty=not mapped.boxes and not label.any())
        assert (record["intersection"], record["union"], record["iou"]) == (
            expected.intersection,
            expected.union,
            expected.iou,
        )
    ious = [s["iou"] for s in result["samples"]]
    assert ious[:2] == [1.0, 1.0] and ious[3] == 0.0  # no-target rule; the miss
    assert result["giou"] == pytest.approx(sum(ious) / 5)
    inter = sum(s["intersection"] for s in result["samples"])
    union = sum(s["union"] for s in result["samples"])
    assert union > 100 and result["ciou"] == pytest.approx(inter / union)
    # The box-level figures and those that need no mask are the same as without a segmenter.
    assert result["box_hit"] == pytest.approx(3 / 5) and result["n_acc"] == pytest.approx(2 / 3)


def test_the_base_model_on_an_evaluation_set(replicas, tmp_path):
    # A random tiny model through Hydra composition: whatever it answers, every sample's record
    # is what its completion gives under the protocol.
    out = tmp_path / "base.json"
    main(
        [
            "checkpoint=base",
            "experiment=smoke",
            "data=local",
            f"data.path={replicas['grefcoco']}",
            f"out={out}",
        ]
    )
    result = json.loads(out.read_text())
    assert result["checkpoint"] == "base" and result["num_examples"] == 5 and result["max_new_tokens"] == 12
    assert result["machine"]["threads"] >= 1 and "torch" in result["versions"]  # what computed it
    for row, record in zip(GREFCOCO, result["samples"]):
        original = row["image"]
        mapped = map_answer(record["completion"], original.width / FRAME, original.height / FRAME)
        assert (record["boxes"], record["points"]) == (mapped.boxes, mapped.points)
    answered_empty = [not s["boxes"] for s in result["samples"]]
    assert result["n_acc"] == pytest.approx(sum(answered_empty[:3]) / 3)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{**GREFCOCO[0], "mask": rect(50, 112)}],
            "bad row 'img5/ann5 (row 0)': the mask is 112x50 but the image is 112x112",
        ),
        ([{**GREFCOCO[0], "img_width": 640}], "img_width is 640 but the image is 112x112"),
        ([{**GREFCOCO[0], "text": "?!."}], "text is empty"),
    ],
)
def test_bad_rows_end_with_one_line(answerer, tmp_path, capsys, rows, message):
    replica = write_replica(tmp_path / "bad", rows)
    with pytest.raises(SystemExit) as exit_info:
        main([f"checkpoint={answerer}", f"data.path={replica}"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    ours = [line for line in err.splitlines() if line.startswith("visurf.eval: ")]
    assert len(ours) == 1 and message in ours[0] and "Traceback" not in err


def test_bad_rows_skipped_are_listed(answerer, tmp_path):
    rows = [GREFCOCO[0], {**GREFCOCO[1], "mask": rect(5, 5)}, GREFCOCO[2]]
    _, result = evaluate(
        answerer, write_replica(tmp_path / "some_bad", rows), tmp_path, "data.on_bad_row=skip"
    )
    assert result["skipped_rows"] == ["img6/ann6 (row 1)"] and result["num_examples"] == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("eval.segmenter.path={tmp}/nothing", "{tmp}/nothing is not a directory"),
        ("eval.segmenter.path={tmp}", "holds no SAM2 model"),
        ("eval.segmenter.size=3", "eval.segmenter takes path"),
    ],
)
def test_segmenter_errors_are_clear(answerer, replicas, tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exit_info:
        main([f"checkpoint={answerer}", f"data.path={replicas['grefcoco']}", extra.format(tmp=tmp_path)])
    assert exit_info.value.code == 2 and message.format(tmp=tmp_path) in capsys.readouterr().err


@pytest.mark.parametrize("held_as", ["save_to_disk", "hub"])
def test_an_evaluation_set_reads_alike_from_every_source(answerer, replicas, tmp_path, monkeypatch, held_as):
    """The gRefCOCO-like set as split files, as a save_to_disk folder and as a hub download in the
    local HF cache: the same samples and figures."""
    import datasets

    from tests.replica_layouts import hub_snapshot

    split = datasets.load_dataset("parquet", data_files=str(replicas["grefcoco"] / "test.parquet"))["train"]
    if held_as == "save_to_disk":
        folder = tmp_path / "saved"
        datasets.DatasetDict({"test": split}).save_to_disk(str(folder))
        source = [f"data.path={folder}"]
    else:
        monkeypatch.setenv("HF_HOME", str(hub_snapshot(tmp_path / "hf", {"test": split}, "Replica/grefcoco")))
        monkeypatch.delenv("HF_HUB_CACHE", raising=False)
        monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
        source = ["data=hub", "data.hub_id=Replica/grefcoco"]
    _, expected = evaluate(answerer, replicas["grefcoco"], tmp_path)
    out = tmp_path / "other.json"
    main([f"checkpoint={answerer}", *source, "split=test", f"out={out}"])
    result = json.loads(out.read_text())
    assert result["num_examples"] == 5 and result["num_no_target"] == expected["num_no_target"] > 0
    assert result["samples"] == expected["samples"]
    assert result["box_giou"] == expected["box_giou"] and result["n_acc"] == expected["n_acc"]
