"""visurf.report: tables and plots of a sweep, on a real smoke sweep and on made-up runs."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import pandas as pd
import pytest

from visurf.analysis.report import (
    collect_runs,
    eval_curves,
    plot_curves,
    summarise,
    to_markdown,
    write_report,
)
from visurf.cli.report import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# (objective, seed, folder): sft, rlvr and two seeds of visurf, one nested to exercise the search.
SMOKE_RUNS = [
    ("sft", 0, "sft_s0"),
    ("rlvr", 0, "rlvr_s0"),
    ("visurf", 0, "visurf_s0"),
    ("visurf", 1, "more/visurf_s1"),
]


def build_smoke_sweep(tmp_path_factory) -> Path:
    """Real smoke runs, made once per test session in its base temp folder.

    test_eval_cli and test_notebook import this too, so the sweep is built once for all three.
    """
    from tests.conftest import run

    sweep = tmp_path_factory.getbasetemp() / "smoke-sweep"
    for objective, seed, name in SMOKE_RUNS:
        if not (sweep / name / "summary.json").is_file():
            run(sweep, "experiment=smoke", f"objective={objective}", f"seed={seed}", name=name)
    return sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return build_smoke_sweep(tmp_path_factory)


def column_max(run_dir: Path, column: str) -> float:
    with open(run_dir / "metrics.csv") as f:
        values = [float(row[column]) for row in csv.DictReader(f) if row.get(column)]
    return max(values) if values else math.nan


def test_report_on_a_smoke_sweep(sweep, capsys):
    paths = main([str(sweep)])
    assert set(paths) == {"markdown", "csv", "reward", "accuracy", "test_accuracy"}
    for name in ("reward", "accuracy", "test_accuracy"):
        assert paths[name].read_bytes()[:8] == PNG_MAGIC
    printed = capsys.readouterr().out
    assert "| objective | reward_control |" in printed

    table = pd.read_csv(paths["csv"])
    controls = dict(zip(table.objective, table.reward_control.fillna("—")))
    assert controls == {
        "sft": "—",
        "rlvr": "—",
        "visurf": "all",
    }  # a control only where the label is injected
    assert list(table.objective) == ["sft", "rlvr", "visurf"]  # the canonical order
    summaries = {name: json.loads((sweep / name / "summary.json").read_text()) for *_, name in SMOKE_RUNS}
    assert [summaries[n]["reward_control"] for n in ("sft_s0", "rlvr_s0", "visurf_s0")] == [None, None, "all"]

    # visurf: two seeds, checked by hand against the runs' own files.
    row = table.set_index("objective").loc["visurf"]
    names = ["visurf_s0", "more/visurf_s1"]
    assert row.n_seeds == 2
    for metric in ("accuracy", "mean_reward", "strict_format_rate", "format_rate", "giou"):
        values = [summaries[n]["eval_after"][metric] for n in names]
        assert row[f"{metric}_mean"] == pytest.approx(statistics.mean(values))
        assert row[f"{metric}_std"] == pytest.approx(statistics.stdev(values))
    known = [summaries[n]["eval_after"]["groups"]["known"]["accuracy"] for n in names]
    assert row.known_mean == pytest.approx(statistics.mean(known))
    before = [summaries[n]["eval_before"]["accuracy"] for n in names]
    assert row.before_accuracy_mean == pytest.approx(statistics.mean(before))
    gained = [summaries[n]["change"]["gained"] for n in names]
    assert row.gained_mean == pytest.approx(statistics.mean(gained))
    walls = [summaries[n]["wall_time_s"] for n in names]
    assert row.wall_time_s == pytest.approx(statistics.mean(walls))
    assert row.max_grad_norm == pytest.approx(max(column_max(sweep / n, "train/grad_norm") for n in names))
    assert row.skipped_steps == sum(summaries[n]["skipped_steps"] for n in names)

    # sft logs no KL: '—' in the markdown, empty in the CSV.
    sft = table.set_index("objective").loc["sft"]
    assert math.isnan(sft.max_kl) and sft.n_seeds == 1
    lines = paths["markdown"].read_text().splitlines()
    sft_line = next(line for line in lines if line.startswith("| sft | — |"))
    assert "—" in sft_line
    assert (
        sum(
            line.startswith("| ")
            for line in lines[: lines.index("## Paired comparisons (test questions gained / lost)")]
        )
        == 1 + 3
    )  # header + one row per group

    # Paired: ViSurf's seed 0 against RLVR's and SFT's (the only seed they share), as visurf.compare counts.
    from visurf.analysis.compare import compare_runs

    for other in ("sft", "rlvr"):
        change = compare_runs(sweep / f"{other}_s0", sweep / "visurf_s0")
        row = f"| {other} | — | 1 | {change['gained']} | {change['lost']} | {change['unchanged']} |"
        assert any(line.startswith(row) for line in lines), row
        known = change["groups"]["known"]
        assert any(
            line.startswith(f"| {other} | — | {known['gained']} / {known['lost']} (") for line in lines
        )
        # At the level of seeds: one seed, its accuracy difference in points, no test over one seed.
        questions = change["gained"] + change["lost"] + change["unchanged"]
        points = 100 * (change["gained"] - change["lost"]) / questions
        row = f"| {other} | — | 1 | {points:+.1f} | {points:+.2f} (0.00) | — |"
        assert any(line.startswith(row) for line in lines), row

    # Against the start: each seed's last evaluation against its first, as its summary.json counts.
    assert "## Against the start, by evaluation step" in lines
    sft_change = summaries["sft_s0"]["change"]
    row = f"| sft | — | {summaries['sft_s0']['steps']} | 1 | {sft_change['gained']} / {sft_change['lost']} ("
    assert any(line.startswith(row) for line in lines), row


def fake_run(root: Path, name: str, objective: str, seed: int, accuracy: float, metrics: dict, **extra):
    """A run folder with a made-up summary.json and metrics.csv."""
    run_dir = root / name
    run_dir.mkdir(parents=True)
    after = {
        "accuracy": accuracy,
        "mean_reward": 2 * accuracy,
        "format_rate": 1.0,
        "think_rate": 0.5,  # the older name of strict_format_rate
        "giou": accuracy / 2,
        "groups": {"known": {"accuracy": accuracy + 0.1}, "novel": {"accuracy": None}},
    }
    summary = {
        "objective": objective,
        "reward_control": extra.get("reward_control", "all"),
        "seed": seed,
        "steps": 3,
        "skipped_steps": extra.get("skipped", 0),
        "wall_time_s": extra.get("wall", 10.0),
        "eval_before": {"accuracy": 0.1},
        "eval_after": after,
        **({"change": extra["change"]} if "change" in extra else {}),
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    pd.DataFrame({"step": [0, 1, 2], **metrics}).to_csv(run_dir / "metrics.csv", index=False)


def test_summarise_made_up_runs(tmp_path):
    rl = {"train/reward": [1.0, 2.0, 3.0], "train/accuracy": [0.1, 0.2, 0.3]}
    visurf_runs = [  # seed, accuracy, extra metrics, extra summary fields
        (0, 0.2, {"train/grad_norm": [1, 5, 2]}, {"skipped": 1, "change": {"gained": 3, "lost": 1}}),
        (1, 0.4, {"train/kl": [0.0, 0.3, 0.1]}, {"wall": 20.0, "change": {"gained": 6, "lost": 2}}),
    ]
    for seed, accuracy, metrics, extra in visurf_runs:
        fake_run(tmp_path, f"a/visurf_s{seed}", "visurf", seed, accuracy, {**rl, **metrics}, **extra)
    fake_run(tmp_path, "b/sft_s0", "sft", 0, 0.5, {"train/grad_norm": [7.0, 1.0, 1.0]})

    runs = collect_runs(tmp_path)
    assert len(runs) == 3
    table = summarise(runs).set_index("objective")
    visurf = table.loc["visurf"]
    assert visurf.accuracy_mean == pytest.approx(0.3)
    assert visurf.accuracy_std == pytest.approx(math.sqrt(0.02))  # sample std of (0.2, 0.4)
    assert visurf.known_mean == pytest.approx(0.4)
    assert math.isnan(visurf.novel_mean) and math.isnan(visurf.multi_mean)
    assert (visurf.max_grad_norm, visurf.max_kl) == (5.0, pytest.approx(0.3))
    assert (visurf.skipped_steps, visurf.wall_time_s, visurf.n_seeds) == (1, 15.0, 2)
    assert math.isnan(table.loc["sft"].accuracy_std)  # one seed: no spread
    assert (visurf.gained_mean, visurf.lost_mean) == (4.5, 1.5)
    assert math.isnan(table.loc["sft"].gained_mean)  # a summary without `change` (older runs)
    assert visurf.strict_format_rate_mean == 0.5  # read under its older name, think_rate

    text = to_markdown(summarise(runs))
    assert "| visurf | all | 2 | 0.300 ± 0.141 |" in text
    assert "| 4.5 ± 2.1 | 1.5 ± 0.7 |" in text  # questions gained and lost: counts, one decimal
    assert "| sft | all | 1 | 0.500 |" in text
    paths = write_report(tmp_path)  # sft has no train/reward: left out of the plot, no error
    assert all(p.is_file() for p in paths.values())


def test_missing_sweep_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="no runs under"):
        collect_runs(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "absent")])
    assert exit_info.value.code == 2
    assert str(tmp_path / "absent") in capsys.readouterr().err


def test_the_committed_results_read():
    from visurf.config.paths import ROOT

    runs = collect_runs(ROOT / "experiments" / "results" / "pocket")
    assert len(runs) == 12 and not runs.strict_format_rate.isna().any()
    assert runs[runs.objective == "sft"].reward_control.isna().all()
    assert set(runs[runs.objective == "visurf"].reward_control) == {"all"}
    text = to_markdown(summarise(runs))
    assert "| sft | — | 3 |" in text and "| visurf | all | 3 |" in text


def test_the_committed_second_split_reads_and_was_run_on_that_world():
    from omegaconf import OmegaConf

    from visurf.config.paths import ROOT

    runs = collect_runs(ROOT / "experiments" / "results" / "pocket_swapped")
    assert len(runs) == 12 and sorted(runs.objective.unique()) == ["rlvr", "sft", "sft_rlvr", "visurf"]
    for run_dir in runs.run_dir:
        world = OmegaConf.load(Path(run_dir) / "config.yaml").data.synth
        assert list(world.novel_shapes) == ["circle"] and "red" in world.novel_colors, run_dir


def test_a_run_written_before_the_renames_still_reads(tmp_path):
    """Older summaries: think_rate for strict_format_rate, and a control named for every run
    (SFT and RLVR included), which the run's config.yaml overrules."""
    import shutil

    from visurf.config.paths import ROOT

    (committed,) = (ROOT / "experiments" / "results" / "pocket").glob("*_sft_s0")
    run = tmp_path / "sweep" / committed.name
    shutil.copytree(committed, run)
    summary = json.loads((run / "summary.json").read_text())
    summary["reward_control"] = "all"
    summary["eval_after"]["think_rate"] = summary["eval_after"].pop("strict_format_rate")
    (run / "summary.json").write_text(json.dumps(summary))
    row = collect_runs(tmp_path / "sweep").iloc[0]
    assert pd.isna(row.reward_control)
    assert row.strict_format_rate == summary["eval_after"]["think_rate"]


