"""Peak memory of token scoring: the full-logits path against the chunked one, in one process.

    OMP_NUM_THREADS=1 python experiments/bench/bench_memory.py [--cases 4x64,8x64,8x128,16x128]
        [--vocabs 151936,32768] [--chunks 512]

The model is the tiny Qwen2.5-VL of the repo's builder (`visurf.models.tiny.build_config`) with
one decoder layer of width 64 and a real checkpoint's vocabulary (Qwen2.5-VL: 151,936), so the
output head, not the network, decides the memory. For each case (rows × completion tokens) and
vocabulary it measures the peak growth of the process's resident memory over:

- a scoring pass (no gradients: old and reference log-probabilities), and
- a training pass (forward, −mean log-probability, backward; gradient buffers already allocated),

for the full-logits path (what `visurf.rollout.token_logps` did before: every completion
position's logits in float32, then a log-softmax over the vocabulary; re-implemented here as the
baseline) and for `token_logps` itself at each chunk size. Prints one table and each path's
ratio to the full-logits path.

Peak resident memory is the kernel's high-water mark (VmHWM), reset before each pass through
/proc/self/clear_refs; glibc is told to hand freed blocks above 64 KiB straight back, so one
pass's frees do not hide the next one's allocations. Linux only.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import time
from pathlib import Path

import torch
from PIL import Image
from transformers import Qwen2_5_VLForConditionalGeneration

from visurf.models.loading import tiny_dir
from visurf.models.processing import VLProcessor
from visurf.models.tiny import TinyConfig, build_config
from visurf.rollout import LOGIT_CHUNK, Sequences, model_inputs, token_logps

MiB = 2**20


def release_freed_memory() -> None:
    """Freed blocks above 64 KiB go back to the kernel at once (mallopt M_MMAP_THRESHOLD, M_TRIM_THRESHOLD)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 64 * 1024)  # M_MMAP_THRESHOLD: fixed, so glibc stops raising it
    libc.mallopt(-1, 64 * 1024)  # M_TRIM_THRESHOLD


def usual_malloc() -> None:
    """Fixed thresholds where glibc's adaptive ones settle in a long run (32 MiB mmap, 64 MiB trim)."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 32 * 2**20)
    libc.mallopt(-1, 64 * 2**20)


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_growth(fn) -> tuple[float, object]:
    """(peak growth of resident memory while `fn()` runs, in MiB; what it returned)."""
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset the high-water mark to the current RSS
    before = _status_kib("VmRSS")
    result = fn()
    return (_status_kib("VmHWM") - before) / 1024, result


def wide_model(vocab_size: int, processor: VLProcessor, seed: int = 0):
    """The tiny Qwen2.5-VL (real builder, real classes) with one width-64 layer and `vocab_size` entries."""
    cfg = TinyConfig(
        hidden_size=64, intermediate_size=192, num_layers=1, num_heads=4, num_kv_heads=2, vision_depth=1
    )
    config = build_config(cfg, processor.tokenizer)
    config.text_config.vocab_size = vocab_size  # the tokenizer's ids stay valid: they are < 1024
    torch.manual_seed(seed)
    return Qwen2_5_VLForConditionalGeneration(config).float()


def make_batch(processor: VLProcessor, rows: int, tokens: int, seed: int = 0) -> Sequences:
    """`rows` prompts (one image each) with completions of exactly `tokens` ordinary tokens."""
    prompts = ["Find the red circle and the blue square."] * rows
    frames = [Image.new("RGB", (112, 112), (30 + 20 * (i % 10), 120, 200)) for i in range(rows)]
    inputs = processor(prompts, frames)
    g = torch.Generator().manual_seed(seed)
    special = set(processor.tokenizer.all_special_ids) | set(processor.vision_token_ids)
    ordinary = torch.tensor([i for i in range(len(processor.tokenizer)) if i not in special])
    ids = ordinary[torch.randint(len(ordinary), (rows, tokens), generator=g)]
    mask = torch.ones(rows, tokens)
    return Sequences(inputs, ids, mask, torch.zeros(rows, dtype=torch.bool))


def full_logits_logps(model, seqs: Sequences) -> torch.Tensor:
    """The path before chunking: every position's logits in float32, then a full log-softmax."""
    inputs, c = model_inputs(seqs.prompt), seqs.ids.shape[1]  # every row with its own image
    extend = {"input_ids": seqs.ids, "attention_mask": seqs.mask.long(), "mm_token_type_ids": 0 * seqs.ids}
    for key, completion in extend.items():
        inputs[key] = torch.cat([inputs[key], completion.to(inputs[key].dtype)], 1)
    out = model(**inputs, logits_to_keep=c + 1, use_cache=False)
    logits = out.logits[:, :-1].float()
    logp = torch.log_softmax(logits, dim=-1).gather(-1, seqs.ids.unsqueeze(-1)).squeeze(-1)
    return logp.masked_fill(seqs.mask == 0, 0.0)


