"""A mixed dataset read from files (`data=local`: text-only, one-image and two-image rows,
tests/mixed_data.py) trains in one batch under every objective and is evaluated; answer-text
labels (counting, multiple choice, exact answers) load, train as SFT labels, enter ViSurf's
groups aligned, and are evaluated by accuracy."""

from __future__ import annotations

import csv
import json
import math

import pytest

from tests.conftest import run
from tests.mixed_data import write_mixed
from visurf.rewards.parsing import parse_completion


@pytest.fixture(scope="module")
def mixed_files(tmp_path_factory):
    """The mixed dataset's folder for each kind of label."""
    root = tmp_path_factory.mktemp("mixed")
    return lambda reward="grounding": write_mixed(root / reward, reward)


def mixed_run(tmp_path, folder, *overrides):
    every_batch = ("train.batch_size=6", "eval.num_examples=6", "eval.num_samples_logged=6")
    return run(
        tmp_path,
        "experiment=smoke",
        "data=local",
        f"data.path={folder}",
        *every_batch,
        "logging.samples_every=1",
        *overrides,
    )


def records(run_dir, name: str) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "samples" / name).read_text().splitlines()]


def kind(row: dict) -> str:
    return row["id"].rsplit("-", 1)[-1]


def policy_steps(run_dir) -> list[tuple[dict, list[dict]]]:
    """(metrics.csv row, the step's rollout records) of each policy step (one with a format rate)."""
    with open(run_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/format_rate")]
    return [
        (r, [s for s in records(run_dir, f"train_step{int(r['step']) + 1:05d}.jsonl") if not s["is_label"]])
        for r in rows
    ]


def share(flags: list[bool]) -> float:
    return sum(flags) / len(flags)


@pytest.mark.parametrize("objective", ["sft", "rlvr", "grpo", "sft_rlvr", "visurf"])
def test_a_mixed_batch_trains_under_every_objective(tmp_path, mixed_files, objective):
    run_dir, summary = mixed_run(tmp_path, mixed_files(), f"objective={objective}")
    assert summary["steps"] == 2 and summary["eval_after"]["num_examples"] == 6
    for step in (1, 2):  # each step's batch: rows of every kind, with the images they were shown
        rows = records(run_dir, f"train_step{step:05d}.jsonl")
        shown = {(kind(r), len(r["images"])) for r in rows}
        assert shown == {("text", 0), ("one", 1), ("two", 2)}
        assert len({r["id"] for r in rows}) == 6
    evaluated = records(run_dir, "eval_step00002.jsonl")
    assert sorted(kind(r) for r in evaluated) == ["one", "one", "text", "text", "two", "two"]
    labels = {r["id"]: r["label"] for r in evaluated}  # each object in its own image's frame
    sizes = {r["id"]: r["original_size"] for r in evaluated if kind(r) != "text"}  # each image's
    assert sizes == {
        "q1-one": [224, 112],
        "q2-two": [[224, 112], [96, 160]],
        "q4-one": [112, 112],
        "q5-two": [[112, 112], [224, 112]],
    }
    assert labels["q2-two"] == '[{"bbox_2d":[9,56,56,105],"point_2d":[33,81],"image":1}]'
    assert labels["q0-text"] == "[]"
    if objective == "sft":  # the label trained is the canonical one, image index included
        trained = {r["id"]: r["completion"] for r in records(run_dir, "train_step00001.jsonl")}
        assert trained["q2-two"] == f"<answer>{labels['q2-two']}</answer>"
    with open(run_dir / "metrics.csv") as f:
        losses = [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    steps = policy_steps(run_dir)
    assert len(steps) == {"sft": 0, "sft_rlvr": 1}.get(objective, 2)
    for logged, rollouts in steps:  # grounding: the answer parses as a JSON list; `[]`: nothing there
        answers = [parse_completion(r["completion"]).objects for r in rollouts]
        assert float(logged["train/format_rate"]) == pytest.approx(share([a is not None for a in answers]))
        assert float(logged["train/empty_answer_rate"]) == pytest.approx(share([a == [] for a in answers]))


# (reward, objective, the label each row trains with: its answer in canonical form)
ANSWER_RUNS = [
    ("counting", "visurf", ["0", "1", "1", "0", "1", "2"]),
    ("multiple_choice", "sft", ["A", "B", "B", "A", "B", "C"]),
    ("exact_answer", "rlvr", ["0", "1/1", "1.0", "zero", "1", "2"]),
]


@pytest.mark.parametrize("reward,objective,answers", ANSWER_RUNS, ids=[r[0] for r in ANSWER_RUNS])
def test_answer_text_labels_load_train_and_evaluate(tmp_path, mixed_files, reward, objective, answers):
    overrides = [f"objective={objective}", f"reward.name={reward}"]
    if objective == "visurf":  # every group gets the label, rendered by align
        overrides += ["reward_control=align", "injection.when=always"]
    run_dir, summary = mixed_run(tmp_path, mixed_files(reward), *overrides)
    expected = dict(zip([f"q{i}-{k}" for i, k in enumerate(["text", "one", "two"] * 2)], answers))
    rows = records(run_dir, "train_step00001.jsonl")
    assert {r["id"] for r in rows} == set(expected)
    for r in rows if objective != "sft" else []:  # the reward's components, from the completion alone
        assert set(r["rewards"]) == {"think_format", "answer_format", "accuracy", "total"}
        assert r["rewards"]["total"] == sum(
            r["rewards"][k] for k in ("think_format", "answer_format", "accuracy")
        )
    labels = [r for r in rows if r["is_label"]]
    if objective == "sft":
        assert {r["id"]: r["completion"] for r in labels} == {
            i: f"<answer>{a}</answer>" for i, a in expected.items()
        }
    if objective == "visurf":  # align: a think block, then the canonical answer, scored in full
        assert {r["id"] for r in labels} == set(expected)
        for r in labels:
            assert r["completion"].startswith("<think>")
            assert r["completion"].endswith(f"</think><answer>{expected[r['id']]}</answer>")
            assert r["rewards"]["accuracy"] == 1.0 and r["rewards"]["answer_format"] == 1.0
    for logged, rollouts in policy_steps(run_dir):  # the share of answers the reward could read
        assert rollouts and float(logged["train/format_rate"]) == pytest.approx(
            share([r["rewards"]["answer_format"] == 1.0 for r in rollouts])
        )
        assert not [k for k, v in logged.items() if "empty_answer_rate" in k and v]  # `[]`: no answer here
    after = summary["eval_after"]  # accuracy by the reward; no boxes, so no gIoU
    assert after["num_examples"] == 6 and after["giou"] is None and after["ciou"] is None
    evaluated = records(run_dir, "eval_step00002.jsonl")
    assert after["accuracy"] == sum(r["correct"] for r in evaluated) / 6
    assert {r["id"]: r["label"] for r in evaluated} == expected
