"""A run directory: the one place that knows what a run writes and where.

    RUN/config.yaml                     the resolved config (written first)
    RUN/metrics.csv                     every logged row (runs.metrics_log keeps it whole across resumes)
    RUN/samples/eval_stepNNNNN.jsonl    completions of each evaluation (.html: beside their images)
    RUN/samples/train_stepNNNNN.html    a rollout batch's completions, images inline (.jsonl beside)
    RUN/samples/outcomes_stepNNNNN.json [index, group, correct] of every test question
    RUN/wandb/ RUN/mlflow/              the trackers' runs, when logging.wandb / logging.mlflow are on
    RUN/checkpoints/last.ckpt           the final state (stepNNNNN.ckpt: periodic ones)
    RUN/model/                          the final weights as an HF model directory
    RUN/summary.json                    written last: a run without it did not finish

Every reader and writer of a run goes through `RunDir`: training, evaluation, export, resume,
compare and report.
"""

from __future__ import annotations

import json
from pathlib import Path


class RunDir:
    CONFIG = "config.yaml"
    SUMMARY = "summary.json"
    METRICS = "metrics.csv"
    SAMPLES = "samples"
    CHECKPOINTS = "checkpoints"
    LAST = "last.ckpt"
    MODEL = "model"

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    @classmethod
    def is_run(cls, path: str | Path) -> bool:
        return (Path(path).expanduser() / cls.CONFIG).is_file()

    # -- files --------------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def summary(self) -> Path:
        return self.path / self.SUMMARY

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def samples(self) -> Path:
        return self.path / self.SAMPLES

    @property
    def checkpoints(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / self.LAST

    @property
    def model(self) -> Path:
        return self.path / self.MODEL

    def eval_samples(self, step: int) -> Path:
        return self.samples / f"eval_step{step:05d}.jsonl"

    def eval_page(self, step: int) -> Path:
        return self.samples / f"eval_step{step:05d}.html"

    def train_samples(self, step: int) -> Path:
        """The page of a rollout batch's completions (logging.samples_every); .jsonl beside it."""
        return self.samples / f"train_step{step:05d}.html"

    def outcomes(self, step: int) -> Path:
        return self.samples / f"outcomes_step{step:05d}.json"

    def evaluations(self) -> dict[int, Path]:
        """The run's outcome files by evaluation step, in step order."""
        files = self.samples.glob("outcomes_step*.json")
        return dict(sorted((int(path.stem.removeprefix("outcomes_step")), path) for path in files))

    # -- contents -----------------------------------------------------------------------------
    def read_config(self):
        from omegaconf import OmegaConf

        if not self.config.is_file():
            raise FileNotFoundError(f"{self.path} is not a visurf run directory: {self.config} is missing")
        return OmegaConf.load(self.config)

    def read_summary(self) -> dict:
        return json.loads(self.summary.read_text())

    @property
    def finished(self) -> bool:
        return self.summary.is_file()

    def has_model(self) -> bool:
        return is_model_dir(self.model)


def is_model_dir(path: Path) -> bool:
    """An HF model directory: full weights (config.json) or a peft adapter (adapter_config.json)."""
    return (path / "config.json").is_file() or (path / "adapter_config.json").is_file()


def run_of_checkpoint(path: Path) -> RunDir | None:
    """The run a Lightning checkpoint file belongs to: it sits in RUN/checkpoints/ beside
    RUN/config.yaml; None anywhere else."""
    run = RunDir(path.parent.parent)
    return run if path.parent.name == RunDir.CHECKPOINTS and RunDir.is_run(run.path) else None
