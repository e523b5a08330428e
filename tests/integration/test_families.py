"""Every model family of visurf.models.tiny through the same code paths as the default Qwen2.5-VL:
processing, sampling and scoring (token_logps against generate's own logits), LoRA with and
without the vision tower, freezing the tower, a smoke run of each objective and the export round
trip. Qwen2.5-VL itself is covered by the rest of the suite."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import run
from visurf.models.tiny import TinyConfig, build_tiny

# family -> the frame its tiny model is built for (a multiple of its patch x merge)
FAMILIES = {
    "qwen2_vl": 112,
    "qwen3_vl": 128,
    "gemma3": 112,
    "llava_onevision": 112,
    "internvl": 112,
    "smolvlm": 112,
    "idefics3": 112,
}
# What each tiny model should show: its end-of-turn token, vision tokens the processor names,
# the vision tower's and projector's prefixes, the vision projections per block that
# peft.vision=true adapts (visurf.models.families), its decoder / vision block classes, and the
# text decoder's prefix where it is not `model.language_model.`.
EXPECTED = {
    "qwen2_vl": dict(
        eot="<|im_end|>",
        vision_tokens={"<|image_pad|>", "<|vision_start|>"},
        vision=("model.visual.",),
        projections=4,
        blocks={"Qwen2VLDecoderLayer", "Qwen2VLVisionBlock"},
    ),
    "qwen3_vl": dict(
        eot="<|im_end|>",
        vision_tokens={"<|image_pad|>", "<|vision_start|>"},
        vision=("model.visual.",),
        projections=4,
        blocks={"Qwen3VLTextDecoderLayer", "Qwen3VLVisionBlock"},
    ),
    "gemma3": dict(
        eot="<end_of_turn>",
        vision_tokens={"<start_of_image>", "<end_of_image>", "<image_soft_token>"},
        vision=("model.vision_tower.", "model.multi_modal_projector."),
        projections=6,
        blocks={"Gemma3DecoderLayer", "SiglipEncoderLayer"},
    ),
    "llava_onevision": dict(
        eot="<|im_end|>",
        vision_tokens={"<image>", "<video>"},
        vision=("model.vision_tower.", "model.multi_modal_projector."),
        projections=6,
        blocks={"Qwen2DecoderLayer", "SiglipEncoderLayer"},
    ),
    "internvl": dict(
        eot="<|im_end|>",
        vision_tokens={"<img>", "</img>", "<IMG_CONTEXT>"},
        vision=("model.vision_tower.", "model.multi_modal_projector."),
        projections=6,
        blocks={"Qwen2DecoderLayer", "InternVLVisionLayer"},
    ),
    "smolvlm": dict(
        eot="<end_of_utterance>",
        vision_tokens={"<image>", "<fake_token_around_image>", "<global-img>"},
        vision=("model.vision_model.", "model.connector."),
        projections=6,
        # SmolVLM names its vision attention, not the encoder layer, in _no_split_modules.
        blocks={"LlamaDecoderLayer", "SmolVLMVisionAttention"},
        text="model.text_model.",
    ),
    "idefics3": dict(
        eot="<end_of_utterance>",
        vision_tokens={"<image>", "<fake_token_around_image>", "<global-img>"},
        vision=("model.vision_model.", "model.connector."),
        projections=6,
        blocks={"LlamaDecoderLayer", "Idefics3VisionAttention"},
        text="model.text_model.",
    ),
}


def tiny_family_dir(cache, family: str):
    """The tiny model of `family` in the test cache, built once (a cache entry, as model=tiny's)."""
    from visurf.io.cache import build_entry

    cfg = TinyConfig(frame=FAMILIES[family])
    return build_entry(cache / "families" / family, lambda out: build_tiny(out, cfg, family=family))


@pytest.fixture(scope="session")
def family_dirs(visurf_cache):
    return lambda family: tiny_family_dir(visurf_cache, family)


@pytest.fixture(params=sorted(FAMILIES))
def family(request):
    return request.param


def overrides(family_dirs, family: str) -> list[str]:
    return ["model.source=path", f"model.path={family_dirs(family)}", f"model.frame={FAMILIES[family]}"]


def load(family_dirs, family: str, *more: str):
    from tests.conftest import smoke_config
    from visurf.models.loading import load_policy

    cfg = smoke_config(*overrides(family_dirs, family), *more)
    model, processor = load_policy(cfg.model)
    return model, processor, cfg


def prompts(processor, cfg, n: int = 2):
    from visurf.data.sources import load_examples

    examples = load_examples(cfg.data, int(cfg.model.frame), "train")[:n]
    return processor([e.prompt for e in examples], [e.image for e in examples])


def test_processor_tokens_come_from_the_family(family_dirs, family):
    model, processor, _ = load(family_dirs, family)
    assert model.config.model_type == family
    tok, expected = processor.tokenizer, EXPECTED[family]
    assert tok.convert_ids_to_tokens(processor.eos_token_id) == expected["eot"]  # from the chat template
    assert expected["vision_tokens"] <= set(tok.convert_ids_to_tokens(processor.vision_token_ids))


def sampled_with_logps(model, processor, inputs, max_new_tokens: int):
    """Two samples per prompt from `generate` (seed 0) as padded Sequences, and the log-softmax of
    generate's own logits at the sampled tokens [N, C]: what scoring must reproduce."""
    from visurf.rollout import Sequences, completion_mask, model_inputs, select_prompts

    torch.manual_seed(0)
    with torch.no_grad():
        out = model.generate(
            **model_inputs(inputs),
            do_sample=True,
            temperature=1.0,
            top_p=1.0,
            top_k=None,
            max_new_tokens=max_new_tokens,
            num_return_sequences=2,
            eos_token_id=processor.eos_token_id,
            pad_token_id=processor.pad_token_id,
            suppress_tokens=processor.vision_token_ids,
            return_dict_in_generate=True,
            output_logits=True,
        )
    ids = out.sequences[:, inputs["input_ids"].shape[1] :]
    mask, truncated = completion_mask(ids, processor.eos_token_id)
    expected = torch.stack(out.logits, 1).float().log_softmax(-1).gather(-1, ids[..., None])[..., 0]
    rows = torch.arange(inputs["input_ids"].shape[0]).repeat_interleave(2)
    ids = ids.masked_fill(mask == 0, processor.pad_token_id)
    return Sequences(select_prompts(inputs, rows), ids, mask, truncated), expected


@pytest.mark.parametrize("reuse_features", [True, False], ids=["image-features-reused", "pixels-re-encoded"])
def test_token_logps_equal_generates_own_logits(family_dirs, family, reuse_features, monkeypatch):
    """The log-probabilities scoring gives the sampled tokens are those of the distribution
    `generate` sampled them from (fp32, within 1e-5), whether each image's encoder output is
    reused (Qwen3-VL: its deepstack features too) or every row's pixels are encoded again."""
    import visurf.rollout.scoring as rollout
    from visurf.rollout import token_logps

    model, processor, cfg = load(family_dirs, family)
    model.eval()
    inputs = prompts(processor, cfg)
    seqs, expected = sampled_with_logps(model, processor, inputs, max_new_tokens=8)
    if not reuse_features:
        monkeypatch.setattr(rollout, "_image_features", lambda model, prompt: None)
    with torch.no_grad():
        got = token_logps(model, seqs)
    real = seqs.mask > 0
    assert real.sum() >= 4
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=0)
    assert (got[~real] == 0).all()


