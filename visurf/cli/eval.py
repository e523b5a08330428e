"""Evaluate a trained model on a test split: `python -m visurf.eval checkpoint=... out=FILE.json`.

    python -m visurf.eval checkpoint=outputs/2025-01-01/12-00-00_visurf_all_s0 out=eval.json
    python -m visurf.eval checkpoint=RUN/checkpoints/last.ckpt limit=200
    python -m visurf.eval checkpoint=RUN data=local data.path=/data/refcoco split=val
    python -m visurf.eval checkpoint=base model=tiny_base out=base.json

`checkpoint` is a run directory (weights from its `model/`), a Lightning `.ckpt` file of a run,
an HF model directory (full weights or a peft adapter), or `base` (the model config's model,
unchanged). Own keys: `checkpoint`, `split` (default: the config's `data.test_split`), `limit`
(first N examples; default: the whole split), `out` (JSON file), `device` (auto|cpu|cuda...).
Every other `key=value` overrides the config:
- with `base` or a model directory outside a run, any Hydra override (`model=...`, `data=...`);
- with a run, dotted keys of the run's `config.yaml` (`data.path=...`, `eval.batch_size=16`)
  and `data=<option>`, which swaps in `conf/data/<option>.yaml`. Unknown keys are refused.

On an evaluation set of the authors' benchmark schema (columns `image, text, mask, image_id, ann_id,
img_height, img_width` and optionally `bbox`), the result holds the released protocol's figures
instead (gIoU, cIoU, box hit rate, N-Acc: docs/evaluation.md), and the out file every sample's
answer, boxes and points in original pixels and scores (`samples`). `eval.segmenter.path=DIR`
(a SAM2 model directory, or a hub id in the local HF cache) gives the masks; without it the
gIoU and cIoU are box-level (`box_giou`, `box_ciou`, `level: box`):

    python -m visurf.eval checkpoint=base model=qwen2_5_vl_7b model.path=/models/Visurf-7B \
        data=local data.path=/data/grefcoco_val_all eval.segmenter.path=/models/sam2-hiera-large out=g.json

The metrics come from the one evaluator (`visurf.evaluation.runner.evaluate`) and have the keys
of summary.json's `eval_after`, plus `checkpoint`, `split`, `versions`, `machine` (as summary.json:
the processor and thread count, which change a CPU evaluation's numbers), `outcomes` (every
question's [index, group, correct]) and `answers` (every question's problem, label and greedy
completion, and the completion's boxes and points in the image's original pixels, `original_size`: one
[width, height] per image for a row with several); the last two go to the `out` file only. Two evaluations of the same split compare
question by question, `--show N` printing what changed in words:
`python -m visurf.compare A.json B.json --show 5`.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from visurf.cli.args import UsageError, key_values, reported
from visurf.config.paths import CONF_DIR
from visurf.config.validate import validate
from visurf.runs.resolve import locate
from visurf.runs.weights import load_trained

log = logging.getLogger(__name__)

OWN_KEYS = ("checkpoint", "split", "limit", "out", "device")
PER_QUESTION = ("outcomes", "answers", "samples")  # in the out= file only
# Groups that can be swapped on a run's resolved config: the test data is the one thing an
# evaluation may change; the model, objective etc. are fixed by the checkpoint.
RUN_GROUPS = ("data",)


class EvalError(UsageError):
    pass


# -- arguments -------------------------------------------------------------------------------
def parse_args(argv: list[str]) -> tuple[dict, list[str]]:
    """Split `key=value` arguments into visurf.eval's own keys and config overrides."""
    own, overrides = key_values(argv, OWN_KEYS)
    if not own.get("checkpoint"):
        raise EvalError("checkpoint=<run dir | .ckpt file | model dir | base> is required")
    if "limit" in own:
        try:
            own["limit"] = int(own["limit"])
        except ValueError:
            raise EvalError(f"limit must be an integer, got {own['limit']!r}") from None
        if own["limit"] < 0:
            raise EvalError(f"limit must be >= 0 (0 = the whole split), got {own['limit']}")
    return own, overrides


# -- configs -----------------------------------------------------------------------------------
def compose(overrides: list[str]):
    """The default config with Hydra overrides (as `python -m visurf.run` would compose it)."""
    from hydra.errors import HydraException

    from visurf.config.compose import compose_config

    try:
        return compose_config(overrides)
    except (HydraException, OmegaConfBaseException) as err:
        raise EvalError(f"bad config override in {overrides}: {err}") from err


