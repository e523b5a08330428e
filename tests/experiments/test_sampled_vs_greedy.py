"""experiments/probes/sampled_vs_greedy.py: a run and its base, greedy as the evaluator, sampled as the stage."""

from __future__ import annotations

import json

import pytest

from experiments.probes import sampled_vs_greedy as probe
from tests.conftest import run


@pytest.fixture(scope="module")
def visurf_run(answerer, tmp_path_factory):
    """Two ViSurf steps on the answerer (its base: it answers its 8 questions right greedily)."""
    run_dir, _ = run(
        tmp_path_factory.mktemp("probe"),
        "experiment=smoke",
        "objective=visurf",
        "reward_control=all",
        "data=local",
        f"data.path={answerer.parent / 'data'}",
        "data.test_split=test",
        "model.source=path",
        f"model.path={answerer / 'model'}",
        "rollout.max_new_tokens=40",
        "eval.num_examples=4",
    )
    return run_dir


def test_greedy_is_the_evaluators_and_sampled_a_mean_of_the_stages_samples(visurf_run, answerer, tmp_path):
    from visurf.cli.eval import run_eval

    out = tmp_path / "p.json"
    args = [str(visurf_run), "--split", "test", "--n", "4", "--samples", "3", "--device", "cpu"]
    result = probe.main([*args, "--out", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert (result["questions"], result["samples"], result["temperature"]) == (4, 3, 1.0)

    # Greedy: question by question what `visurf.eval` reports for the same questions.
    evaluated = {
        "trained": run_eval(str(visurf_run), split="test", limit=4, device="cpu"),
        "base": run_eval(str(answerer / "model"), split="test", limit=4, device="cpu"),
    }
    for which, ev in evaluated.items():
        mine = [q[f"{which}_greedy"] for q in result["per_question"]]
        assert mine == [float(c) for _, _, c in ev["outcomes"]]
        assert result["models"][which]["by_group"]["all"]["greedy"] == pytest.approx(ev["accuracy"])
        # and as the run recorded its own first and last evaluation of these questions
        assert result["models"][which]["agrees_with_run"] == 1.0
    assert result["models"]["base"]["by_group"]["all"]["greedy"] == 1.0  # the answerer's

    # Sampled: per question a mean of 3 samples' correctness, in [0, 1]; overall their mean,
    # which is also the stage's own `accuracy` metric (what train/accuracy logs).
    for which in ("base", "trained"):
        means = [q[f"{which}_sampled"] for q in result["per_question"]]
        assert all(0.0 <= m <= 1.0 and (3 * m) == pytest.approx(round(3 * m)) for m in means)
        model = result["models"][which]
        assert model["by_group"]["all"]["sampled"] == pytest.approx(sum(means) / 4)
        assert model["stage_accuracy"] == pytest.approx(sum(means) / 4)
        assert model["by_group"]["all"]["any_correct"] >= model["by_group"]["all"]["sampled"]
    change = result["change"]["sampled"]["all"]["mean"]
    by_model = [result["models"][w]["by_group"]["all"]["sampled"] for w in ("base", "trained")]
    assert change == pytest.approx(by_model[1] - by_model[0])
    # The same seed draws the same samples.
    assert probe.main(args)["per_question"] == result["per_question"]


def test_groups_and_paired_changes_by_hand():
    groups = ["known", "novel", "known", "non_object"]
    greedy = [1.0, 0.0, 0.0, 1.0]
    samples = [[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    out = probe.summarise(groups, greedy, samples, {"stage_accuracy": 0.5})
    by = out["by_group"]
    assert by["all"] == {"n": 4, "greedy": 0.5, "sampled": 0.5, "any_correct": 0.75}
    assert by["known"] == {"n": 2, "greedy": 0.5, "sampled": 0.75, "any_correct": 1.0}
    assert by["novel"]["any_correct"] == 0.0 and "multi" not in by
    d = probe.paired(groups, [0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 1.0, 0.0])
    assert d["all"]["mean"] == 0.0
    # differences 1, 0, 0, -1: sd sqrt(2/3), se sqrt(2/3)/2
    assert d["all"]["se"] == pytest.approx((2 / 3) ** 0.5 / 2)
    assert d["known"] == {"mean": 0.5, "se": pytest.approx(0.5), "n": 2}


def test_bad_input_ends_in_one_line_naming_it(tmp_path, answerer, visurf_run, capsys):
    for argv, says in [
        ([str(tmp_path / "nope")], "does not exist"),
        ([str(answerer)], "has no policy stage"),
        ([str(answerer), "--samples", "0"], "--samples must be >= 1"),
        ([str(visurf_run), "--base", str(tmp_path)], "holds no model"),
        ([str(visurf_run), "--split", "nosuch", "--n", "2"], "nosuch"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            probe.main(argv)
        assert exit_.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("sampled_vs_greedy.py: ") and says in err and "\n" not in err
