"""The runs of a sweep in tables and plots (`python -m visurf.report SWEEP_DIR` writes them).

Every folder under SWEEP_DIR holding a `summary.json` is a run. Runs are grouped by
(objective, reward_control); each row gives mean ± std over seeds (sample std, ddof=1) of the
final test metrics, the largest gradient norm and KL any seed logged, the skipped steps of all
seeds together, the number of seeds and the mean wall time. Written into SWEEP_DIR:
`report.md`, `report.csv` (the same numbers, unformatted), `reward.png` and `accuracy.png`
(`train/reward` and `train/accuracy` over steps, mean over seeds, lightly smoothed), and
`test_accuracy.png` (test accuracy at every evaluation step, mean and ± std band over seeds).
report.md also compares runs question by question, summed over seeds, with McNemar's p-value
(visurf.compare), overall and per data group: ViSurf against each other objective, `all`
against each other reward control where the sweep is an ablation, and each run's evaluations
during training against its own evaluation before it.
Anything a run did not log (an SFT run has no train/reward) is '—' in the table and left out
of the plots.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from omegaconf import OmegaConf

from visurf.data.groups import GROUPS
from visurf.evaluation.paired import mcnemar_p
from visurf.runs.naming import DEFAULT_INJECTION, injection_of, reward_control_of
from visurf.runs.rundir import RunDir

log = logging.getLogger(__name__)

# What tells runs apart besides the seed (the run name's parts): visurf.runs.naming.
KEYS = ["objective", "reward_control", "injection"]
# Test metrics averaged over seeds: column -> path in summary.json's eval_after.
EVAL_METRICS = {
    "accuracy": ("accuracy",),
    **{group: ("groups", group, "accuracy") for group in GROUPS},
    "strict_format_rate": ("strict_format_rate",),
    "format_rate": ("format_rate",),
    "giou": ("giou",),
    "mean_reward": ("mean_reward",),
}
# Metrics recorded under an older name in summaries written before it changed: new -> old.
ALIASES = {"strict_format_rate": "think_rate"}
# Test questions each run turned right (gained) or wrong (lost): summary.json's `change`.
CHANGE = ("gained", "lost")
MEAN_STD = [*EVAL_METRICS, "before_accuracy", *CHANGE]
CURVES = {"reward": "train/reward", "accuracy": "train/accuracy"}
# Canonical row order; anything else follows alphabetically.
ORDER = {
    "objective": ["sft", "rlvr", "grpo", "sft_rlvr", "visurf"],
    "reward_control": ["none", "align", "no_think", "smooth", "all"],
    "injection": ["visurf", "luffy", "sgrpo", "hpt"],
}


def _get(tree, path: tuple[str, ...]) -> float:
    if path[-1] in ALIASES and isinstance(tree, dict):
        inner = tree
        for key in path[:-1]:
            inner = inner.get(key) if isinstance(inner, dict) else None
        if isinstance(inner, dict) and path[-1] not in inner:  # an older summary
            path = (*path[:-1], ALIASES[path[-1]])
    for key in path:
        if not isinstance(tree, dict) or tree.get(key) is None:
            return math.nan
        tree = tree[key]
    return float(tree)


def _column_max(metrics: pd.DataFrame | None, column: str) -> float:
    if metrics is None or column not in metrics:
        return math.nan
    return float(metrics[column].max())  # NaN when the column is empty


def read_metrics(run_dir: Path) -> pd.DataFrame | None:
    path = RunDir(run_dir).metrics
    return pd.read_csv(path) if path.is_file() else None


def identity(run_dir: Path, summary: dict) -> tuple[str | None, str | None]:
    """The run's reward control and injection preset, each None where no stage injected the label.

    Summaries written before they were recorded only where they apply name a control for every
    run and no injection; the run's resolved config.yaml says which applied.
    """
    config = RunDir(run_dir).config
    if config.is_file():
        try:
            cfg = OmegaConf.load(config)
            return reward_control_of(cfg), injection_of(cfg)
        except (AttributeError, KeyError):  # a config of another shape: trust the summary
            pass
    return summary.get("reward_control"), summary.get("injection")


def collect_runs(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per run under `sweep_dir` (recursively): its settings, test metrics and stability."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep directory {sweep_dir} does not exist")
    rows = []
    for summary_path in sorted(sweep_dir.rglob(RunDir.SUMMARY)):
        run_dir = summary_path.parent
        summary = json.loads(summary_path.read_text())
        metrics = read_metrics(run_dir)
        after = summary.get("eval_after") or {}
        rows.append(
            {
                "run": str(run_dir.relative_to(sweep_dir)),
                "run_dir": str(run_dir),
                "objective": summary.get("objective"),
                **dict(zip(("reward_control", "injection"), identity(run_dir, summary))),
                "seed": summary.get("seed"),
                "steps": summary.get("steps"),
                **{name: _get(after, path) for name, path in EVAL_METRICS.items()},
                "before_accuracy": _get(summary.get("eval_before"), ("accuracy",)),
                **{name: _get(summary.get("change"), (name,)) for name in CHANGE},
                "max_grad_norm": _column_max(metrics, "train/grad_norm"),
                "max_kl": _column_max(metrics, "train/kl"),
                "skipped_steps": summary.get("skipped_steps", 0),
                "wall_time_s": summary.get("wall_time_s", math.nan),
            }
        )
    if not rows:
        raise FileNotFoundError(f"no runs under {sweep_dir} (no */summary.json)")
    return pd.DataFrame(rows)


def _order(values: pd.Series) -> pd.Series:
    known = ORDER.get(values.name, [])
    return values.map(lambda v: (known.index(v), "") if v in known else (len(known), str(v)))


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (objective, reward_control, injection): `<metric>_mean`, `<metric>_std` and stability."""
    duplicated = runs.duplicated([*KEYS, "seed"], keep=False)
    if duplicated.any():  # e.g. a sweep over some other setting: those runs are pooled here
        log.warning("runs share (objective, reward_control, injection, seed): %s", list(runs.run[duplicated]))
    grouped = runs.groupby(KEYS, sort=False, dropna=False)  # None: no label, so no control or injection
    table = grouped.agg(
        n_seeds=("seed", "size"),
        **{f"{m}_mean": (m, "mean") for m in MEAN_STD},
        **{f"{m}_std": (m, "std") for m in MEAN_STD},
        max_grad_norm=("max_grad_norm", "max"),
        max_kl=("max_kl", "max"),
        skipped_steps=("skipped_steps", "sum"),
        wall_time_s=("wall_time_s", "mean"),
    )
    columns = ["n_seeds", *[f"{m}_{s}" for m in MEAN_STD for s in ("mean", "std")]]
    columns += ["max_grad_norm", "max_kl", "skipped_steps", "wall_time_s"]
    return table[columns].reset_index().sort_values(KEYS, key=_order, ignore_index=True)


