"""Time a visurf training step on a Qwen2.5-VL-3B-shaped model with random weights (nothing downloaded).

    python experiments/bench/gpu_step.py [--prompts 2] [--generations 8] [--completion 256] [--steps 4] [--json FILE]
    python experiments/bench/gpu_step.py --shape tiny --device cpu --steps 1 --warmup 0   # the same code, tiny (tests)

The config is transformers' `Qwen2_5_VLConfig` with Qwen2.5-VL-3B-Instruct's dimensions (36 layers
of width 2048, 16 heads / 2 KV heads, vocabulary 151,936, tied embeddings; a 32-block vision
tower of width 1280); the weights are random, in bf16 as `model=qwen2_5_vl_3b` loads them, with
gradient checkpointing as that preset has it. One step is what a ViSurf step does after
generation: `prompts` prompts, each with `generations` rollouts and its label as one more row
(rollouts and labels scored as separate parts, each image encoded once), an 840-px image per
prompt (900 image tokens), completions of `completion` tokens; `token_logps` with gradients under
bf16 autocast (trainer.precision=bf16-mixed), the policy loss, backward, clipping, AdamW. A
scoring pass without gradients (a reference or old-policy pass) is timed apart.

Prints and (--json) writes: step time, tokens/s (prompt + completion tokens of every row), peak
GPU memory, and MFU: model FLOPs (3 × forward: decoder and vision matmuls, causal attention,
the output head on the scored positions; recomputation not counted) over the step time and
the device's dense bf16 peak (--peak-tflops, default the H200's 989).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import nullcontext

import torch
from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

from visurf.algorithms import PolicyLossOptions, policy_loss
from visurf.rollout import Sequences, token_logps

# Qwen2.5-VL-3B-Instruct's config.json, as transformers' Qwen2_5_VLConfig takes it; "tiny" is the
# same code at a size a CPU test runs in a second.
SHAPES = {
    "3b": dict(
        text=dict(
            vocab_size=151936,
            hidden_size=2048,
            intermediate_size=11008,
            num_hidden_layers=36,
            num_attention_heads=16,
            num_key_value_heads=2,
            max_position_embeddings=128000,
            rms_norm_eps=1e-6,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
            tie_word_embeddings=True,
            bos_token_id=151643,
            eos_token_id=151645,
        ),
        vision=dict(
            depth=32,
            hidden_size=1280,
            intermediate_size=3420,
            num_heads=16,
            out_hidden_size=2048,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
            fullatt_block_indexes=[7, 15, 23, 31],
        ),
        tokens=dict(
            image_token_id=151655,
            video_token_id=151656,
            vision_start_token_id=151652,
            vision_end_token_id=151653,
        ),
        frame=840,
        dtype=torch.bfloat16,
    ),
    "tiny": dict(
        text=dict(
            vocab_size=2048,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 2, 2]},
            tie_word_embeddings=True,
            bos_token_id=2044,
            eos_token_id=2045,
        ),
        vision=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=64,
            window_size=112,
            fullatt_block_indexes=[1],
        ),  # fmt: skip
        tokens=dict(
            image_token_id=2040, video_token_id=2041, vision_start_token_id=2042, vision_end_token_id=2043
        ),
        frame=56,
        dtype=torch.float32,
    ),
}
PATCH, MERGE, TEMPORAL = 14, 2, 2


def build_config(shape: str) -> Qwen2_5_VLConfig:
    s = SHAPES[shape]
    return Qwen2_5_VLConfig(
        text_config=dict(s["text"]), vision_config=dict(s["vision"]), tie_word_embeddings=True, **s["tokens"]
    )


def parameter_counts(config: Qwen2_5_VLConfig) -> dict[str, int]:
    """Parameters by part, counted on the meta device (nothing allocated)."""
    with torch.device("meta"):
        model = Qwen2_5_VLForConditionalGeneration(config)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    inner = model.model
    return {
        "total": count(model),
        "vision": count(inner.visual),
        "decoder_layers": count(inner.language_model.layers),
        "embedding": inner.language_model.embed_tokens.weight.numel(),
    }


def make_batch(config, frame: int, prompts: int, generations: int, completion: int, text: int, device):
    """Rollouts (prompts × generations rows), then labels (one per prompt), sharing each prompt's image."""
    g = torch.Generator().manual_seed(0)
    grid = frame // PATCH
    image_tokens = grid * grid // MERGE**2
    vocab = config.text_config.vocab_size
    words = lambda n: torch.randint(0, min(vocab, config.vision_start_token_id) - 16, (n,), generator=g)  # noqa: E731
    prompt_rows = []
    for _ in range(prompts):
        prompt_rows.append(
            torch.cat(
                [
                    words(4),
                    torch.tensor([config.vision_start_token_id]),
                    torch.full((image_tokens,), config.image_token_id),
                    torch.tensor([config.vision_end_token_id]),
                    words(text),
                ]
            )
        )
    ids = torch.stack(prompt_rows)
    index = torch.cat([torch.arange(prompts).repeat_interleave(generations), torch.arange(prompts)])
    prompt = {
        "input_ids": ids[index],
        "attention_mask": torch.ones_like(ids[index]),
        "mm_token_type_ids": (ids[index] == config.image_token_id).long(),
        "image_grid_thw": torch.tensor([[1, grid, grid]]).repeat(prompts, 1),  # one per distinct image
        "pixel_values": torch.randn(prompts * grid * grid, 3 * TEMPORAL * PATCH * PATCH, generator=g),
        "image_index": index,
    }
    rows = len(index)
    seqs = Sequences(
        {k: v.to(device) for k, v in prompt.items()},
        words(rows * completion).view(rows, completion).to(device),
        torch.ones(rows, completion, device=device),
        torch.zeros(rows, dtype=torch.bool, device=device),
        parts=(prompts * generations, prompts),
    )
    return seqs, image_tokens


