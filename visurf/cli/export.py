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

from visurf.cli.args import UsageError, key_values, reported

log = logging.getLogger(__name__)

USAGE = "usage: python -m visurf.export checkpoint=<run dir or .ckpt file> out=<dir> [dtype=float32|bfloat16|float16]"


class ExportError(FileNotFoundError):
    pass


def merged_model(checkpoint: str | Path, dtype: str | None = None):
    """(model, processor): the run's policy as a plain transformers model, adapters merged."""
    from visurf.models.loading import DTYPES
    from visurf.runs.resolve import locate
    from visurf.runs.weights import load_trained

    trained = locate(checkpoint)
    if trained.run is None:
        raise ExportError(
            f"checkpoint={checkpoint}: export needs the config.yaml of the run that wrote the weights; "
            "pass a run directory or a checkpoint inside one"
        )
    cfg = trained.run.read_config()
    if dtype:
        if dtype not in DTYPES:
            raise UsageError(f"dtype={dtype!r}: must be one of {list(DTYPES)}")
        cfg.model.dtype = dtype
    cfg.model.gradient_checkpointing = False
    return load_trained(cfg, trained.weights, merged=True)


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
