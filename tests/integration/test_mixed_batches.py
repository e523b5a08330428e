"""One batch of two-image, one-image and text-only rows trains under every objective, and is
evaluated; rewards that need no image score the text-only rows."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace

import pytest

from tests.conftest import run
from visurf.data.prompt import build_prompt


def mixed(examples: list, answer=None) -> list:
    """Six rows, two of each kind: text-only (nothing to find: `[]`), one image, two images
    (the label in the first image's frame; every image is in the frame). `answer(example)`
    replaces the label string (a count, a choice) for rewards other than grounding."""
    out = []
    for i, e in enumerate(examples[:6]):
        if i % 3 == 0:
            e = replace(e, id=f"{e.id}-text", image=[], problem="the unicorn", objects=[], solution="[]")
            e = replace(e, prompt=build_prompt(e.problem), raw_solution="[]")
        elif i % 3 == 2:
            e = replace(e, id=f"{e.id}-two", image=[e.image, examples[i - 1].image])
        if answer is not None:
            e = replace(e, solution=answer(e), raw_solution=answer(e))
        out.append(e)
    return out


def mixed_run(tmp_path, monkeypatch, *overrides, answer=None):
    import visurf.recipes.train as recipe

    opened = recipe.open_rows  # the synthetic world's rows, decoded, reshaped into the three kinds
    monkeypatch.setattr(recipe, "open_rows", lambda *a, **k: mixed(list(opened(*a, **k)), answer))
    every_batch = ("train.batch_size=6", "eval.num_examples=6", "eval.num_samples_logged=6")
    return run(tmp_path, "experiment=smoke", *every_batch, "logging.samples_every=1", *overrides)


def records(run_dir, name: str) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "samples" / name).read_text().splitlines()]


def kind(row: dict) -> str:
    return row["id"].rsplit("-", 1)[-1] if row["id"].endswith(("-text", "-two")) else "one"


@pytest.mark.parametrize("objective", ["sft", "rlvr", "grpo", "sft_rlvr", "visurf"])
def test_a_mixed_batch_trains_under_every_objective(tmp_path, monkeypatch, objective):
    run_dir, summary = mixed_run(tmp_path, monkeypatch, f"objective={objective}")
    assert summary["steps"] == 2 and summary["eval_after"]["num_examples"] == 6
    for step in (1, 2):  # each step's batch: rows of every kind, with the images they were shown
        rows = records(run_dir, f"train_step{step:05d}.jsonl")
        shown = {(kind(r), len(r["images"])) for r in rows}
        assert shown == {("text", 0), ("one", 1), ("two", 2)}
        assert len({r["id"] for r in rows}) == 6
    evaluated = records(run_dir, "eval_step00002.jsonl")
    assert sorted(kind(r) for r in evaluated) == ["one", "one", "text", "text", "two", "two"]
    with open(run_dir / "metrics.csv") as f:
        losses = [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)


@pytest.mark.parametrize(
    "reward,answer",
    [
        ("counting", lambda e: str(len(e.objects))),
        ("multiple_choice", lambda e: "AB"[len(e.objects) > 0]),
        ("exact_answer", lambda e: f"{len(e.objects)}/2"),
    ],
    ids=["counting", "multiple_choice", "exact_answer"],
)
def test_rewards_that_need_no_image_score_text_only_rows(tmp_path, monkeypatch, reward, answer):
    run_dir, summary = mixed_run(
        tmp_path, monkeypatch, "objective=rlvr", f"reward.name={reward}", answer=answer
    )
    rows = records(run_dir, "train_step00001.jsonl")
    text = [r for r in rows if r["id"].endswith("-text")]
    assert len(text) == 2 * 2  # two text-only prompts x G = 2
    assert all(set(r["rewards"]) == {"think_format", "answer_format", "accuracy", "total"} for r in text)
    for r in text:  # the components as the reward defines them, from the completion alone
        assert r["rewards"]["total"] == sum(
            r["rewards"][k] for k in ("think_format", "answer_format", "accuracy")
        )
    assert summary["eval_after"]["num_examples"] == 6