def test_smolvlm_tiles_of_an_image_stay_together(family_dirs):
    """With SmolVLM's image splitting on, a 224 px image is 2 x 2 tiles of 112 px and a global
    one along pixel_values' second dimension: rollouts and labels of separate processor calls
    are joined and scored image by image, as generate scored them."""
    from visurf.data.sources import load_examples
    from visurf.rollout import Sequences, concat, token_logps

    model, processor, cfg = load(family_dirs, "smolvlm")
    model.eval()
    processor.image_processor.do_image_splitting = True
    processor.image_processor.size = {"longest_edge": 224}
    examples = load_examples(cfg.data, 224, "train")[:3]
    inputs = processor([e.prompt for e in examples[:2]], [e.image for e in examples[:2]])
    assert inputs["pixel_values"].shape[:2] == (2, 5)
    rollouts, expected = sampled_with_logps(model, processor, inputs, max_new_tokens=6)
    prompt = processor([examples[2].prompt], [examples[2].image])  # a separate processor call
    label = Sequences(prompt, rollouts.ids[:1], rollouts.mask[:1], rollouts.truncated[:1])
    with torch.no_grad():
        got = token_logps(model, concat(rollouts, label, processor.pad_token_id))
        alone = token_logps(model, label)
    real = rollouts.mask > 0
    torch.testing.assert_close(got[:4][real], expected[real], atol=1e-5, rtol=0)
    torch.testing.assert_close(got[4:], alone, atol=1e-5, rtol=0)


@pytest.mark.parametrize("vision", [False, True], ids=["text-only", "with-vision-tower"])
def test_lora_with_and_without_the_vision_tower(family_dirs, family, vision):
    from visurf.models.adapters import apply_adapters, lora_layers

    model, _, cfg = load(family_dirs, family, "peft=lora", f"peft.vision={str(vision).lower()}")
    layers = lora_layers(apply_adapters(model, cfg.peft))
    tiny = TinyConfig()
    text = [n for n in layers if n.startswith(EXPECTED[family].get("text", "model.language_model."))]
    tower = [n for n in layers if n.startswith(EXPECTED[family]["vision"])]
    assert len(text) == tiny.num_layers * 7  # q, k, v, o, gate, up, down in every decoder layer
    assert len(tower) == (tiny.vision_depth * EXPECTED[family]["projections"] if vision else 0)
    assert len(layers) == len(text) + len(tower)


