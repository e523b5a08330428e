"""LoRA / QLoRA (peft, bitsandbytes) on the tiny Qwen2.5-VL: which layers get adapters, the
adapters-disabled KL reference, 4-bit loading, and smoke runs of every objective."""

from __future__ import annotations

import zlib

import bitsandbytes as bnb
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText

import visurf.models.adapters as adapters
from tests.conftest import smoke_config as config
from visurf.cli.export import export
from visurf.data.sources import load_examples
from visurf.models.adapters import apply_adapters, quantization_config
from visurf.models.loading import load_policy
from visurf.objectives import SFTStage, build_schedule
from visurf.rewards import REWARDS, build_reward, register_reward
from visurf.rollout import Sequences, pad_completions, sample, token_logps
from visurf.training.module import PostTrainModule

TEXT_LAYERS = 4 * 7  # tiny model: 4 decoder layers x (q, k, v, o, gate, up, down)
VISION_LAYERS = 2 * 5  # 2 vision blocks x (attn.qkv, attn.proj, mlp.gate/up/down)


def adapted_layers(model) -> set[str]:
    return {name.split(".lora_")[0] for name, p in model.named_parameters() if p.requires_grad}


def perturb_adapters(model, seed: int = 0) -> None:
    """LoRA starts as a no-op (B = 0); random adapters make the adapted model differ from the base."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


def load_adapted(tiny_dir, *overrides: str):
    cfg = config(*overrides)
    model, processor = load_policy(
        cfg.model, path=tiny_dir, quantization_config=quantization_config(cfg.peft)
    )
    return apply_adapters(model, cfg.peft), processor, cfg


def label_batch(processor, examples, device="cpu") -> Sequences:
    """Prompts + ground-truth completions, built the way the SFT stage builds them."""
    inputs = processor([e.prompt for e in examples], [e.image for e in examples])
    stage = SFTStage()
    ids, mask = pad_completions(
        processor.completion_ids([stage.label_text(e) for e in examples]),
        processor.pad_token_id,
        processor.eos_token_id,
    )
    inputs = {k: v.to(device) for k, v in inputs.items()}
    return Sequences(inputs, ids.to(device), mask.to(device), torch.zeros(len(examples), dtype=torch.bool))


@pytest.fixture(scope="module")
def examples(visurf_cache):
    return load_examples(config().data, 112, "train")[:3]


# -- which layers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "text", "vision"),
    [
        ((), TEXT_LAYERS, 0),
        (("peft.vision=true",), TEXT_LAYERS, VISION_LAYERS),
        (("peft.target_modules=[q_proj,gate_proj]",), 4 * 2, 0),
        (("peft.target_modules=[q_proj,gate_proj]", "peft.vision=true"), 4 * 2, 2),  # vision mlp.gate_proj
        (("peft.target_modules='.*layers\\.0\\.self_attn\\.q_proj'",), 1, 0),  # a regex, as given
    ],
)
def test_target_modules(tiny_dir, overrides, text, vision):
    model, _, _ = load_adapted(tiny_dir, "peft=lora", *overrides)
    layers = adapted_layers(model)
    assert sum(".visual." not in n for n in layers) == text
    assert sum(".visual.blocks." in n for n in layers) == vision
    assert not any("merger" in n or "lm_head" in n or "embed" in n for n in layers)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in n for n in trainable)


def test_target_modules_that_match_nothing_are_refused(tiny_dir):
    with pytest.raises(ValueError, match="not found in the base model"):
        load_adapted(tiny_dir, "peft=lora", "peft.target_modules=[no_such_proj]")


# -- the reference -----------------------------------------------------------------------------


def test_reference_is_the_base_with_adapters_disabled(tiny_dir, examples):
    """`disable_adapter()` gives the base model's log-probs exactly; no copy of the model is made."""
    model, processor, cfg = load_adapted(tiny_dir, "peft=lora")
    perturb_adapters(model)
    frozen, _ = load_policy(cfg.model, path=tiny_dir)
    frozen.eval().requires_grad_(False)
    seqs = label_batch(processor, examples)

    module = PostTrainModule(cfg, model, processor, build_reward(cfg.reward.name), build_schedule(cfg))
    assert module.uses_adapters()
    module.reset_reference()
    assert module.reference is None  # nothing copied
    with torch.no_grad():
        base = token_logps(frozen, seqs)
        adapted = token_logps(model, seqs)
        with model.disable_adapter():
            disabled = token_logps(model, seqs)
        reference = module.reference_logps(seqs)
    mask = seqs.mask > 0
    torch.testing.assert_close(disabled[mask], base[mask], atol=1e-6, rtol=0)
    torch.testing.assert_close(reference[mask], base[mask], atol=1e-6, rtol=0)
    assert (adapted - base)[mask].abs().max() > 1e-2
    with torch.no_grad():  # adapters are back on after the context
        torch.testing.assert_close(token_logps(model, seqs), adapted)


