"""visurf.eval: the standalone evaluation of a run, a checkpoint file, a model directory or the base."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from omegaconf import OmegaConf

from tests.cli.test_report import build_smoke_sweep
from visurf.analysis.compare import outcomes_file
from visurf.cli.eval import main, resolve
from visurf.runs.weights import load_trained

RATES = ("accuracy", "format_rate", "strict_format_rate", "giou", "ciou", "n_acc")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return build_smoke_sweep(tmp_path_factory) / "visurf_s0"


def summary_of(run_dir):
    return json.loads((run_dir / "summary.json").read_text())


def eval_limit(run_dir) -> int:
    """The number of test examples the run evaluated (eval.num_examples)."""
    return int(OmegaConf.load(run_dir / "config.yaml").eval.num_examples)


def test_eval_of_a_run_reproduces_its_final_evaluation(run_dir, tmp_path):
    out = tmp_path / "sub" / "eval.json"
    result = main([f"checkpoint={run_dir}", f"limit={eval_limit(run_dir)}", f"out={out}"])
    after = summary_of(run_dir)["eval_after"]
    assert set(result) == set(after) | {
        "checkpoint",
        "split",
        "versions",
        "machine",
        "outcomes",
        "answers",
        "skipped_rows",
    }
    assert result["split"] == "test" and result["checkpoint"] == str(run_dir.resolve())
    assert set(result["versions"]) >= {"torch", "transformers", "lightning"}
    assert result["machine"]["cpu"] and result["machine"]["threads"] >= 1
    for key in RATES:
        assert result[key] is None or 0.0 <= result[key] <= 1.0, key
    assert json.loads(out.read_text()) == result
    assert {k: result[k] for k in after} == after  # same model, examples and evaluator
    # Every question's outcome, as the run's own outcome file of its last evaluation has it.
    assert result["outcomes"] == json.loads(outcomes_file(run_dir).read_text())
    # Every question's answer, as the run logged the first of them at its last evaluation.
    logged = [json.loads(line) for line in (run_dir / "samples" / "eval_step00002.jsonl").open()]
    assert len(result["answers"]) == len(result["outcomes"]) > len(logged) > 0
    assert [
        {k: a[k] for k in ("problem", "label", "completion")} for a in result["answers"][: len(logged)]
    ] == [{k: s[k] for k in ("problem", "label", "completion")} for s in logged]


def test_model_dir_gives_the_completions_the_run_logged(run_dir):
    from visurf.data.sources import load_examples
    from visurf.evaluation.runner import evaluate
    from visurf.rewards import build_reward

    cfg, weights = resolve(str(run_dir / "model"), [])
    assert weights == run_dir / "model"
    model, processor = load_trained(cfg, weights)
    examples = load_examples(cfg.data, int(cfg.model.frame), "test", limit=eval_limit(run_dir))
    _, samples = evaluate(
        model,
        processor,
        build_reward(cfg.reward.name),
        examples,
        batch_size=int(cfg.eval.batch_size),
        max_new_tokens=int(cfg.eval.max_new_tokens),
        num_samples_logged=len(examples),
    )
    logged = [json.loads(line) for line in (run_dir / "samples" / "eval_step00002.jsonl").open()]
    assert logged and [s["completion"] for s in samples[: len(logged)]] == [s["completion"] for s in logged]


def test_eval_of_a_checkpoint_file(run_dir):
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    result = main([f"checkpoint={ckpt}", f"limit={eval_limit(run_dir)}"])
    after = summary_of(run_dir)["eval_after"]
    assert {k: result[k] for k in after} == after
    # The checkpoint's weights are the final ones in model/.
    from_ckpt, _ = load_trained(*resolve(str(ckpt), []))
    from_dir, _ = load_trained(*resolve(str(run_dir), []))
    ckpt_state, dir_state = from_ckpt.state_dict(), from_dir.state_dict()
    assert ckpt_state.keys() == dir_state.keys()
    assert all(torch.equal(ckpt_state[k], dir_state[k]) for k in ckpt_state)


def test_eval_of_the_base_model_matches_eval_before(run_dir):
    # experiment=smoke: the run's (untrained) model and data.
    result = main(["checkpoint=base", "experiment=smoke", f"limit={eval_limit(run_dir)}"])
    before = summary_of(run_dir)["eval_before"]
    assert result["checkpoint"] == "base"
    assert {k: result[k] for k in before} == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["checkpoint={tmp}/absent"], "{tmp}/absent does not exist"),
        (["checkpoint={run}", "eval.bogus=1"], "eval.bogus=1"),
        (["checkpoint={run}", "bogus=1"], "bogus=1"),
        (["checkpoint=base", "bogus=1"], "bogus"),
        (["checkpoint={run}", "data=local"], "data.path"),
        (["checkpoint={run}", "data=nope"], "no option 'nope'"),
        (["checkpoint={run}", "limit=x"], "limit must be an integer"),
        (["limit=3"], "checkpoint=<run dir"),
        (["checkpoint={tmp}"], "neither a run directory"),
        (["checkpoint={tmp}/unfinished"], "{tmp}/unfinished/model"),
    ],
)
def test_errors_are_clear(run_dir, tmp_path, capsys, args, message):
    unfinished = tmp_path / "unfinished"  # a run with a config but no final weights
    unfinished.mkdir()
    shutil.copy(run_dir / "config.yaml", unfinished / "config.yaml")
    fill = {"tmp": tmp_path, "run": run_dir}
    with pytest.raises(SystemExit) as exit_info:
        main([a.format(**fill) for a in args])
    assert exit_info.value.code == 2
    assert message.format(**fill) in capsys.readouterr().err