def model_flops(config, counts: dict, seqs: Sequences, prompts: int, frame: int) -> float:
    """Forward + backward FLOPs of one training pass (3 × forward; recomputation not counted)."""
    t = config.text_config
    rows, completion = seqs.ids.shape
    seq = seqs.prompt["input_ids"].shape[1] + completion
    dense = 2 * counts["decoder_layers"] * rows * seq
    attention = 2 * 2 * t.num_hidden_layers * t.hidden_size * rows * seq * seq / 2  # causal: half
    head = 2 * t.hidden_size * t.vocab_size * rows * completion
    vision = 2 * counts["vision"] * prompts * (frame // PATCH) ** 2  # each image encoded once
    return 3 * (dense + attention + head + vision)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="3b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--completion", type=int, default=256)
    parser.add_argument("--text", type=int, default=60, help="prompt text tokens besides the image")
    parser.add_argument("--micro-batch-size", type=int, default=0)
    parser.add_argument("--no-gradient-checkpointing", action="store_true")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="device's dense bf16 peak")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    shape = SHAPES[args.shape]
    config = build_config(args.shape)
    counts = parameter_counts(config)
    torch.manual_seed(0)
    with device:
        policy = Qwen2_5_VLForConditionalGeneration._from_config(
            config, dtype=shape["dtype"], attn_implementation="sdpa"
        )
    if not args.no_gradient_checkpointing:
        policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    policy.train()
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-7, betas=(0.9, 0.99))
    seqs, _ = make_batch(
        config, shape["frame"], args.prompts, args.generations, args.completion, args.text, device
    )
    rows = seqs.ids.shape[0]
    advantages = torch.randn(rows, device=device)
    is_label = torch.zeros(rows, dtype=torch.bool, device=device)
    is_label[-args.prompts :] = True
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def train_step():
        with autocast:
            logp = token_logps(policy, seqs, args.micro_batch_size)
            loss, _ = policy_loss(
                logp, logp.detach(), None, advantages, seqs.mask, is_label,
                PolicyLossOptions(aggregation="grpo", max_completion_length=args.completion),
            )  # fmt: skip
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    def scoring_pass():
        with torch.no_grad(), autocast:
            return token_logps(policy, seqs, args.micro_batch_size)

    def timed(fn, n):
        times = []
        for _ in range(n):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - start)
        return times

    timed(train_step, args.warmup)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    step = statistics.median(timed(train_step, args.steps))
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    scoring = statistics.median(timed(scoring_pass, max(1, args.steps // 2)))
    tokens = rows * (seqs.prompt["input_ids"].shape[1] + args.completion)
    flops = model_flops(config, counts, seqs, args.prompts, shape["frame"])
    result = {
        "shape": args.shape,
        "device": torch.cuda.get_device_name() if device.type == "cuda" else str(device),
        "parameters_b": round(counts["total"] / 1e9, 3),
        "rows": rows,
        "tokens_per_row": tokens // rows,
        "gradient_checkpointing": not args.no_gradient_checkpointing,
        "step_s": round(step, 4),
        "scoring_pass_s": round(scoring, 4),
        "tokens_per_s": round(tokens / step, 1),
        "peak_memory_gib": None if peak is None else round(peak, 2),
        "model_tflop_per_step": float(f"{flops / 1e12:.4g}"),
        "mfu": float(f"{flops / step / (args.peak_tflops * 1e12):.4g}"),
        "versions": {"torch": torch.__version__, "transformers": __import__("transformers").__version__},
    }
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