# -- QLoRA ---------------------------------------------------------------------------------------


def test_quantization_config():
    assert quantization_config(config().peft) is None
    assert quantization_config(config("peft=lora").peft) is None
    q = quantization_config(config("peft=qlora").peft)
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant
    assert q.bnb_4bit_compute_dtype == torch.float32  # the tiny model's dtype
    assert quantization_config(config("peft=qlora", "model.dtype=bfloat16").peft).bnb_4bit_compute_dtype == (
        torch.bfloat16
    )
    q = quantization_config(config("peft=qlora", "peft.quant_type=fp4", "peft.double_quant=false").peft)
    assert q.bnb_4bit_quant_type == "fp4" and not q.bnb_4bit_use_double_quant


@pytest.mark.parametrize("quantize_vision", [False, True])
def test_qlora_loads_the_base_in_4_bits(tiny_dir, quantize_vision):
    model, _, _ = load_adapted(tiny_dir, "peft=qlora", f"peft.quantize_vision={str(quantize_vision).lower()}")
    four_bit = {
        n.removesuffix(".base_layer") for n, m in model.named_modules() if isinstance(m, bnb.nn.Linear4bit)
    }
    text = {n for n in four_bit if ".language_model." in n}
    vision = {n for n in four_bit if ".visual." in n}
    assert len(text) == TEXT_LAYERS and text == adapted_layers(model)
    assert len(vision) == (VISION_LAYERS + 2 if quantize_vision else 0)  # + the patch merger's two
    assert not any("lm_head" in n for n in four_bit)
    layer = model.get_submodule(sorted(text)[0] + ".base_layer")
    assert layer.weight.quant_state.quant_type == "nf4" and layer.weight.quant_state.nested


def test_qlora_needs_a_quantized_base(tiny_dir):
    cfg = config("peft=qlora")
    model, _ = load_policy(cfg.model, path=tiny_dir)
    with pytest.raises(ValueError, match="4 bits"):
        apply_adapters(model, cfg.peft)


def test_qlora_gradients_are_unchanged_by_generation(tiny_dir, examples):
    """Generating (eval, no grad) must leave the 4-bit layers trainable: same loss and gradients."""
    model, processor, _ = load_adapted(tiny_dir, "peft=qlora")
    perturb_adapters(model)
    device = next(model.parameters()).device
    seqs = label_batch(processor, examples, device)

    def gradients():
        model.train().zero_grad()
        loss = -(token_logps(model, seqs) * seqs.mask).sum()
        loss.backward()
        return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    loss_before, before = gradients()
    sample(
        model, seqs.prompt, 1, max_new_tokens=3, temperature=1.0, top_p=1.0,
        eos_id=processor.eos_token_id, pad_id=processor.pad_token_id, greedy=True,
    )  # fmt: skip
    loss_after, after = gradients()
    torch.testing.assert_close(loss_after, loss_before)
    assert before.keys() == after.keys() and len(before) == 2 * TEXT_LAYERS
    for name in before:
        torch.testing.assert_close(after[name], before[name], msg=name)


# -- smoke runs ----------------------------------------------------------------------------------


@pytest.fixture
def varied_reward():
    """A reward that differs between completions, so policy stages get non-zero advantages (the
    tiny random model's completions all score the same under the grounding reward)."""

    @register_reward("test_text_hash")
    class TextHash:
        components = ("think_format",)

        def __call__(self, completion, solution, width, height):
            r = zlib.crc32(completion.encode()) % 101 / 100
            return {"think_format": r, "total": r, "correct": 0.0}

    yield "test_text_hash"
    REWARDS.remove("test_text_hash")


