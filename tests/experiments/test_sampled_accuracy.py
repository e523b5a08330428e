"""experiments/probes/sampled_accuracy.py: greedy scores as the evaluator's, sampled scores per answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.probes import sampled_accuracy

ROOT = Path(__file__).resolve().parents[2]


def test_greedy_matches_the_evaluator_and_samples_are_counted_per_answer(tiny_dir, capsys):
    from visurf.config.compose import compose_config
    from visurf.data.sources import load_examples
    from visurf.evaluation.runner import evaluate
    from visurf.models.loading import load_policy
    from visurf.rewards import build_reward

    overrides = ["experiment=smoke", "model.source=path", f"model.path={tiny_dir}"]
    args = [str(tiny_dir), "--split", "test", "--rows", "0:4", "--samples", "3", "--temperature", "1.5"]
    result = sampled_accuracy.main([*args, "--", *overrides])[str(tiny_dir)]

    cfg = compose_config(overrides)
    examples = load_examples(cfg.data, int(cfg.model.frame), "test")[:4]
    model, processor = load_policy(cfg.model, path=tiny_dir)
    reward_fn = build_reward(cfg.reward.name, **dict(cfg.reward.kwargs))
    metrics, _ = evaluate(
        model.eval(),
        processor,
        reward_fn,
        examples,
        batch_size=int(cfg.eval.batch_size),
        max_new_tokens=int(cfg.eval.max_new_tokens),
    )
    assert result["questions"] == 4 and result["samples"] == 3
    assert 0.0 <= result["turnable"] <= 1.0 - result["greedy"]["accuracy"]
    assert result["greedy"]["accuracy"] == pytest.approx(metrics["accuracy"])
    assert result["greedy"]["reward"] == pytest.approx(metrics["mean_reward"], abs=1e-3)
    assert 0.0 <= result["sampled"]["accuracy"] <= 1.0
    assert "sampled at T 1.5 x3" in capsys.readouterr().out
    # The same seed samples the same answers.
    again = sampled_accuracy.main([*args, "--", *overrides])[str(tiny_dir)]
    assert again == result


def test_turnable_and_at_risk_questions_by_hand():
    def rewards(*correct):
        return [{"correct": float(c), "total": 2.0 * c} for c in correct]

    greedy = [rewards(0), rewards(0), rewards(1), rewards(1)]
    sampled = [rewards(0, 1), rewards(0, 0), rewards(1, 0), rewards(1, 1)]
    out = sampled_accuracy.summarise(greedy, sampled)
    assert out["greedy"] == {"accuracy": 0.5, "reward": 1.0}
    assert out["sampled"]["accuracy"] == pytest.approx(4 / 8)
    assert out["turnable"] == 0.25  # question 0 only: greedy wrong, a sample right
    assert out["at_risk"] == 0.25  # question 2 only: greedy right, a sample wrong
    assert (out["questions"], out["samples"]) == (4, 2)


def test_bad_arguments_are_refused_naming_them(tiny_dir):
    with pytest.raises(SystemExit, match="--rows takes START:END"):
        sampled_accuracy.parse_rows("500")
    with pytest.raises(SystemExit):
        sampled_accuracy.main([str(tiny_dir), "--samples", "0"])
