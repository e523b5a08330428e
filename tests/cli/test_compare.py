"""visurf.compare: two runs compared question by question from their outcome files."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run
from visurf.analysis.compare import compare_runs, outcomes_file
from visurf.cli.compare import main
from visurf.evaluation.paired import paired_change


def _fake_run(path, step, outcomes):
    (path / "samples").mkdir(parents=True, exist_ok=True)
    (path / "samples" / f"outcomes_step{step:05d}.json").write_text(json.dumps(outcomes))
    return path


def test_counts_what_b_gets_right_or_wrong_against_a(tmp_path):
    a = _fake_run(
        tmp_path / "a", 60, [[0, "known", 1.0], [1, "known", 0.0], [2, "novel", 0.0], [3, "multi", 1.0]]
    )
    _fake_run(tmp_path / "a", 0, [[0, "known", 0.0], [1, "known", 0.0], [2, "novel", 0.0], [3, "multi", 0.0]])
    b = _fake_run(
        tmp_path / "b", 60, [[0, "known", 0.0], [1, "known", 1.0], [2, "novel", 1.0], [3, "multi", 1.0]]
    )
    change = compare_runs(a, b)  # the last evaluation of each: step 60
    assert (change["gained"], change["lost"], change["unchanged"]) == (2, 1, 1)
    assert change["groups"]["known"] == {"gained": 1, "lost": 1, "unchanged": 0}
    assert change["groups"]["novel"] == {"gained": 1, "lost": 0, "unchanged": 0}
    assert change["p_value"] == pytest.approx(1.0)  # 2 against 1 is no evidence
    with pytest.raises(FileNotFoundError, match="no evaluation at step 0"):
        compare_runs(a, b, step=0)


def test_runs_on_different_questions_are_refused_naming_them(tmp_path):
    a = _fake_run(tmp_path / "a", 2, [[0, "known", 1.0], [1, "novel", 0.0]])
    fewer = _fake_run(tmp_path / "b", 2, [[0, "known", 1.0]])
    other = _fake_run(tmp_path / "c", 2, [[0, "known", 1.0], [1, "multi", 0.0]])
    with pytest.raises(ValueError, match="same examples"):
        compare_runs(a, fewer)
    with pytest.raises(ValueError, match="different test questions"):
        compare_runs(a, other)
    with pytest.raises(FileNotFoundError, match="outcomes_step"):
        compare_runs(a, tmp_path / "no-run")


def test_an_eval_json_compares_like_a_run(tmp_path):
    outcomes = [[0, "known", 1.0], [1, "known", 0.0], [2, "novel", 0.0]]
    a = _fake_run(tmp_path / "a", 60, outcomes)
    evaluated = tmp_path / "eval.json"  # what python -m visurf.eval out=... writes
    evaluated.write_text(
        json.dumps({"accuracy": 2 / 3, "outcomes": [[0, "known", 1.0], [1, "known", 1.0], [2, "novel", 0.0]]})
    )
    change = compare_runs(a, evaluated)
    assert (change["gained"], change["lost"], change["unchanged"]) == (1, 0, 2)
    metrics_only = tmp_path / "old.json"
    metrics_only.write_text(json.dumps({"accuracy": 0.5}))
    with pytest.raises(ValueError, match="no 'outcomes'"):
        compare_runs(a, metrics_only)
    with pytest.raises(ValueError, match="--step applies to run directories"):
        compare_runs(a, evaluated, step=60)


def test_several_pairs_are_compared_and_summed(tmp_path, capsys):
    a0 = _fake_run(tmp_path / "a0", 4, [[0, "known", 0.0], [1, "known", 0.0], [2, "novel", 1.0]])
    b0 = _fake_run(tmp_path / "b0", 4, [[0, "known", 1.0], [1, "known", 1.0], [2, "novel", 1.0]])
    a1 = _fake_run(tmp_path / "a1", 4, [[0, "known", 0.0], [1, "novel", 1.0], [2, "novel", 0.0]])
    b1 = _fake_run(tmp_path / "b1", 4, [[0, "known", 1.0], [1, "novel", 0.0], [2, "novel", 0.0]])
    out = tmp_path / "change.json"
    result = main([str(a0), str(b0), str(a1), str(b1), "--out", str(out)])
    assert result["changes"] == [compare_runs(a0, b0), compare_runs(a1, b1)]
    summed = result["summed"]
    assert (summed["gained"], summed["lost"], summed["unchanged"]) == (3, 1, 2)
    assert summed["groups"]["known"] == {"gained": 3, "lost": 0, "unchanged": 0}
    assert summed["p_value"] == pytest.approx(10 / 16)  # 3 of 4 changes: 2 * (4 + 1) / 16
    assert json.loads(out.read_text()) == result
    # At the level of the pairs: pair 0 gained 2 of 3 questions (+2/3), pair 1 lost 1 and gained 1 (0).
    assert result["seed_level"]["differences"] == pytest.approx([2 / 3, 0.0])
    printed = capsys.readouterr().out
    assert "summed over the 2 pairs" in printed and "seed level: B - A by pair +66.7, +0.0 points" in printed
    with pytest.raises(SystemExit):  # an odd number of runs is refused
        main([str(a0), str(b0), str(a1)])
    assert "runs come in pairs" in capsys.readouterr().err


def test_a_run_writes_every_questions_outcome_and_the_cli_compares_two_runs(tmp_path, capsys):
    overrides = ["experiment=smoke", "eval.num_examples=8", "data.synth.num_test=8"]
    run_a, summary_a = run(tmp_path, *overrides, "objective=rlvr", name="a")
    run_b, summary_b = run(tmp_path, *overrides, "objective=visurf", name="b")
    first, last = outcomes_file(run_a, step=0), outcomes_file(run_a)
    assert first != last
    rows = json.loads(last.read_text())
    assert [r[0] for r in rows] == list(range(8))  # every question once, by index in the split
    # The files hold exactly what summary.json's change was computed from.
    assert paired_change(json.loads(first.read_text()), rows) == summary_a["change"]
    change = main([str(run_a), str(run_b), "--out", str(tmp_path / "change.json")])
    n = change["gained"] + change["lost"] + change["unchanged"]
    assert n == 8
    delta = summary_b["eval_after"]["accuracy"] - summary_a["eval_after"]["accuracy"]
    assert delta == pytest.approx((change["gained"] - change["lost"]) / n)
    assert json.loads((tmp_path / "change.json").read_text()) == change
    assert "gained" in capsys.readouterr().out


def test_against_objective_pairs_each_seed_of_a_sweep(tmp_path_factory):
    from tests.cli.test_report import build_smoke_sweep
    from visurf.analysis import report
    from visurf.analysis.compare import against_objective

    runs = report.collect_runs(build_smoke_sweep(tmp_path_factory))
    table = against_objective(runs, "visurf")
    # visurf has seeds 0 and 1; sft and rlvr only seed 0, so two pairs.
    assert sorted(table.against) == ["rlvr", "sft"] and set(table.seed) == {0}
    mine = runs[(runs.objective == "visurf") & (runs.seed == 0)].iloc[0]
    for _, row in table.iterrows():
        other = runs[(runs.objective == row.against) & (runs.seed == 0)].iloc[0]
        n = row.gained + row.lost + row.unchanged
        assert n == 4  # experiment=smoke evaluates 4 questions
        assert mine.accuracy - other.accuracy == pytest.approx((row.gained - row.lost) / n)
    assert against_objective(runs[runs.objective == "visurf"], "visurf").empty


def test_against_control_pairs_each_seed_of_the_committed_ablation():
    from visurf.analysis import report
    from visurf.analysis.compare import against_control, compare_runs, summed_over_seeds
    from visurf.config.paths import ROOT

    runs = report.collect_runs(ROOT / "experiments" / "results" / "ablation")
    table = against_control(runs, "all")
    assert set(table.reward_control) == {"none", "align", "no_think", "smooth"}
    assert (table.against == "visurf").all() and len(table) == 4 * 3  # four controls, three seeds
    mine = runs[runs.reward_control == "all"].set_index("seed").run_dir
    for _, row in table.iterrows():
        other = runs[(runs.reward_control == row.reward_control) & (runs.seed == row.seed)].run_dir.item()
        change = compare_runs(other, mine[row.seed])
        assert (row.gained, row.lost) == (change["gained"], change["lost"])
    summed = summed_over_seeds(table).set_index("reward_control")
    assert summed.loc["none", "gained"] == table[table.reward_control == "none"].gained.sum()
    # A comparison sweep has one control for ViSurf: nothing to pair.
    assert against_control(report.collect_runs(ROOT / "experiments" / "results" / "pocket"), "all").empty


def test_summed_over_seeds_adds_each_comparisons_seeds():
    import pandas as pd

    from visurf.analysis.compare import summed_over_seeds

    table = pd.DataFrame(
        [
            {
                "against": "rlvr",
                "reward_control": None,
                "seed": 0,
                "gained": 5,
                "lost": 0,
                "unchanged": 3,
                "p_value": 0.0625,
            },
            {
                "against": "rlvr",
                "reward_control": None,
                "seed": 1,
                "gained": 4,
                "lost": 1,
                "unchanged": 2,
                "p_value": 0.375,
            },
            {
                "against": "sft",
                "reward_control": None,
                "seed": 0,
                "gained": 1,
                "lost": 1,
                "unchanged": 6,
                "p_value": 1.0,
            },
        ]
    )
    summed = summed_over_seeds(table).set_index("against")
    assert summed.loc["rlvr", ["seeds", "gained", "lost", "unchanged"]].tolist() == [2, 9, 1, 5]
    assert summed.loc["rlvr", "p_value"] == pytest.approx(22 / 1024)  # 9 of 10 changes
    assert summed.loc["sft", ["seeds", "gained", "lost"]].tolist() == [1, 1, 1]
    assert summed.loc["sft", "p_value"] == pytest.approx(1.0)


def test_show_prints_the_answers_that_changed(tmp_path, capsys):
    def evaluation(name, correct, completions):
        path = tmp_path / f"{name}.json"
        groups = ["known", "known", "novel", "known"]
        path.write_text(
            json.dumps(
                {
                    "outcomes": [[i, g, c] for i, (g, c) in enumerate(zip(groups, correct))],
                    "answers": [
                        {"problem": f"q{i}", "label": f"box{i}", "completion": t}
                        for i, t in enumerate(completions)
                    ],
                }
            )
        )
        return path

    a = evaluation("a", [1.0, 0.0, 1.0, 1.0], ["right0", "wrong1", "right2", "right3"])
    b = evaluation("b", [0.0, 1.0, 0.0, 1.0], ["off0", "now1", "off2", "right3"])
    main([str(a), str(b), "--show", "5"])
    out = capsys.readouterr().out
    assert "lost #0 (known): q0" in out and "A: right0" in out and "B: off0" in out and "label: box0" in out
    assert "gained #1 (known): q1" in out and "lost #2 (novel)" in out and "#3" not in out  # #3 unchanged
    main([str(a), str(b), "--show", "1", "--group", "known"])
    out = capsys.readouterr().out
    assert "lost #0" in out and "gained #1" in out and "#2" not in out
    run_dir = _fake_run(tmp_path / "run", 2, json.loads(a.read_text())["outcomes"])
    with pytest.raises(SystemExit):
        main([str(run_dir), str(b), "--show", "2"])
    assert "--show needs the answers" in capsys.readouterr().err


def test_against_start_sums_each_steps_change_over_seeds_by_group(tmp_path):
    from tests.cli.test_report import fake_run
    from visurf.analysis import report
    from visurf.analysis.compare import against_start

    # Two seeds of rlvr evaluated at steps 0, 40 and 80 on four questions (two known, two novel).
    start = [[0, "known", 0.0], [1, "known", 1.0], [2, "novel", 0.0], [3, "novel", 0.0]]
    later = {
        0: {40: [1.0, 1.0, 0.0, 0.0], 80: [1.0, 0.0, 1.0, 0.0]},
        1: {40: [1.0, 1.0, 1.0, 0.0], 80: [1.0, 1.0, 1.0, 1.0]},
    }
    for seed, steps in later.items():
        fake_run(tmp_path, f"rlvr_s{seed}", "rlvr", seed, 0.5, {}, reward_control=None)
        _fake_run(tmp_path / f"rlvr_s{seed}", 0, start)
        for step, correct in steps.items():
            _fake_run(tmp_path / f"rlvr_s{seed}", step, [[k, g, c] for (k, g, _), c in zip(start, correct)])
    table = against_start(report.collect_runs(tmp_path)).set_index("step")
    assert list(table.index) == [40, 80] and (table.seeds == 2).all()
    # step 40: seed 0 gained question 0; seed 1 gained 0 and 2.
    assert table.loc[40, ["gained", "lost", "unchanged"]].tolist() == [3, 0, 5]
    assert table.loc[40, "groups"]["known"] == {"gained": 2, "lost": 0, "unchanged": 2}
    # step 80: seed 0 gained 0 and 2, lost 1; seed 1 gained 0, 2 and 3.
    assert table.loc[80, ["gained", "lost"]].tolist() == [5, 1]
    assert table.loc[80, "groups"]["novel"]["gained"] == 3 and table.loc[80, "groups"]["known"]["lost"] == 1
    assert table.loc[80, "p_value"] == pytest.approx(mcnemar(5, 1))
    # the report's cell for a group: its counts and their own McNemar p (3 of 3 changes: 0.25)
    assert (
        report._change(table.loc[80, "groups"]["novel"]) == f"3 / 0 ({mcnemar(3, 0):.2g})" == "3 / 0 (0.25)"
    )


def mcnemar(gained, lost):
    from math import comb

    n = gained + lost
    tail = sum(comb(n, k) for k in range(min(gained, lost) + 1)) / 2**n
    return min(1.0, 2 * tail)


def test_summed_over_seeds_adds_the_groups_of_each_seed(tmp_path_factory):
    from tests.cli.test_report import build_smoke_sweep
    from visurf.analysis import report
    from visurf.analysis.compare import against_objective, summed_over_seeds

    runs = report.collect_runs(build_smoke_sweep(tmp_path_factory))
    table = against_objective(runs, "visurf")
    summed = summed_over_seeds(table).set_index("against")
    for against, seeds in table.groupby("against"):
        groups = summed.loc[against, "groups"]
        for kind in ("gained", "lost"):
            assert sum(c[kind] for c in groups.values()) == summed.loc[against, kind] == seeds[kind].sum()


def test_questions_restricts_the_comparison_to_an_index_range(tmp_path, capsys):
    before = [[i, "known", 0.0] for i in range(6)]
    after = [[i, "known", float(i < 3)] for i in range(5)] + [[5, "known", 0.0]]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps({"outcomes": before}))
    b.write_text(json.dumps({"outcomes": after}))
    assert main([str(a), str(b)])["gained"] == 3
    only_late = main([str(a), str(b), "--questions", "2:6"])
    assert (only_late["gained"], only_late["lost"], only_late["unchanged"]) == (1, 0, 3)
    assert compare_runs(a, b, questions=range(3, 6))["gained"] == 0
    with pytest.raises(ValueError, match="no question in 10:20"):
        compare_runs(a, b, questions=range(10, 20))
    for bad in ("5", "6:2", "a:b"):
        with pytest.raises(SystemExit):
            main([str(a), str(b), "--questions", bad])
    assert "START:END" in capsys.readouterr().err