@pytest.fixture
def captured(monkeypatch):
    """The policy `fit` trains (what `apply_adapters` returned)."""
    models, original = [], adapters.apply_adapters

    def capture(model, peft_cfg):
        models.append(original(model, peft_cfg))
        return models[-1]

    monkeypatch.setattr(adapters, "apply_adapters", capture)
    return models


def base_state(tiny_dir) -> dict[str, torch.Tensor]:
    return AutoModelForImageTextToText.from_pretrained(tiny_dir).state_dict()


def check_adapter_run(run_dir, summary, policy) -> dict[str, torch.Tensor]:
    """The run finished and saved an adapter in which every LoRA B was trained (B starts at 0);
    returns the trained policy's base weights, named as in the plain model."""
    assert summary["steps"] == 2 and (run_dir / "summary.json").is_file()
    adapter = load_file(run_dir / "model" / "adapter_model.safetensors")
    lora_b = [v for k, v in adapter.items() if ".lora_B." in k]
    assert len(lora_b) == TEXT_LAYERS and all(v.abs().sum() > 0 for v in lora_b)
    prefix = "base_model.model."
    state = policy.state_dict()
    return {k[len(prefix) :].replace(".base_layer.", "."): v for k, v in state.items() if ".lora_" not in k}


def adapter_run(smoke_run, reward: str, *overrides: str, name: str = "run"):
    # The KL term on (beta > 0), so the adapters-disabled reference is used; truncated
    # completions kept, since the tiny random model rarely ends one within the budget. SFT reads
    # neither (validation refuses them there).
    sft = "objective=sft" in overrides
    policy = () if sft else ("++objective.beta=0.04", "++objective.mask_truncated=false")
    return smoke_run(*overrides, f"reward.name={reward}", *policy, name=name)


@pytest.mark.parametrize("objective", ["sft", "rlvr", "sft_rlvr", "visurf"])
def test_lora_smoke_run(smoke_run, tiny_dir, varied_reward, captured, objective, tmp_path):
    run_dir, summary = adapter_run(smoke_run, varied_reward, f"objective={objective}", "peft=lora")
    (policy,) = captured
    base = check_adapter_run(run_dir, summary, policy)
    expected = base_state(tiny_dir)
    assert base.keys() == expected.keys()
    for name, value in expected.items():
        assert torch.equal(base[name], value), name
    if objective == "sft":  # a real run exports (tests/cli/test_export.py checks the merge itself)
        from_dir = export(run_dir, tmp_path / "from_dir")
        from_ckpt = export(run_dir / "checkpoints" / "last.ckpt", tmp_path / "from_ckpt")
        a, b = (AutoModelForImageTextToText.from_pretrained(d).state_dict() for d in (from_dir, from_ckpt))
        assert a.keys() == expected.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("objective", ["sft", "rlvr", "sft_rlvr", "visurf"])
def test_qlora_smoke_run(smoke_run, tiny_dir, varied_reward, captured, objective):
    run_dir, summary = adapter_run(smoke_run, varied_reward, f"objective={objective}", "peft=qlora")
    (policy,) = captured
    base = check_adapter_run(run_dir, summary, policy)
    four_bit = [n for n, m in policy.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(four_bit) == TEXT_LAYERS
    # The weights left in full precision (vision tower, embeddings, norms, lm_head) are untouched.
    expected = base_state(tiny_dir)
    kept = [n for n in expected if n in base and base[n].dtype == expected[n].dtype]
    assert len(kept) == len(expected) - TEXT_LAYERS
    for name in kept:
        assert torch.equal(base[name], expected[name]), name


def resume_matches_uninterrupted(smoke_run, reward: str, peft: str) -> None:
    """2 steps, stop, resume to 4 = 4 steps in one go: the same adapter weights."""
    common = ("objective=visurf", f"peft={peft}")
    full, _ = adapter_run(smoke_run, reward, *common, "trainer.max_steps=4", name="full")
    cut, _ = adapter_run(smoke_run, reward, *common, name="cut")
    adapter_run(smoke_run, reward, *common, "trainer.max_steps=4", f"resume={cut}", name="cut")
    a, b = (load_file(d / "model" / "adapter_model.safetensors") for d in (full, cut))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_lora_run_resumes(smoke_run, varied_reward):
    resume_matches_uninterrupted(smoke_run, varied_reward, "lora")


def test_qlora_run_resumes(smoke_run, varied_reward):
    resume_matches_uninterrupted(smoke_run, varied_reward, "qlora")
