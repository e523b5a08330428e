"""Shared fixtures: a per-session visurf cache (tiny models and data are built once) and runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny-model matmuls gain nothing from a second thread and spin-wait under load."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session", autouse=True)
def visurf_cache(tmp_path_factory):
    """All tests share one cache; CI sets VISURF_CACHE to reuse it across steps."""
    path = os.environ.get("VISURF_TEST_CACHE") or str(tmp_path_factory.mktemp("visurf-cache"))
    old = os.environ.get("VISURF_CACHE")
    os.environ["VISURF_CACHE"] = path
    yield Path(path)
    if old is None:
        os.environ.pop("VISURF_CACHE", None)
    else:
        os.environ["VISURF_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_dir(visurf_cache):
    """The tiny random Qwen2.5-VL model directory (built on first use)."""
    from visurf.models.loading import tiny_dir as build

    return build(112)


def smoke_config(*overrides: str):
    """The composed config of a smoke-size run with these overrides."""
    from visurf.config.compose import compose_config

    return compose_config(["experiment=smoke", *overrides])


def run(tmp_path: Path, *overrides: str, name: str = "run") -> tuple[Path, dict]:
    """A real visurf run (Hydra composition, Lightning Trainer) into tmp_path/name."""
    from visurf.config.compose import compose_config
    from visurf.recipes.train import train

    run_dir = tmp_path / name
    summary = train(compose_config(list(overrides)), run_dir)
    return run_dir, summary


@pytest.fixture
def smoke_run(tmp_path):
    def go(*overrides: str, name: str = "run"):
        return run(tmp_path, "experiment=smoke", *overrides, name=name)

    return go


def write_answerer_data(folder: Path) -> Path:
    """Train and test splits (visurf's schema) that ask for "the thing" (one box) or "no such thing" ([])."""
    import json

    import datasets
    from PIL import Image

    box = [{"bbox_2d": [20, 30, 80, 90], "point_2d": [50, 60]}]
    rows = [
        {
            "id": f"r{i}",
            "problem": "the thing" if i % 2 == 0 else "no such thing",
            "solution": json.dumps(box if i % 2 == 0 else []),
            "image": Image.new("RGB", (112, 112), (i * 30 % 255, 100, 200)),
        }
        for i in range(8)
    ]
    features = datasets.Features(
        {name: datasets.Value("string") for name in ("id", "problem", "solution")}
        | {"image": datasets.Image()}
    )
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        datasets.Dataset.from_list(rows, features=features).to_parquet(str(folder / f"{split}.parquet"))
    return folder


@pytest.fixture(scope="session")
def answerer(tmp_path_factory) -> Path:
    """A run of the tiny model taught by 60 SFT steps to answer "the thing" with the box
    [20, 30, 80, 90] (point [50, 60]) in its 112-px frame, and "no such thing" with `[]`; about 20 s."""
    root = tmp_path_factory.mktemp("answerer")
    data = write_answerer_data(root / "data")
    run_dir, summary = run(
        root,
        "experiment=smoke",
        "objective=sft",
        "data=local",
        f"data.path={data}",
        "trainer.max_steps=60",
        "optim.lr=1e-3",
        "optim.warmup_steps=0",
        "rollout.max_new_tokens=40",
        "eval.num_examples=4",
    )
    assert summary["eval_after"]["accuracy"] == 1.0, "the answerer did not learn its two answers"
    return run_dir