def test_freezing_the_vision_tower(family_dirs, family):
    from visurf.models.loading import freeze_vision_tower

    model, _, _ = load(family_dirs, family)
    freeze_vision_tower(model)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {n for n, _ in model.named_parameters() if n.startswith(EXPECTED[family]["vision"])}
    assert frozen


OBJECTIVES = ["visurf"] + [
    pytest.param(o, marks=pytest.mark.slow) for o in ("sft", "rlvr", "grpo", "sft_rlvr")
]


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_smoke_run_of_every_objective(family_dirs, family, objective, tmp_path):
    run_dir, summary = run(
        tmp_path, "experiment=smoke", f"objective={objective}", *overrides(family_dirs, family)
    )
    assert summary["steps"] == 2 and summary["objective"] == {"grpo": "rlvr"}.get(objective, objective)
    assert (run_dir / "model" / "config.json").is_file()
    assert 0.0 <= summary["eval_after"]["accuracy"] <= 1.0


@pytest.mark.slow
def test_export_round_trip_of_a_lora_run(family_dirs, family, tmp_path):
    """A LoRA run exported to a plain model: same family, same scores as the run's adapters."""
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    from visurf.cli.export import export
    from visurf.objectives import SFTStage
    from visurf.rollout import Sequences, pad_completions, token_logps

    run_dir, _ = run(
        tmp_path,
        "experiment=smoke",
        "objective=sft",
        "peft=lora",
        "peft.vision=true",
        *overrides(family_dirs, family),
    )
    out = export(run_dir, tmp_path / "merged")
    merged = AutoModelForImageTextToText.from_pretrained(out).eval()
    assert merged.config.model_type == family
    base, processor, cfg = load(family_dirs, family)
    adapted = PeftModel.from_pretrained(base, run_dir / "model").eval()
    from visurf.data.sources import load_examples

    examples = load_examples(cfg.data, int(cfg.model.frame), "train")[:2]
    inputs = processor([e.prompt for e in examples], [e.image for e in examples])
    ids, mask = pad_completions(
        processor.completion_ids([SFTStage().label_text(e) for e in examples]),
        processor.pad_token_id,
        processor.eos_token_id,
    )
    seqs = Sequences(inputs, ids, mask, torch.zeros(2, dtype=torch.bool))
    with torch.no_grad():
        a, b = token_logps(merged, seqs), token_logps(adapted, seqs)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_fsdp_units_come_from_the_models_no_split_modules(family_dirs, family):
    """trainer.strategy.wrap_blocks=auto: FSDP wraps (and checkpoints) the blocks the model names
    in `_no_split_modules`, whatever the family calls them."""
    from tests.conftest import smoke_config
    from visurf.training.distributed import build_strategy

    cfg = smoke_config("trainer=fsdp", "trainer.strategy.wrap_blocks=auto")
    strategy = build_strategy(cfg.trainer)
    policy = strategy.kwargs["auto_wrap_policy"]
    model, _, _ = load(family_dirs, family)
    units = policy._run_policy(model, set(), {})
    blocks = [m for m in units if type(m).__name__ in EXPECTED[family]["blocks"]]
    assert {type(m).__name__ for m in blocks} == EXPECTED[family]["blocks"]
    tiny = TinyConfig()
    assert len(blocks) == tiny.num_layers + tiny.vision_depth
    assert strategy._activation_checkpointing_kwargs["auto_wrap_policy"] is policy


def test_an_unknown_family_is_refused_naming_what_is_missing():
    from visurf.models.families import family_of

    with pytest.raises(
        ValueError, match=r"'paligemma' is not supported yet: .*FAMILIES has no entry .*needed: tower"
    ):
        family_of("paligemma")


def test_images_split_into_tiles_along_pixel_values_are_refused():
    from visurf.rollout.sequences import num_images

    prompt = {"input_ids": torch.zeros(2, 5, dtype=torch.long), "pixel_values": torch.zeros(3, 3, 14, 14)}
    with pytest.raises(ValueError, match="3 entries for 2 prompts .* crop_to_patches=false"):
        num_images(prompt)
    assert num_images({**prompt, "pixel_values": torch.zeros(2, 3, 14, 14)}) == 2


def test_sample_gives_generates_own_samples(family_dirs, family):
    """visurf's sampler (one prefill per prompt on the Qwen-VL families, `generate` on the others)
    draws generate's own samples for the same seed."""
    from visurf.rollout import sample
    from visurf.rollout.prefix import supports_shared_prompts

    model, processor, cfg = load(family_dirs, family)
    model.eval()
    inputs = prompts(processor, cfg)
    expected, _ = sampled_with_logps(model, processor, inputs, max_new_tokens=8)
    assert supports_shared_prompts(model) == family.startswith("qwen")
    torch.manual_seed(0)
    got = sample(
        model,
        inputs,
        2,
        max_new_tokens=8,
        temperature=1.0,
        top_p=1.0,
        eos_id=processor.eos_token_id,
        pad_id=processor.pad_token_id,
        suppress_ids=processor.vision_token_ids,
    )
    assert torch.equal(got.ids, expected.ids) and torch.equal(got.mask, expected.mask)