def apply_run_overrides(cfg, overrides: list[str]):
    """Overrides on a run's resolved config: `data=<option>` first, then dotted keys (must exist)."""
    groups = [o for o in overrides if o.partition("=")[0] in RUN_GROUPS]
    dotted = [o for o in overrides if o not in groups]
    for override in groups:
        group, _, option = override.partition("=")
        path = CONF_DIR / group / f"{option}.yaml"
        if not path.is_file():
            options = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
            raise EvalError(f"{override}: no option {option!r} in {CONF_DIR / group} (options: {options})")
        cfg[group] = OmegaConf.load(path)
    OmegaConf.set_struct(cfg, True)  # a dotted key the config lacks is refused, not added
    for override in dotted:
        try:
            cfg.merge_with(OmegaConf.from_dotlist([override]))
        except OmegaConfBaseException as err:
            raise EvalError(
                f"{override}: {err.msg} (a run takes dotted keys of its config.yaml and {RUN_GROUPS[0]}=<option>)"
            ) from err
    OmegaConf.set_struct(cfg, False)
    return cfg


def resolve(checkpoint: str, overrides: list[str]) -> tuple:
    """(config, weights) of `checkpoint=` (visurf.runs.resolve): a run's own config with these
    overrides, or the default config composed with them; weights None for the base."""
    trained = locate(checkpoint)
    if trained.run is not None:
        return apply_run_overrides(trained.run.read_config(), overrides), trained.weights
    cfg = compose(overrides)
    if trained.weights is not None and (trained.weights / "config.json").is_file():
        cfg.model.source, cfg.model.path = "path", str(trained.weights)  # the directory is the model
    return cfg, trained.weights


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# -- the job -----------------------------------------------------------------------------------
def run_eval(
    checkpoint: str,
    overrides: list[str] = (),
    split: str | None = None,
    limit: int = 0,
    device: str = "auto",
) -> dict:
    """Metrics of `checkpoint` on `split`: eval_after's keys and more (an evaluation set: eval_benchmark's)."""
    from visurf.cli import eval_benchmark
    from visurf.data.sources import open_rows
    from visurf.evaluation.runner import evaluate
    from visurf.rewards import build_reward, label_answer
    from visurf.runs.summary import machine, versions

    overrides, segmenter_settings = eval_benchmark.split_segmenter_overrides(list(overrides))
    cfg, weights = resolve(checkpoint, overrides)
    missing = OmegaConf.missing_keys(cfg)
    if missing:  # e.g. data=local without data.path
        raise EvalError(f"config values not set: {', '.join(sorted(missing))} (pass key=value)")
    validate(cfg)
    split = split or str(cfg.data.test_split)
    target = pick_device(device)
    benchmark = eval_benchmark.prepare(cfg, split, limit, segmenter_settings, target)  # None: visurf's schema
    if benchmark is None:
        answer = label_answer(cfg.reward.name)
        examples = open_rows(cfg.data, int(cfg.model.frame), split, limit=limit or None, answer=answer)
    if weights is None or not (weights / "config.json").is_file():  # the config's model is loaded
        from visurf.recipes.base_model import ensure_model

        ensure_model(cfg.model)
    model, processor = load_trained(cfg, weights)
    model.to(target)
    described = checkpoint if weights is None else str(Path(checkpoint).expanduser().resolve())
    recorded = {"checkpoint": described, "split": split, "versions": versions(), "machine": machine()}
    if benchmark is not None:
        return {**benchmark.run(cfg, model, processor), **recorded}
    log.info("evaluating %s on %d %s examples (%s)", checkpoint, len(examples), split, target)
    outcomes: list = []
    metrics, records = evaluate(
        model,
        processor,
        build_reward(cfg.reward.name, **dict(cfg.reward.kwargs)),
        examples,
        batch_size=int(cfg.eval.batch_size),
        max_new_tokens=int(cfg.eval.max_new_tokens),
        device=target,
        num_samples_logged=len(examples),  # every answer, so two files show what changed in words
        outcomes=outcomes,
    )
    # [index in the split, group, correct] per question, as a run's outcome files: two evaluations
    # of the same split compare question by question (python -m visurf.compare A.json B.json).
    keyed = [[row if row >= 0 else i, group, correct] for i, (row, group, correct) in enumerate(outcomes)]
    # The label and completion in the model frame; boxes and points mapped to the original image.
    keys = ("problem", "label", "completion", "original_size", "boxes", "points")
    answers = [{k: r[k] for k in keys} for r in records]
    return {
        **metrics,
        "skipped_rows": examples.skipped,
        **recorded,
        "outcomes": keyed,
        "answers": answers,
    }


def main(argv: list[str] | None = None) -> dict:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    with reported("visurf.eval"):
        own, overrides = parse_args(argv)
        result = run_eval(
            own["checkpoint"],
            overrides,
            split=own.get("split"),
            limit=own.get("limit", 0),
            device=own.get("device", "auto"),
        )
    if own.get("out"):
        out = Path(own["out"]).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        log.info("wrote %s (with every question's outcome)", out)
    # The per-question outcomes and answers go to the file only: they would bury the metrics.
    print(json.dumps({k: v for k, v in result.items() if k not in PER_QUESTION}, indent=2))
    return result


if __name__ == "__main__":
    main()