# -- the markdown table ----------------------------------------------------------------------------
def _fmt(value, spec: str) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _control(value) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def shows_injection(table: pd.DataFrame) -> bool:
    """Whether a table's rows differ in injection preset beyond ViSurf's own: only then is the
    injection a column (a sweep of one preset reads as it did before the key existed)."""
    if "injection" not in table:
        return False
    return any(_control(v) not in ("—", DEFAULT_INJECTION) for v in table.injection)


def label(key: tuple) -> str:
    """A curve's legend: objective / reward control / injection, each where it applies."""
    objective, control, injection = key
    shown = [objective, control, None if injection == DEFAULT_INJECTION else injection]
    return " / ".join(str(v) for v in shown if _control(v) != "—")


def _mean_std(row, metric: str) -> str:
    mean, std = row[f"{metric}_mean"], row[f"{metric}_std"]
    if math.isnan(mean):
        return "—"
    spec = ".1f" if metric in CHANGE else ".3f"  # counts of questions, else rates
    return _fmt(mean, spec) + ("" if math.isnan(std) else f" ± {std:{spec}}")  # one seed: no std


def to_markdown(summary: pd.DataFrame) -> str:
    """The summary as a markdown table (mean ± std over seeds)."""
    injections = shows_injection(summary)
    header = ["objective", "reward_control", *(["injection"] if injections else []), "seeds"]
    header += [*EVAL_METRICS, "acc. before", *CHANGE, "max grad norm", "max KL", "skipped", "wall time (s)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in summary.iterrows():
        cells = [row.objective, _control(row.reward_control)]
        cells += [_control(row.injection)] if injections else []
        cells += [str(row.n_seeds)]
        cells += [_mean_std(row, m) for m in MEAN_STD]
        cells += [_fmt(row.max_grad_norm, ".3g"), _fmt(row.max_kl, ".3g")]
        cells += [str(int(row.skipped_steps)), _fmt(row.wall_time_s, ".0f")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def paired_markdown(runs: pd.DataFrame) -> str:
    """Question-by-question comparisons summed over seeds (visurf.analysis.compare): ViSurf against
    each other objective, ViSurf under `all` against each other reward control (the ablation), and
    ViSurf's own injection against each other injection preset. Gained: questions ViSurf answers
    right and the other run wrong. Empty when none applies."""
    from visurf.analysis.compare import (
        against_control,
        against_injection,
        against_objective,
        seed_level_over_seeds,
        summed_over_seeds,
    )

    comparisons = {
        "ViSurf against each other objective": lambda: against_objective(runs, "visurf"),
        "ViSurf with reward control `all` against each other control": lambda: against_control(runs, "all"),
        f"ViSurf with injection `{DEFAULT_INJECTION}` against each other injection": lambda: (
            against_injection(runs, DEFAULT_INJECTION)
        ),
    }
    parts = []
    for title, table in comparisons.items():

        def ordered(frame):
            return frame.sort_values(
                ["against", "reward_control", "injection"],
                key=lambda v: _order(v.rename("objective" if v.name == "against" else v.name)),
                ignore_index=True,
            )

        try:
            pairs = table()
            summed, levels = ordered(summed_over_seeds(pairs)), ordered(seed_level_over_seeds(pairs))
        except (FileNotFoundError, ValueError) as err:  # runs without per-question outcomes, other splits
            parts.append(f"{title}: not available ({err}).\n")
            continue
        if not summed.empty:
            parts.append(_paired_table(title, summed) + _seed_level_table(levels))
    if not parts:
        return ""
    return "\n## Paired comparisons (test questions gained / lost)\n\n" + "\n".join(parts)


def _paired_table(title: str, summed: pd.DataFrame) -> str:
    keys = ["against", "reward_control", *(["injection"] if shows_injection(summed) else [])]
    lines = [f"{title}, summed over seeds:", ""]
    lines += _table([*keys, "seeds", "gained", "lost", "unchanged", "McNemar p"])
    for _, row in summed.iterrows():
        cells = [str(row.against), *(_control(row[k]) for k in keys[1:]), str(row.seeds)]
        cells += [str(row.gained), str(row.lost), str(row.unchanged), f"{row.p_value:.3g}"]
        lines.append("| " + " | ".join(cells) + " |")
    groups = _group_names(summed.groups)
    lines += ["", "By data group (gained / lost, McNemar p):", ""]
    lines += _table([*keys, *groups])
    for _, row in summed.iterrows():
        cells = [str(row.against), *(_control(row[k]) for k in keys[1:])]
        lines.append("| " + " | ".join(cells + [_change(row.groups.get(g)) for g in groups]) + " |")
    return "\n".join(lines) + "\n"


def _seed_level_table(levels: pd.DataFrame) -> str:
    """The same comparisons at the level of seeds: accuracy differences in points."""
    keys = ["against", "reward_control", *(["injection"] if shows_injection(levels) else [])]
    lines = [
        "",
        "At the level of seeds (accuracy difference in points, per seed; t-test over seeds; 95% bootstrap interval):",
        "",
    ]
    lines += _table([*keys, "seeds", "per seed", "mean (sd)", "t-test p", "95% interval"])
    for _, row in levels.iterrows():
        cells = [str(row.against), *(_control(row[k]) for k in keys[1:]), str(row.seeds)]
        cells.append(", ".join(f"{100 * d:+.1f}" for d in row.differences))
        cells.append(f"{100 * row['mean']:+.2f} ({100 * row.sd:.2f})")
        cells.append(
            "—" if row.t_p_value is None or row.t_p_value != row.t_p_value else f"{row.t_p_value:.3g}"
        )
        cells.append(f"[{100 * row.ci[0]:+.2f}, {100 * row.ci[1]:+.2f}]")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def start_markdown(runs: pd.DataFrame) -> str:
    """Each objective's evaluations against its own start (step 0), summed over seeds, overall and
    per data group: whether the test curves' rise is significant, and where it comes from."""
    from visurf.analysis.compare import against_start

    try:
        table = against_start(runs)
    except (FileNotFoundError, ValueError) as err:
        return f"\n## Against the start, by evaluation step\n\nNot available ({err}).\n"
    if table.empty:
        return ""
    table = table.sort_values(KEYS, key=_order, kind="stable")
    groups = _group_names(table.groups)
    lines = ["", "## Against the start, by evaluation step", ""]
    lines += [
        "Each run's test evaluation at that step against its own evaluation before training,",
        "summed over seeds (gained / lost, McNemar p).",
        "",
    ]
    keys = ["objective", "reward_control", *(["injection"] if shows_injection(table) else [])]
    lines += _table([*keys, "step", "seeds", "all", *groups])
    for _, row in table.iterrows():
        cells = [str(row.objective), *(_control(row[k]) for k in keys[1:]), str(row.step), str(row.seeds)]
        cells += [_change(row)] + [_change(row.groups.get(g)) for g in groups]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _table(header: list[str]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]


def _group_names(groups) -> list[str]:
    """The data groups in these per-group counts, in the order of the summary's group columns."""
    names = {name for counts in groups for name in counts}
    ordered = [path[1] for path in EVAL_METRICS.values() if path[0] == "groups" and path[1] in names]
    return ordered + sorted(names - set(ordered))


def _change(counts) -> str:
    """`gained / lost (McNemar p)` of one paired change."""
    if counts is None:
        return "—"
    return f"{counts['gained']} / {counts['lost']} ({mcnemar_p(counts['gained'], counts['lost']):.2g})"


# -- curves ----------------------------------------------------------------------------------------
def per_run(runs: pd.DataFrame, column: str, reduce: str):
    """Yield (objective, reward_control, injection) and a table of `column` over `step`, one column per run
    that logged it (a step logged twice reduced by `reduce`: "mean" or "last")."""
    for key, group in runs.groupby(KEYS, sort=False, dropna=False):
        series = []
        for run_dir in group.run_dir:
            metrics = read_metrics(Path(run_dir))
            if metrics is None or column not in metrics or "step" not in metrics:
                continue
            logged = metrics[["step", column]].dropna()
            if not logged.empty:
                series.append(logged.groupby("step")[column].agg(reduce))
        if series:
            yield key, pd.concat(series, axis=1)


def curves(runs: pd.DataFrame, column: str) -> dict[tuple[str, str], pd.Series]:
    """`column` over `step` per (objective, reward_control, injection): mean over seeds, lightly smoothed."""
    out = {}
    for key, table in per_run(runs, column, "mean"):
        mean = table.mean(axis=1).sort_index()
        window = max(1, len(mean) // 20)  # light: ~5% of the run
        out[key] = mean.rolling(window, min_periods=1).mean()
    return out


def plot_curves(runs: pd.DataFrame, column: str) -> Figure:
    """A figure of `column` per (objective, reward_control, injection). pyplot-free: no global backend is set."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    lines = curves(runs, column)
    for key, series in lines.items():
        ax.plot(series.index, series.values, label=label(key))
    if lines:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, f"no run logged {column}", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("step")
    ax.set_ylabel(column)
    ax.set_title(f"{column} (mean over seeds)")
    ax.grid(alpha=0.3)
    return fig


def eval_curves(runs: pd.DataFrame, column: str = "eval/accuracy") -> dict[tuple[str, str], pd.DataFrame]:
    """Test `column` at each evaluation step per (objective, reward_control, injection): columns `mean`,
    `std` (sample std over the seeds evaluated at that step; 0 for one seed) and `seeds`.

    Evaluations are sparse (before, every `eval.every_n_batches`, after), so nothing is smoothed.
    """
    out = {}
    for key, table in per_run(runs, column, "last"):
        out[key] = pd.DataFrame(
            {
                "mean": table.mean(axis=1),
                "std": table.std(axis=1, ddof=1).fillna(0.0),
                "seeds": table.count(axis=1),
            }
        ).sort_index()
    return out


def plot_eval_curves(runs: pd.DataFrame, column: str = "eval/accuracy") -> Figure:
    """Test accuracy over training steps per (objective, reward_control, injection): mean over seeds with a
    band of ± one sample std."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    lines = eval_curves(runs, column)
    for key, table in lines.items():
        (line,) = ax.plot(table.index, table["mean"], marker="o", label=label(key))
        ax.fill_between(
            table.index,
            table["mean"] - table["std"],
            table["mean"] + table["std"],
            color=line.get_color(),
            alpha=0.15,
        )
    if lines:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, f"no run logged {column}", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("step")
    ax.set_ylabel(column)
    ax.set_title(f"{column} over training (mean ± std over seeds)")
    ax.grid(alpha=0.3)
    return fig


def write_report(sweep_dir: str | Path) -> dict[str, Path]:
    """Write report.md, report.csv and the curves' PNGs into `sweep_dir`; return their paths."""
    sweep_dir = Path(sweep_dir)
    runs = collect_runs(sweep_dir)
    summary = summarise(runs)
    paths = {"markdown": sweep_dir / "report.md", "csv": sweep_dir / "report.csv"}
    note = f"{len(runs)} runs under `{sweep_dir}`; mean ± sample std over seeds.\n\n"
    text = f"# Sweep report\n\n{note}{to_markdown(summary)}{paired_markdown(runs)}{start_markdown(runs)}"
    paths["markdown"].write_text(text)
    summary.to_csv(paths["csv"], index=False)
    for name, column in CURVES.items():
        paths[name] = sweep_dir / f"{name}.png"
        plot_curves(runs, column).savefig(paths[name], dpi=100)
    paths["test_accuracy"] = sweep_dir / "test_accuracy.png"
    plot_eval_curves(runs).savefig(paths["test_accuracy"], dpi=100)
    return paths
