"""`visurf.eval` on an evaluation set of the benchmark schema (docs/evaluation.md).

A split whose columns are the evaluation sets' (`text`, `mask`, ...) is scored by the released
protocol: gIoU, cIoU, box hit rate and N-Acc, from SAM2's masks with `eval.segmenter.path=DIR`,
box-level without. `eval.segmenter.*` keys are taken here, before the config is resolved, so
they also apply to a run whose config.yaml predates them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from visurf.cli.args import UsageError

log = logging.getLogger(__name__)

SEGMENTER_KEYS = ("path",)  # eval.segmenter.<key>
PER_SAMPLE = "samples"  # the result key holding every sample's record (the out= file only)


class BenchmarkError(UsageError):
    pass


def split_segmenter_overrides(overrides: list[str]) -> tuple[list[str], dict[str, str]]:
    """(the other overrides, {key: value} of `eval.segmenter.<key>=value`)."""
    rest, settings = [], {}
    for override in overrides:
        key, _, value = override.partition("=")
        name = key.lstrip("+").removeprefix("eval.segmenter.")
        if name == key.lstrip("+"):
            rest.append(override)
        elif name in SEGMENTER_KEYS:
            settings[name] = value
        else:
            raise BenchmarkError(f"{override}: eval.segmenter takes {', '.join(SEGMENTER_KEYS)}")
    return rest, settings


def segmenter_path(cfg, settings: dict) -> str | None:
    """The SAM2 model to segment with: the override, else the config's `eval.segmenter.path`."""
    path = (
        settings["path"] if "path" in settings else OmegaConf.select(cfg, "eval.segmenter.path", default=None)
    )
    return None if path in (None, "", "null", "None") else str(path)


def load_segmenter(path: str, device):
    """A SAM2 model directory, or a hub id looked up in the local HF cache (never downloaded)."""
    from visurf.models.loading import hf_cache_dir
    from visurf.models.segmenter import Sam2Segmenter

    folder = Path(path).expanduser()
    looks_like_hub_id = path.count("/") == 1 and not path.startswith((".", "/", "~"))
    if not folder.exists() and looks_like_hub_id:
        folder = hf_cache_dir(path)
    elif not folder.is_dir():
        raise FileNotFoundError(f"eval.segmenter.path={path}: {folder} is not a directory")
    try:
        return Sam2Segmenter.from_pretrained(folder, device)
    except ValueError as err:
        raise BenchmarkError(f"eval.segmenter.path={path}: {err}") from err


def benchmark_split(data_cfg, split: str, limit: int = 0):
    """The split as a `datasets.Dataset` when it has the evaluation schema, else None."""
    from visurf.data.benchmarks import is_benchmark
    from visurf.data.errors import DataError
    from visurf.data.sources import describe, open_split

    if data_cfg.source == "synth":
        return None
    ds = open_split(data_cfg, split)  # split files, a save_to_disk folder or a hub id
    if not is_benchmark(ds):
        return None
    if limit:
        ds = ds.select(range(min(limit, len(ds))))
    if len(ds) == 0:
        raise DataError(f"the {split} split of {describe(data_cfg)} has no rows")
    return ds


@dataclass
class Benchmark:
    """An evaluation set's split and the segmenter its masks come from (None: box-level)."""

    data: object  # datasets.Dataset of the evaluation schema
    device: object
    segmenter: object = None
    segmenter_path: str | None = None

    def run(self, cfg, model, processor) -> dict:
        """The protocol's figures of `model`, the settings they were measured with, and every
        sample's record (under `samples`)."""
        from visurf.data.dataset import frame_size
        from visurf.data.prompt import PROMPT_TEMPLATE
        from visurf.evaluation.benchmark import PROTOCOL, evaluate_benchmark

        log.info("evaluating on %d samples of an evaluation set (%s)", len(self.data), self.device)
        template = cfg.data.get("prompt_template") or PROMPT_TEMPLATE
        frame = cfg.model.frame
        frame = frame_size(OmegaConf.to_container(frame) if OmegaConf.is_config(frame) else frame)
        figures, records = evaluate_benchmark(
            model,
            processor,
            self.data,
            frame=frame,
            template=template,
            batch_size=int(cfg.eval.batch_size),
            max_new_tokens=int(cfg.eval.max_new_tokens),
            device=self.device,
            segmenter=self.segmenter,
            on_bad_row=str(cfg.data.on_bad_row),
        )
        return {
            **figures,
            "protocol": PROTOCOL,
            "segmenter": self.segmenter_path,
            "prompt_template": template,
            "max_new_tokens": int(cfg.eval.max_new_tokens),
            "frame": list(frame),
            PER_SAMPLE: records,
        }


def prepare(cfg, split: str, limit: int, segmenter_settings: dict, device) -> Benchmark | None:
    """The split as a Benchmark when it has the evaluation schema (its segmenter loaded now, so
    a wrong path fails before any generation), else None."""
    data = benchmark_split(cfg.data, split, limit)
    path = segmenter_path(cfg, segmenter_settings)
    if data is None:
        if "path" in segmenter_settings and path:
            log.warning(
                "eval.segmenter.path is unused: the %s split is not an evaluation set (docs/evaluation.md)",
                split,
            )
        return None
    return Benchmark(data, device, load_segmenter(path, device) if path else None, path)
