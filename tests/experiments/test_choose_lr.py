"""experiments/sweeps/choose_lr.py: the learning-rate grid runs on the validation split and picks per objective."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments.sweeps import choose_lr

SCRIPT = Path(__file__).resolve().parents[2] / "experiments" / "sweeps" / "choose_lr.py"


def test_choose_takes_the_best_validation_accuracy_and_the_smaller_rate_on_ties():
    choose = choose_lr.choose
    rows = [
        {"objective": "sft", "lr": 1e-5, "val_after": 0.30},
        {"objective": "sft", "lr": 1e-4, "val_after": 0.40},
        {"objective": "rlvr", "lr": 1e-5, "val_after": 0.35},
        {"objective": "rlvr", "lr": 1e-4, "val_after": 0.35},
        {"objective": "visurf", "lr": 1e-4, "val_after": None},
    ]
    assert choose(rows) == {"sft": 1e-4, "rlvr": 1e-5}


def test_a_real_grid_runs_on_the_validation_split_and_records_its_choice(tmp_path):
    chosen = choose_lr.main(
        [
            "--experiment=smoke",
            "--objectives=sft",
            "--lrs=1e-4,3e-4",
            "--jobs=1",
            f"--work={tmp_path / 'work'}",
            f"--out={tmp_path / 'out'}",
            "trainer.max_steps=1",
        ]
    )
    grid = json.loads((tmp_path / "out" / "lr_grid.json").read_text())
    assert sorted(r["lr"] for r in grid["rows"]) == [1e-4, 3e-4]
    assert chosen["sft"] in (1e-4, 3e-4) and grid["chosen"] == chosen
    assert "| sft |" in (tmp_path / "out" / "lr_grid.md").read_text()
    for row in grid["rows"]:  # the paired change against the start, as the run's summary has it
        change = json.loads((tmp_path / "work" / "sft" / row["run"] / "summary.json").read_text())["change"]
        assert (row["gained"], row["lost"], row["p_value"]) == (
            change["gained"],
            change["lost"],
            change["p_value"],
        )
        assert f"({change['gained']}/{change['lost']}, p " in (tmp_path / "out" / "lr_grid.md").read_text()
        # each run's per-question outcomes are copied beside the table and give its change
        copied = tmp_path / "out" / "runs" / "sft" / row["run"]
        outcomes = sorted((copied / "samples").glob("outcomes_step*.json"))
        first, last = (json.loads(p.read_text()) for p in (outcomes[0], outcomes[-1]))
        assert len(outcomes) >= 2 and (copied / "config.yaml").exists()
        gained = sum(b[2] and not a[2] for a, b in zip(first, last))
        lost = sum(a[2] and not b[2] for a, b in zip(first, last))
        assert (gained, lost) == (row["gained"], row["lost"])
    for run in (tmp_path / "work" / "sft").glob("*/samples/eval_step*.jsonl"):
        assert '"id": "val-' in run.read_text().splitlines()[0]


def test_a_bad_rate_is_refused_before_any_run(tmp_path):
    with pytest.raises(ValueError):
        choose_lr.main(["--lrs=fast", f"--work={tmp_path}", f"--out={tmp_path}"])


def test_a_grid_cell_reads_accuracy_and_the_paired_change():
    cell = choose_lr.grid_cell
    assert (
        cell({"val_after": 0.41, "gained": 141, "lost": 53, "p_value": 2.06e-10}) == "0.410 (141/53, p 2e-10)"
    )
    assert cell({"val_after": 0.3}) == "0.300"  # a row from before runs recorded their change


def test_objectives_not_rerun_keep_their_rows_from_the_previous_grid(tmp_path):
    previous = tmp_path / "lr_grid.json"
    sft = {"objective": "sft", "lr": 1e-4, "val_after": 0.28}
    stale_rlvr = {"objective": "rlvr", "lr": 1e-4, "val_after": 0.10}
    previous.write_text(json.dumps({"rows": [sft, stale_rlvr], "chosen": {}}))
    kept = choose_lr.kept_rows(previous, ["rlvr"])
    assert kept == [sft]  # rlvr is re-run, so its old row goes; sft's stays
    assert choose_lr.kept_rows(tmp_path / "absent.json", ["rlvr"]) == []


def test_the_pocket_preset_records_the_grids_choice():
    """Each objective's rate in experiment=pocket is the one the committed grid chose."""
    from visurf.config.compose import compose_config
    from visurf.config.validate import validate

    grid = json.loads((SCRIPT.parents[1] / "results" / "lr_grid" / "lr_grid.json").read_text())
    assert set(grid["chosen"]) == {"sft", "rlvr", "sft_rlvr", "visurf"}
    for objective, lr in grid["chosen"].items():
        cfg = compose_config(["experiment=pocket", f"objective={objective}"])
        assert cfg.optim.lr == pytest.approx(lr), objective
        validate(cfg)  # the preset's KL weight is one each objective reads (none for SFT)
        assert cfg.objective.beta == (0.0 if objective == "sft" else 0.2), objective
    # the command line still overrides the preset's rate
    assert compose_config(["experiment=pocket", "objective=rlvr", "optim.lr=3e-3"]).optim.lr == 3e-3


def test_rates_are_written_as_in_the_configs_and_the_printed_block_reads_back_as_numbers():
    import yaml

    text = choose_lr.lr_text
    assert [text(lr) for lr in (1e-4, 3e-5, 2.5e-4, 1e-3)] == ["1e-4", "3e-5", "2.5e-4", "1e-3"]
    block = "".join(f"{o}: {text(lr, yaml=True)}\n" for o, lr in {"sft": 1e-4, "rlvr": 3e-5}.items())
    assert yaml.safe_load(block) == {"sft": 1e-4, "rlvr": 3e-5}