def scoring_pass(model, seqs: Sequences, score) -> torch.Tensor:
    with torch.no_grad():
        return score(model, seqs)


def training_pass(model, seqs: Sequences, score) -> torch.Tensor:
    logp = score(model, seqs)
    loss = -(logp * seqs.mask).sum() / seqs.mask.sum()
    loss.backward()
    return loss.detach()


def paths(chunks: list[int]) -> dict:
    out = {"full logits": full_logits_logps}
    for chunk in chunks:
        out[f"chunked {chunk}"] = lambda m, s, chunk=chunk: token_logps(m, s, chunk_size=chunk)
    return out


def measure(model, seqs: Sequences, chunks: list[int]) -> dict[str, dict[str, float]]:
    """{path: {"scoring": MiB, "training": MiB}} for one batch; gradient buffers exist beforehand."""
    model.zero_grad(set_to_none=False)
    results = {}
    for name, score in paths(chunks).items():
        scoring, _ = peak_growth(lambda score=score: scoring_pass(model, seqs, score))
        model.zero_grad(set_to_none=False)
        training, _ = peak_growth(lambda score=score: training_pass(model, seqs, score))
        results[name] = {"scoring": scoring, "training": training}
    return results


def parse_cases(text: str) -> list[tuple[int, int]]:
    return [tuple(int(x) for x in case.split("x")) for case in text.split(",")]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="4x64,8x64,8x128,16x128", help="rows x completion tokens")
    parser.add_argument("--vocabs", default="151936,32768")
    parser.add_argument("--chunks", default=f"{LOGIT_CHUNK}", help="chunk sizes of the new path")
    args = parser.parse_args(argv)
    release_freed_memory()
    torch.set_num_threads(1)
    processor = VLProcessor.from_pretrained(tiny_dir(112))
    chunks = [int(c) for c in args.chunks.split(",")]
    names = list(paths(chunks))
    start = time.time()
    header = "| vocab | rows × tokens | fp32 logits | " + " | ".join(
        f"{n}: scoring / training" for n in names
    )
    print(header + " |")
    print("|" + " --- |" * (3 + len(names)))
    for vocab in (int(v) for v in args.vocabs.split(",")):
        model = wide_model(vocab, processor)
        warm = make_batch(processor, 2, 8)
        training_pass(model, warm, full_logits_logps)  # gradient buffers and one-off allocations
        for rows, tokens in parse_cases(args.cases):
            seqs = make_batch(processor, rows, tokens)
            results = measure(model, seqs, chunks)
            logits = rows * tokens * vocab * 4 / MiB
            base = results["full logits"]
            cells = [
                f"{r['scoring']:,.0f} / {r['training']:,.0f} MiB"
                + (
                    ""
                    if n == "full logits"
                    else f" ({r['scoring'] / base['scoring']:.2f} / {r['training'] / base['training']:.2f})"
                )
                for n, r in results.items()
            ]
            print(
                f"| {vocab:,} | {rows} × {tokens} | {logits:,.0f} MiB | " + " | ".join(cells) + " |",
                flush=True,
            )
        del model
    print(
        f"(peak growth of resident memory per pass; ratios to the full-logits path; {time.time() - start:.0f} s)"
    )


if __name__ == "__main__":
    main()
