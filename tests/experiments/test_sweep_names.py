"""The pocket sweeps' documented multiruns name their runs as the committed results are named.

Each multirun of `sweep_multiruns` (experiments/sweeps/sweeps.sh, what run_pocket.sh runs) and
each multirun command in the results README is expanded into its jobs by Hydra's own sweeper,
and every job's config composed; a job's folder is `hydra.sweep.subdir` with its job number.
Composition only: nothing trains.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from visurf.config.paths import CONF_DIR
from visurf.config.validate import validate
from visurf.runs.naming import parse_job_folder, register_resolvers

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "experiments" / "results"
SWEEPS = ("pocket", "pocket_swapped", "ablation")


def job_folders(overrides: list[str]) -> list[str]:
    """The run folders `python -m visurf.run -m OVERRIDES` makes, in job order."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    (jobs,) = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    register_resolvers()
    folders = []
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        for num, job in enumerate(jobs):
            cfg = compose(config_name="config", overrides=job, return_hydra_config=True)
            validate(cfg)  # every documented job would also start: a preset no objective refuses
            OmegaConf.update(cfg, "hydra.job.num", num)
            folders.append(OmegaConf.select(cfg, "hydra.sweep.subdir"))
    return folders


def multiruns(sweep: str) -> list[list[str]]:
    out = subprocess.run(
        ["bash", "-c", f"source experiments/sweeps/sweeps.sh && sweep_multiruns {sweep}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.split() for line in out.stdout.splitlines()]


def committed(sweep: str) -> set[str]:
    return {p.parent.name for p in (RESULTS / sweep).glob("*/summary.json")}


def test_the_job_number_counts_within_a_multirun():
    assert job_folders(["experiment=pocket", "objective=sft,rlvr", "seed=0,1"]) == [
        "0_sft_s0",
        "1_sft_s1",
        "2_rlvr_s0",
        "3_rlvr_s1",
    ]


def test_a_job_folder_parses_back_to_its_run_name_and_seed():
    folders = job_folders(["experiment=pocket", "objective=sft_rlvr,visurf", "seed=0,12"])
    assert [parse_job_folder(f) for f in folders] == [
        ("sft_rlvr", 0),
        ("sft_rlvr", 12),
        ("visurf_all", 0),
        ("visurf_all", 12),
    ]
    assert parse_job_folder("base") is None and parse_job_folder("visurf_all_s0") is None


@pytest.mark.parametrize("sweep", SWEEPS)
def test_run_pocket_makes_the_committed_run_names(sweep):
    folders = [folder for overrides in multiruns(sweep) for folder in job_folders(overrides)]
    assert len(folders) == len(set(folders)), f"{sweep}: two runs would share a folder"
    assert set(folders) == committed(sweep)
    fresh = {p.stem for p in (RESULTS / "fresh" / sweep).glob("*.json")} - {"base"}
    assert fresh == committed(sweep)


@pytest.mark.parametrize(
    ("readme", "sweeps"),
    [
        (RESULTS / "README.md", {*SWEEPS, "pocket_novel", "pocket_novel_random", "pocket_novel_swapped"}),
        (ROOT / "experiments" / "README.md", {"pocket"}),
    ],
)
def test_the_readmes_multiruns_make_the_committed_run_names(readme, sweeps):
    made: dict[str, list[str]] = {}
    for line in re.findall(r"^.*python -m visurf\.run -m .*$", readme.read_text(), flags=re.M):
        words = shlex.split(line.split("python -m visurf.run -m", 1)[1], comments=True)
        (sweep_dir,) = [w.split("=", 1)[1] for w in words if w.startswith("hydra.sweep.dir=")]
        overrides = [w for w in words if "=" in w and not w.startswith("hydra.")]
        made.setdefault(Path(sweep_dir).name, []).extend(job_folders(overrides))
    assert set(made) == sweeps
    for sweep, folders in made.items():
        assert len(folders) == len(set(folders)), f"{sweep}: two runs would share a folder"
        # A sweep planned before its runs has no results folder yet; once run, the names must match.
        if (RESULTS / sweep).exists():
            assert set(folders) == committed(sweep), sweep
