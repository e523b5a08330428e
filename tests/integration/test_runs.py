"""Every objective and every reward-control preset really trains the tiny VLM through Lightning."""

from __future__ import annotations

import csv
import json

import pytest

SUMMARY_KEYS = {
    "objective",
    "reward_control",
    "seed",
    "steps",
    "wall_time_s",
    "versions",
    "machine",
    "eval_before",
    "eval_after",
    "change",
}
EVAL_KEYS = {"accuracy", "mean_reward", "format_rate", "strict_format_rate", "groups"}


def read_metrics(run_dir):
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


def check_outputs(run_dir, summary, objective):
    assert SUMMARY_KEYS <= summary.keys()
    assert summary == json.loads((run_dir / "summary.json").read_text())
    assert summary["objective"] == objective and summary["steps"] == 2
    assert set(summary["versions"]) >= {"python", "torch", "transformers", "lightning", "peft"}
    assert summary["machine"]["cpu"] and summary["machine"]["threads"] >= 1
    for key in ("eval_before", "eval_after"):
        assert EVAL_KEYS <= summary[key].keys()
        assert set(summary[key]["groups"]) <= {"known", "novel", "non_object", "multi"}
    # The questions the run turned right or wrong account for the change in accuracy.
    change, before, after = summary["change"], summary["eval_before"], summary["eval_after"]
    n = change["gained"] + change["lost"] + change["unchanged"]
    assert n == before["num_examples"] == after["num_examples"]
    assert after["accuracy"] - before["accuracy"] == pytest.approx((change["gained"] - change["lost"]) / n)
    assert set(change["groups"]) == set(before["groups"]) and 0.0 <= change["p_value"] <= 1.0
    assert (run_dir / "config.yaml").read_text().count(f"name: {objective}") >= 1
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "model" / "config.json").is_file()
    samples = sorted((run_dir / "samples").glob("eval_step*.jsonl"))
    assert len(samples) == 2
    first = json.loads(samples[0].read_text().splitlines()[0])
    assert {"id", "problem", "completion", "reward", "correct"} <= first.keys()
    rows = read_metrics(run_dir)
    assert [r for r in rows if r.get("train/loss")], "no training step was logged"
    return rows


POLICY_COLUMNS = [
    "train/reward",
    "train/reward/accuracy",
    "train/reward/think_format",
    "train/accuracy",
    "train/format_rate",
    "train/strict_format_rate",
    "train/empty_answer_rate",
    "train/completion_length",
    "train/kl",
    "train/clip_fraction",
    "train/grad_norm",
    "train/entropy",
    "train/groups/zero_spread",
    "train/reward_std/accuracy",
    "train/spread_share/accuracy",
]
LABEL_COLUMNS = [
    "train/label/reward",
    "train/label/advantage_raw",
    "train/label/advantage",
    "train/label_loss_share",
]


@pytest.mark.parametrize("objective", ["sft", "rlvr", "grpo", "sft_rlvr", "visurf"])
def test_every_objective_runs_and_writes_its_outputs(smoke_run, objective):
    run_dir, summary = smoke_run(f"objective={objective}")
    name = "rlvr" if objective == "grpo" else objective
    rows = check_outputs(run_dir, summary, name)
    logged = [r for r in rows if r.get("train/loss")]
    if objective in ("rlvr", "grpo", "visurf"):
        for col in POLICY_COLUMNS:
            assert all(r[col] != "" for r in logged), col
    if objective == "visurf":
        for col in LABEL_COLUMNS:
            assert all(r[col] != "" for r in logged), col
    if objective == "sft_rlvr":  # one SFT step, then one RLVR step
        assert [float(r["train/stage"]) for r in logged] == [0.0, 1.0]


@pytest.mark.parametrize("preset", ["none", "align", "no_think", "smooth", "all"])
def test_every_reward_control_preset_runs(smoke_run, preset):
    run_dir, summary = smoke_run("objective=visurf", f"reward_control={preset}")
    check_outputs(run_dir, summary, "visurf")
    assert summary["reward_control"] == preset


def test_tensorboard_by_config(smoke_run):
    run_dir, _ = smoke_run("objective=sft", "logging.tensorboard=true")
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents*"))


def test_mu_passes_take_several_optimisation_steps_per_rollout_batch(smoke_run):
    run_dir, summary = smoke_run("objective=rlvr", "objective.mu=2", "objective.beta=0.05")
    assert summary["steps"] == 2
    logged = [r for r in read_metrics(run_dir) if r.get("train/loss")]
    assert len(logged) == 1  # one rollout batch, optimised twice


@pytest.mark.parametrize("scale,aggregation", [("batch", "bnpo"), ("none", "dr_grpo"), ("group", "dapo")])
def test_grpo_options_run(smoke_run, scale, aggregation):
    _, summary = smoke_run(
        "objective=visurf",
        f"objective.scale_rewards={scale}",
        f"objective.loss_aggregation={aggregation}",
        "objective.epsilon_high=0.28",
    )
    assert summary["steps"] == 2


def test_a_test_split_with_repeated_ids_still_gets_its_question_by_question_change(smoke_run, tmp_path):
    # Real datasets may repeat ids (one image, several expressions): `change` pairs examples by
    # their place in the test split, not by id.
    import pandas as pd

    from tests.conftest import smoke_config
    from visurf.data.sources import synth_dir

    src = synth_dir(dict(smoke_config().data.synth))
    data = tmp_path / "data"
    data.mkdir()
    pd.read_parquet(src / "train.parquet").to_parquet(data / "train.parquet")
    test = pd.read_parquet(src / "test.parquet")
    test["id"] = "same-image"
    test.to_parquet(data / "test.parquet")
    _, summary = smoke_run("data=local", f"data.path={data}", "trainer.max_steps=1")
    change = summary["change"]
    assert (
        change["gained"] + change["lost"] + change["unchanged"] == summary["eval_after"]["num_examples"] == 4
    )
