"""Qwen2.5-VL, Qwen3-VL and Gemma 3 presets load from a local path or the local HF cache, never from the network."""

from __future__ import annotations

import pytest

from visurf.config.compose import compose_config
from visurf.config.validate import ConfigError, validate
from visurf.models.families import family_of
from visurf.models.loading import ModelNotFoundError, load_policy, resolve_model_dir


@pytest.mark.parametrize(
    "preset,hf_id",
    [
        ("qwen2_5_vl_3b", "Qwen/Qwen2.5-VL-3B-Instruct"),
        ("qwen2_5_vl_7b", "Qwen/Qwen2.5-VL-7B-Instruct"),
        ("qwen3_vl_2b", "Qwen/Qwen3-VL-2B-Instruct"),
        ("qwen3_vl_4b", "Qwen/Qwen3-VL-4B-Instruct"),
        ("qwen3_vl_8b", "Qwen/Qwen3-VL-8B-Instruct"),
        ("gemma3_4b", "google/gemma-3-4b-it"),
    ],
)
def test_missing_weights_give_an_error_naming_where_it_looked(preset, hf_id, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = compose_config([f"model={preset}"])
    validate(cfg)
    assert cfg.model.hf_id == hf_id and cfg.model.frame % family_of(cfg.model.family).frame_multiple == 0
    with pytest.raises(ModelNotFoundError, match=r"not in the local HF cache \(looked in "):
        resolve_model_dir(cfg.model)
    cfg = compose_config([f"model={preset}", f"model.path={tmp_path / 'nothing'}"])
    with pytest.raises(ModelNotFoundError, match=str(tmp_path / "nothing")):
        resolve_model_dir(cfg.model)


def test_a_preset_loads_a_local_directory_with_its_switches(tiny_dir):
    cfg = compose_config(
        [
            "model=qwen2_5_vl_3b",
            f"model.path={tiny_dir}",
            "model.dtype=float32",
            "model.attn_implementation=eager",
            "model.gradient_checkpointing=true",
        ]
    )
    model, processor = load_policy(cfg.model)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert model.config._attn_implementation == "eager"
    assert model.is_gradient_checkpointing


def test_flash_attention_is_refused_when_not_installed():
    import importlib.util

    if importlib.util.find_spec("flash_attn") is not None:
        pytest.skip("flash-attn is installed here")
    with pytest.raises(ConfigError, match="model.attn_implementation"):
        validate(compose_config(["model.attn_implementation=flash_attention_2"]))


def test_the_frame_must_fit_the_family_patches():
    validate(compose_config(["model=qwen3_vl_2b"]))
    with pytest.raises(ConfigError, match=r"model.frame=840 is invalid: it must be a multiple of 32"):
        validate(compose_config(["model=qwen3_vl_2b", "model.frame=840"]))
    with pytest.raises(ConfigError, match=r"'paligemma' is not supported yet.*needed: tower"):
        validate(compose_config(["model=qwen3_vl_2b", "model.family=paligemma"]))


def test_a_qwen3_vl_preset_loads_a_local_directory(tmp_path, visurf_cache):
    from tests.integration.test_families import FAMILIES
    from visurf.models.tiny import TinyConfig, build_tiny

    path = build_tiny(
        visurf_cache / "families" / "qwen3_vl", TinyConfig(frame=FAMILIES["qwen3_vl"]), family="qwen3_vl"
    )
    cfg = compose_config(["model=qwen3_vl_2b", f"model.path={path}", "model.dtype=float32"])
    model, processor = load_policy(cfg.model)
    assert (
        type(model).__name__ == "Qwen3VLForConditionalGeneration" and processor.image_token == "<|image_pad|>"
    )
    with pytest.raises(ValueError, match="model.family=qwen2_5_vl but .* holds a qwen3_vl model"):
        load_policy(compose_config(["model=qwen2_5_vl_3b", f"model.path={path}"]).model)


def test_the_gemma3_preset_loads_a_local_directory(visurf_cache):
    from tests.integration.test_families import tiny_family_dir

    path = tiny_family_dir(visurf_cache, "gemma3")
    cfg = compose_config(["model=gemma3_4b", f"model.path={path}", "model.dtype=float32"])
    validate(cfg)
    model, processor = load_policy(cfg.model)
    assert type(model).__name__ == "Gemma3ForConditionalGeneration"
    assert processor.tokenizer.convert_ids_to_tokens(processor.eos_token_id) == "<end_of_turn>"