def test_a_summary_without_a_control_is_its_own_row(tmp_path):
    rl = {"train/reward": [1.0, 2.0, 3.0], "train/accuracy": [0.1, 0.2, 0.3]}
    fake_run(tmp_path, "rlvr_s0", "rlvr", 0, 0.2, rl, reward_control=None)
    fake_run(tmp_path, "rlvr_s1", "rlvr", 1, 0.4, rl, reward_control=None)
    fake_run(tmp_path, "visurf_s0", "visurf", 0, 0.5, rl)
    table = summarise(collect_runs(tmp_path))
    assert list(table.objective) == ["rlvr", "visurf"] and table.n_seeds.tolist() == [2, 1]
    assert "| rlvr | — | 2 | 0.300 ± 0.141 |" in to_markdown(table)
    assert [
        line.get_label() for line in plot_curves(collect_runs(tmp_path), "train/reward").axes[0].lines
    ] == [
        "rlvr",
        "visurf / all",
    ]


def test_test_accuracy_curves_take_mean_and_band_over_seeds_at_each_evaluation(tmp_path):
    # Two visurf seeds evaluated at steps 0, 10, 20 (one seed missed step 10); one rlvr seed.
    evals = {
        "visurf_s0": ("visurf", 0, {0: 0.30, 10: 0.40, 20: 0.50}),
        "visurf_s1": ("visurf", 1, {0: 0.30, 20: 0.60}),
        "rlvr_s0": ("rlvr", 0, {0: 0.30, 10: 0.20, 20: 0.25}),
    }
    for name, (objective, seed, points) in evals.items():
        fake_run(tmp_path, name, objective, seed, points[20], {})
        rows = [{"step": s, "eval/accuracy": a} for s, a in points.items()]
        rows.insert(1, {"step": 5, "train/loss": 1.0})  # training rows carry no eval value
        pd.DataFrame(rows).to_csv(tmp_path / name / "metrics.csv", index=False)
    curves = {key[:2]: table for key, table in eval_curves(collect_runs(tmp_path)).items()}
    visurf = curves[("visurf", "all")]  # keys are (objective, reward_control, injection)
    assert list(visurf.index) == [0, 10, 20]
    assert list(visurf["mean"]) == pytest.approx([0.30, 0.40, 0.55])
    assert list(visurf["seeds"]) == [2, 1, 2]
    assert visurf["std"].iloc[2] == pytest.approx(statistics.stdev([0.5, 0.6]))
    assert visurf["std"].iloc[1] == 0.0  # one seed at that step: no band
    assert list(curves[("rlvr", "all")]["mean"]) == pytest.approx([0.30, 0.20, 0.25])
    assert write_report(tmp_path)["test_accuracy"].read_bytes()[:8] == PNG_MAGIC


def test_runs_without_outcome_files_get_a_note_in_place_of_the_paired_table(tmp_path):
    rl = {"train/reward": [1.0, 2.0, 3.0], "train/accuracy": [0.1, 0.2, 0.3]}
    fake_run(tmp_path, "rlvr_s0", "rlvr", 0, 0.2, rl, reward_control=None)
    fake_run(tmp_path, "visurf_s0", "visurf", 0, 0.3, rl)
    text = write_report(tmp_path)["markdown"].read_text()
    assert "ViSurf against each other objective: not available" in text
    assert "has no samples/outcomes_step*.json" in text
    assert "| visurf | all | 1 |" in text  # the summary table is still written
