"""Export a run's policy as one plain HF model directory, adapters merged.

    python -m visurf.export checkpoint=RUN_DIR out=DIR
    python -m visurf.export checkpoint=RUN_DIR/checkpoints/last.ckpt out=DIR [dtype=float32]

`checkpoint` is a run directory (its final `model/`; `checkpoints/last.ckpt` when the run has
not finished) or a Lightning `.ckpt` file in a run's `checkpoints/`. The run's `config.yaml`
says how to rebuild the model; the base is the directory the adapter records, where it still
exists, else the config's `model`. LoRA / QLoRA adapters are merged into the base weights
(`merge_and_unload`), so the output loads with `AutoModelForImageTextToText.from_pretrained`
and needs neither peft nor bitsandbytes. A QLoRA base is loaded unquantised for the merge:
the output is the original base weights plus the trained adapters (the 4-bit rounding the
adapters were trained against is not baked in). `dtype` overrides the run's `model.dtype`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from visurf.cli.args import UsageError, key_values, reported

log = logging.getLogger(__name__)

USAGE = "usage: python -m visurf.export checkpoint=<run dir or .ckpt file> out=<dir> [dtype=float32|bfloat16|float16]"


class ExportError(FileNotFoundError):
    pass


def locate(checkpoint: str | Path) -> tuple[Path, Path]:
    """(run directory, what to load): the run's final `model/` or a `.ckpt` file."""
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        if (path / "model").is_dir():
            return path, path / "model"
        last = path / "checkpoints" / "last.ckpt"
        if last.is_file():
            return path, last
        raise ExportError(f"checkpoint={checkpoint}: the run directory has neither model/ nor {last.name}")
    if path.is_file():
        # A run's checkpoints live in run_dir/checkpoints/.
        return (path.parent.parent if path.parent.name == "checkpoints" else path.parent), path
    raise ExportError(f"checkpoint={checkpoint}: no such run directory or checkpoint file")


def run_config(run_dir: Path):
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ExportError(f"no run config at {path}: export needs the config.yaml of the run that wrote it")
    return OmegaConf.load(path)


def checkpoint_state(path: Path) -> dict[str, torch.Tensor]:
    """The policy's weights from a Lightning checkpoint (keys `policy.<model key>`)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    state = {k[len("policy.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("policy.")}
    if not state:
        raise ExportError(f"{path} holds no policy weights (no state_dict keys starting with 'policy.')")
    return state


def recorded_base(adapter_dir: Path) -> Path | None:
    """The base model directory the run trained on, as its adapter records it, if still there
    (the run config would re-resolve it, and a rebuilt tiny model may differ)."""
    import json

    path = adapter_dir / "adapter_config.json"
    if not path.is_file():
        return None
    recorded = json.loads(path.read_text()).get("base_model_name_or_path")
    return Path(recorded) if recorded and (Path(recorded) / "config.json").is_file() else None


def load_adapter_weights(model, state: dict[str, torch.Tensor], source: Path) -> None:
    # Only the adapters are trained; the frozen base comes from the base model (a QLoRA
    # checkpoint holds it quantised, which the full-precision copy could not load).
    wanted = [name for name, p in model.named_parameters() if p.requires_grad]
    missing = [name for name in wanted if name not in state]
    if missing:
        raise ExportError(
            f"{source} lacks {len(missing)} adapter weights of the run's config, e.g. {missing[0]}"
        )
    model.load_state_dict({name: state[name] for name in wanted}, strict=False)


def merged_model(checkpoint: str | Path, dtype: str | None = None):
    """(model, processor): the run's policy as a plain transformers model, adapters merged."""
    from peft import PeftModel, get_peft_model

    from visurf.models.adapters import lora_config
    from visurf.models.loading import DTYPES, load_policy
    from visurf.models.processing import VLProcessor

    run_dir, source = locate(checkpoint)
    cfg = run_config(run_dir)
    if dtype:
        if dtype not in DTYPES:
            raise ValueError(f"dtype={dtype!r}: must be one of {list(DTYPES)}")
        cfg.model.dtype = dtype
    cfg.model.gradient_checkpointing = False
    peft_name = cfg.get("peft", {}).get("name", "none")
    is_model_dir = source.is_dir()

    if peft_name == "none" and is_model_dir:
        return load_policy(cfg.model, path=source)
    base = recorded_base(source) if is_model_dir else None
    model, processor = load_policy(cfg.model, path=base)  # the base, unquantised even for QLoRA
    if is_model_dir:
        processor = VLProcessor.from_pretrained(source)
    if peft_name == "none":
        model.load_state_dict(checkpoint_state(source))
        return model, processor
    if is_model_dir:
        model = PeftModel.from_pretrained(model, source)
    else:
        model = get_peft_model(model, lora_config(cfg.peft))
        load_adapter_weights(model, checkpoint_state(source), source)
    return model.merge_and_unload(), processor


def export(checkpoint: str | Path, out: str | Path, dtype: str | None = None) -> Path:
    """Write the merged model, processor and chat template of a run to `out`.

    The directory is written beside `out` and renamed into place (visurf.io.atomic): `out` is the
    complete export or absent, never half written. An existing `out` is replaced whole, so it
    must be a model directory (or empty): anything else is refused.
    """
    from visurf.io.atomic import atomic_path

    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "config.json").is_file())):
        raise ExportError(
            f"out={out} exists and is not a model directory; it would be replaced: choose another"
        )
    model, processor = merged_model(checkpoint, dtype)
    with atomic_path(out) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
    return out


def parse_args(argv: list[str]) -> dict[str, str]:
    args, unknown = key_values(argv, ("checkpoint", "out", "dtype"))
    if unknown:
        raise UsageError(f"unexpected argument {unknown[0]!r}\n{USAGE}")
    for key in ("checkpoint", "out"):
        if not args.get(key):
            raise UsageError(f"{key}= is required\n{USAGE}")
    return args


def main(argv: list[str] | None = None) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    with reported("visurf.export", extra=(ExportError,)):
        args = parse_args(sys.argv[1:] if argv is None else argv)
        out = export(args["checkpoint"], args["out"], args.get("dtype"))
    log.info("wrote %s", out)


if __name__ == "__main__":
    main()
