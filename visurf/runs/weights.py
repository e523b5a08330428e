"""The one loader of a run's trained weights, for evaluation (as trained) and export (merged).

Weights are an HF model directory (full weights, or a peft adapter) or a Lightning checkpoint
(`policy.<name>` keys; under adapters only the adapter weights). The base they were trained on
comes from the run's config, 4-bit for `peft=qlora` as the run loaded it; `merged=True` loads it
unquantised and merges the adapters in (`merge_and_unload`), so the model needs neither peft nor
bitsandbytes: the original base weights plus the trained adapters.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch


class WeightsError(FileNotFoundError):
    """Weights that do not fit the run's config (a checkpoint without the adapters it needs)."""


def load_trained(cfg, weights: Path | None, *, merged: bool = False):
    """(model, processor) of `cfg`'s model with `weights` (None: the config's model), eval mode."""
    from visurf.models.loading import load_policy
    from visurf.models.processing import VLProcessor

    adapters = cfg.peft.name != "none"
    if weights is None:
        model, processor = load_policy(cfg.model)
    elif weights.is_dir() and (weights / "config.json").is_file():  # full weights: the directory is the model
        model, processor = load_policy(cfg.model, path=weights)
    elif weights.is_dir():  # a peft adapter
        from peft import PeftModel

        model, processor = _base(cfg, recorded_base(weights) if merged else None, merged)
        model = PeftModel.from_pretrained(model, str(weights))
        if (weights / "preprocessor_config.json").is_file():
            processor = VLProcessor.from_pretrained(weights)
    else:  # a Lightning checkpoint
        model, processor = _base(cfg, None, merged)
        state = checkpoint_state(weights)
        if adapters:
            model = _with_adapters(model, cfg.peft, merged)
            load_adapter_weights(model, state, weights)
        else:
            model.load_state_dict(state)
    if merged and adapters:
        model = model.merge_and_unload()
    return model.eval(), processor


def _base(cfg, path: Path | None, merged: bool):
    """The base the adapters were trained on: 4-bit for QLoRA as trained, unquantised to merge."""
    from visurf.models.loading import load_policy

    if cfg.peft.name != "qlora" or merged:
        return load_policy(cfg.model, path=path)
    from visurf.models.adapters import quantization_config

    return load_policy(cfg.model, quantization_config=quantization_config(cfg.peft))


def _with_adapters(model, peft_cfg, merged: bool):
    if merged:  # an unquantised base: plain LoRA layers of the run's shape
        from peft import get_peft_model

        from visurf.models.adapters import lora_config

        return get_peft_model(model, lora_config(peft_cfg, model.config.model_type))
    from visurf.models.adapters import apply_adapters

    return apply_adapters(model, peft_cfg)


def checkpoint_state(path: Path) -> dict[str, torch.Tensor]:
    """The policy's weights from a Lightning checkpoint (keys `policy.<model key>`)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    state = {k[len("policy.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("policy.")}
    if not state:
        raise WeightsError(f"{path} holds no policy weights (no state_dict keys starting with 'policy.')")
    return state


def load_adapter_weights(model, state: dict[str, torch.Tensor], source: Path) -> None:
    # Only the adapters are trained; the frozen base comes from the base model (a QLoRA
    # checkpoint holds it quantised, which a full-precision copy could not load).
    wanted = [name for name, p in model.named_parameters() if p.requires_grad]
    missing = [name for name in wanted if name not in state]
    if missing:
        raise WeightsError(
            f"{source} lacks {len(missing)} adapter weights of the run's config, e.g. {missing[0]}"
        )
    model.load_state_dict({name: state[name] for name in wanted}, strict=False)


def recorded_base(adapter_dir: Path) -> Path | None:
    """The base model directory the run trained on, as its adapter records it, if still there
    (the run config would re-resolve it, and a rebuilt tiny model may differ)."""
    path = adapter_dir / "adapter_config.json"
    if not path.is_file():
        return None
    recorded = json.loads(path.read_text()).get("base_model_name_or_path")
    return Path(recorded) if recorded and (Path(recorded) / "config.json").is_file() else None
