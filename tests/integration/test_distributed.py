"""Distributed training on CPU: DDP (gloo) matches one process on the same global batch; the FSDP
strategy is built as configured; FSDP generation and gradients (gloo) match one process."""

from __future__ import annotations

import csv
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from visurf.config.compose import compose_config
from visurf.training.distributed import build_strategy

DECODER = "transformers.models.qwen2_5_vl.modeling_qwen2_5_vl.Qwen2_5_VLDecoderLayer"
VISION = "transformers.models.qwen2_5_vl.modeling_qwen2_5_vl.Qwen2_5_VLVisionBlock"


def _train_losses(run_dir: Path) -> tuple[list[float], list[float]]:
    with open(run_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("train/loss")]
    return [float(r["train/loss"]) for r in rows], [float(r["train/grad_norm"]) for r in rows]


def _same_length_labels(out: Path) -> Path:
    """The smoke world's splits with one label for every train row (images and questions differ)."""
    from visurf.data.sources import synth_dir

    src = synth_dir(dict(compose_config(["experiment=smoke"]).data.synth))
    out.mkdir()
    train = pd.read_parquet(src / "train.parquet")
    train["solution"] = train["solution"].iloc[0]
    train.to_parquet(out / "train.parquet")
    pd.read_parquet(src / "test.parquet").to_parquet(out / "test.parquet")
    return out


def _launch(run_dir: Path, *overrides: str) -> subprocess.Popen:
    """`python -m visurf.run ...` as a subprocess, the way a user runs it (Lightning's DDP launcher
    re-runs the command line for rank 1, which under pytest would be pytest itself). Its own
    process group, so a hung run can be killed with the rank it started."""
    command = [sys.executable, "-m", "visurf.run", *overrides, f"hydra.run.dir={run_dir}"]
    with open(run_dir.parent / f"{run_dir.name}.log", "w") as log:  # the child keeps its own handle
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait(run_dir: Path, job: subprocess.Popen, timeout: float) -> None:
    try:
        rc = job.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        rc = "timeout"
    log = (run_dir.parent / f"{run_dir.name}.log").read_text()
    assert rc == 0, f"{run_dir.name} run failed ({rc}):\n{log[-4000:]}"


def test_ddp_matches_one_process(tmp_path):
    """2 processes x 2 prompts (DDP, gloo) against 1 process x 4 prompts: the same global batches.

    Made exact by construction: every training label is the same text, so every sequence has the
    same number of label tokens and the SFT token-mean of the global batch equals the mean over
    ranks of each rank's token-mean — for the logged loss (reduced with sync_dist) and for the
    gradient (DDP averages the ranks' gradients). Per-sequence losses still differ (images and
    questions differ). With unequal label lengths the two differ by the per-rank token weighting
    (see docs/distributed.md). `objective=sft` samples nothing, so the runs are deterministic.
    Checked per step: loss and gradient norm (before clipping), so steps 2..3 also check that the
    updates were the same; and the final weights. Tolerances cover float reduction order only.
    """
    data = _same_length_labels(tmp_path / "data")
    common = [
        "experiment=smoke",
        "objective=sft",
        "model=tiny",
        "data=local",
        f"data.path={data}",
        "trainer.max_steps=3",
        "train.checkpoint_every=3",
        "eval.num_examples=2",
        "eval.max_new_tokens=4",
    ]
    one = tmp_path / "one"
    two = tmp_path / "ddp"
    jobs = [
        (one, _launch(one, *common, "trainer=cpu", "train.batch_size=4")),
        (
            two,
            _launch(
                two,
                *common,
                "trainer=ddp",
                "trainer.accelerator=cpu",
                "trainer.devices=2",
                "trainer.precision=32-true",
                "trainer.strategy.timeout_s=120",  # a hung collective fails the run, not the suite
                "train.batch_size=2",  # per process: the global batch is 4 prompts
            ),
        ),
    ]
    for run_dir, job in jobs:
        _wait(run_dir, job, timeout=240)

    loss_one, norm_one = _train_losses(one)
    loss_two, norm_two = _train_losses(two)
    assert len(loss_one) == len(loss_two) == 3
    assert loss_two == pytest.approx(loss_one, rel=1e-5)
    assert norm_two == pytest.approx(norm_one, rel=1e-4)
    assert (two / "train_ddp_process_1.log").exists()  # rank 1 ran in the same run directory
    # Each rank evaluated one of the 2 test examples; the paired comparison gathered both.
    change = json.loads((two / "summary.json").read_text())["change"]
    assert change["gained"] + change["lost"] + change["unchanged"] == 2

    w_one = load_file(one / "model" / "model.safetensors")
    w_two = load_file(two / "model" / "model.safetensors")
    assert w_one.keys() == w_two.keys()
    # Adam's first steps move each weight by about lr whatever the gradient's size, so the
    # comparison is absolute and well below lr (5e-4).
    worst = max((w_one[k] - w_two[k]).abs().max().item() for k in w_one)
    assert worst < 2e-5, f"final weights differ by up to {worst}"


def test_strategy_strings_and_ddp():
    cpu = compose_config(["trainer=cpu"])
    assert build_strategy(cpu.trainer) == "auto"

    from lightning.pytorch.strategies import DDPStrategy

    cfg = compose_config(["trainer=ddp", "trainer.strategy.find_unused_parameters=true"])
    strategy = build_strategy(cfg.trainer)
    assert isinstance(strategy, DDPStrategy)
    assert strategy._ddp_kwargs["find_unused_parameters"] is True

    bad = compose_config(["trainer=ddp", "+trainer.strategy.find_unused=true"])
    with pytest.raises(ValueError, match="find_unused"):
        build_strategy(bad.trainer)


def test_fsdp_strategy_from_config(visurf_cache):
    """Lightning's FSDP needs a GPU to run, but the strategy object is built (and checked) on CPU.
    By default (wrap_blocks=auto) the units are the blocks the model names in _no_split_modules."""
    from lightning.pytorch.strategies import FSDPStrategy
    from torch.distributed.fsdp import ShardingStrategy
    from torch.distributed.fsdp.wrap import ModuleWrapPolicy
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import (
        Qwen2_5_VLDecoderLayer,
        Qwen2_5_VLVisionBlock,
    )

    cfg = compose_config(["trainer=fsdp"])
    assert cfg.trainer.precision == "bf16-mixed"
    strategy = build_strategy(cfg.trainer)
    assert isinstance(strategy, FSDPStrategy)
    policy = strategy.kwargs["auto_wrap_policy"]
    assert isinstance(policy, ModuleWrapPolicy)
    assert strategy._activation_checkpointing_kwargs["auto_wrap_policy"] is policy
    policy._run_policy(_setup(str(visurf_cache))[0], set(), {})  # resolved on the root model
    assert set(policy._module_classes) == {Qwen2_5_VLDecoderLayer, Qwen2_5_VLVisionBlock}
    assert strategy.sharding_strategy == ShardingStrategy.FULL_SHARD
    assert strategy.kwargs["use_orig_params"] is True  # the optimiser sees the policy's own parameters
    assert strategy._state_dict_type == "full"

    cfg = compose_config(
        [
            "trainer=fsdp",
            "trainer.strategy.sharding_strategy=SHARD_GRAD_OP",
            "trainer.strategy.activation_checkpointing=false",
            f"trainer.strategy.wrap_blocks=[{DECODER}]",
        ]
    )
    strategy = build_strategy(cfg.trainer)
    assert strategy.sharding_strategy == ShardingStrategy.SHARD_GRAD_OP
    assert strategy._activation_checkpointing_kwargs == {}
    assert set(strategy.kwargs["auto_wrap_policy"]._module_classes) == {Qwen2_5_VLDecoderLayer}

    bad = compose_config(["trainer=fsdp", "trainer.strategy.wrap_blocks=[transformers.NoSuchBlock]"])
    with pytest.raises(ValueError, match="NoSuchBlock"):
        build_strategy(bad.trainer)


# -- FSDP on CPU: torch's FSDP runs on gloo, Lightning's FSDPStrategy does not ----------------------


def _labelled_batch(processor, examples):
    from visurf.objectives.sft import SFTStage
    from visurf.rollout import Sequences, pad_completions

    inputs = processor([e.prompt for e in examples], [e.image for e in examples])
    rows = processor.completion_ids([SFTStage(use_think=True).label_text(e) for e in examples])
    ids, mask = pad_completions(rows, processor.pad_token_id, processor.eos_token_id)
    return Sequences(inputs, ids, mask, torch.zeros(len(examples), dtype=torch.bool))


def _sequence_mean_loss(model, seqs):
    """The grpo aggregation (mean over each sequence, then over sequences): with the same number of
    sequences on every rank, the mean over ranks is the global mean, whatever the lengths."""
    from visurf.rollout import token_logps

    logp = token_logps(model, seqs)
    return -((logp * seqs.mask).sum(-1) / seqs.mask.sum(-1)).mean()


def _setup(cache: str):
    os.environ["VISURF_CACHE"] = cache
    from visurf.data.sources import load_examples
    from visurf.models.loading import load_policy

    cfg = compose_config(["experiment=smoke", "model=tiny"])
    examples = load_examples(cfg.data, int(cfg.model.frame), "train", limit=4)
    policy, processor = load_policy(cfg.model)
    return policy, processor, examples


def _fsdp_rank(rank, port: int, cache: str, out: str, wrap: dict, checkpointing: dict, mixed) -> None:
    """One rank: shard the policy as configure_model would, generate, one SGD step, full weights.

    `wrap` / `checkpointing` / `mixed` are the FSDP settings of the configured strategy and of
    Lightning's bf16-mixed precision, built by the parent (importing Lightning here would double
    this test's time on a 2-core machine).
    """
    import torch.distributed as dist
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
        apply_activation_checkpointing,
        checkpoint_wrapper,
    )
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp.wrap import enable_wrap

    from visurf.training.distributed import clip_grad_norm, full_state_dict, generation_context, shard_policy

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2, timeout=datetime.timedelta(seconds=60))
    policy, processor, examples = _setup(cache)
    mine = examples[2 * rank : 2 * rank + 2]

    def shard(policy, **extra):
        # What Lightning's model_sharded_context does around configure_model (on a CPU device),
        # then its activation checkpointing, applied after wrapping.
        with enable_wrap(wrapper_cls=FSDP, device_id=torch.device("cpu"), **wrap, **extra):
            policy = shard_policy(policy)
        assert isinstance(policy, FSDP)
        apply_activation_checkpointing(policy, checkpoint_wrapper_fn=checkpoint_wrapper, **checkpointing)
        return policy

    def generate(policy):
        inputs = processor([e.prompt for e in mine], [e.image for e in mine])
        with generation_context(policy) as generate_kwargs:
            assert generate_kwargs == {"synced_gpus": True}
            # Ranks stop at different steps: without synced_gpus the all-gathers would mismatch.
            return policy.generate(
                **inputs,
                do_sample=False,
                max_new_tokens=NEW_TOKENS[rank],
                eos_token_id=processor.eos_token_id,
                pad_token_id=processor.pad_token_id,
                **generate_kwargs,
            )

    # bf16 mixed precision (float32 weights): the gathered root weights stay float32 while the
    # blocks compute in bf16, which only works under the context's autocast.
    low = generate(shard(_setup(cache)[0], mixed_precision=mixed))
    assert (
        low.shape[1] == processor([mine[0].prompt], [mine[0].image])["input_ids"].shape[1] + NEW_TOKENS[rank]
    )

    policy = shard(policy)
    generated = generate(policy)

    optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
    loss = _sequence_mean_loss(policy, _labelled_batch(processor, mine))
    loss.backward()
    grad_norm = clip_grad_norm(policy, list(policy.parameters()), float("inf"))
    optimizer.step()
    state = full_state_dict(policy)  # collective: every rank calls it, rank 0 gets it
    torch.save(
        {"generated": generated, "state": state, "grad_norm": float(grad_norm)}, f"{out}/rank{rank}.pt"
    )
    dist.destroy_process_group()


NEW_TOKENS = (2, 6)  # per rank: rank 1 decodes 4 steps more than rank 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fsdp_generation_and_step_match_one_process(tmp_path, visurf_cache):
    """2 FSDP ranks (gloo) with the configured wrap policy and activation checkpointing.

    Rollout generation goes through `generation_context` (root parameters gathered, synced_gpus)
    with ranks stopping at different steps, and must give the unsharded model's greedy tokens (and
    must run at all under bf16 mixed precision). One
    step on 2 + 2 prompts (gradients averaged by FSDP, norm from the root) must give the weights and
    gradient norm of one process on all 4; `full_state_dict` must give HF-named full weights.
    """
    import torch.multiprocessing as mp
    from lightning.pytorch.plugins.precision import FSDPPrecision

    cfg = compose_config(["trainer=fsdp"])
    strategy = build_strategy(cfg.trainer)
    mixed = FSDPPrecision(cfg.trainer.precision).mixed_precision_config  # what Lightning passes to FSDP
    wrap = {"sharding_strategy": strategy.sharding_strategy, **strategy.kwargs}
    checkpointing = strategy._activation_checkpointing_kwargs
    assert checkpointing, "activation checkpointing is on in conf/trainer/fsdp.yaml"
    port = _free_port()
    mp.spawn(_fsdp_rank, args=(port, str(visurf_cache), str(tmp_path), wrap, checkpointing, mixed), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    assert ranks[1]["state"] is None

    policy, processor, examples = _setup(str(visurf_cache))
    for rank, got in enumerate(ranks):
        mine = examples[2 * rank : 2 * rank + 2]
        inputs = processor([e.prompt for e in mine], [e.image for e in mine])
        expected = policy.generate(
            **inputs,
            do_sample=False,
            max_new_tokens=NEW_TOKENS[rank],
            eos_token_id=processor.eos_token_id,
            pad_token_id=processor.pad_token_id,
        )
        assert torch.equal(got["generated"], expected)

    optimizer = torch.optim.SGD(policy.parameters(), lr=0.5)
    _sequence_mean_loss(policy, _labelled_batch(processor, examples)).backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), float("inf"))
    optimizer.step()
    assert ranks[0]["grad_norm"] == pytest.approx(float(grad_norm), rel=1e-5)
    expected = policy.state_dict()
    state = ranks[0]["state"]
    assert state.keys() == expected.keys()
    worst = max((state[k] - expected[k]).abs().max().item() for k in expected)
    assert worst < 1e-5, f"weights after one FSDP step differ by up to {worst}"


# -- Token normalisation across processes (DDP, gloo) ----------------------------------------------

# One batch of 4 rows split unevenly: rank 0 holds row 0, rank 1 rows 1-3 (so the ranks hold
# different numbers of rows and of tokens). Rows 1 and 3 are labels; row 2 is fully masked (a
# truncated completion): grpo counts it as a row, the token means do not count it at all.
ADVANTAGES = (1.0, -0.5, 0.8, -1.2)
IS_LABEL = (False, True, False, True)
RANK_ROWS = ((0, 1), (1, 4))


def _norm_experience(processor, examples, rows: tuple[int, int]):
    from visurf.objectives import Experience

    seqs = _labelled_batch(processor, examples)
    loss_mask = seqs.mask.clone()
    loss_mask[2] = 0
    a, b = rows
    part = _rows(seqs, a, b)
    return Experience(
        part,
        loss_mask[a:b],
        torch.tensor(ADVANTAGES[a:b]),
        torch.tensor(IS_LABEL[a:b]),
    )


def _rows(seqs, a: int, b: int):
    from visurf.rollout import Sequences, select_prompts

    index = torch.arange(a, b)
    return Sequences(select_prompts(seqs.prompt, index), seqs.ids[a:b], seqs.mask[a:b], seqs.truncated[a:b])


def _policy_stage(mode: str):
    from visurf.objectives import PolicyStage
    from visurf.reward_control import RewardControl

    cfg = compose_config(["experiment=smoke", "model=tiny", f"objective.loss_aggregation={mode}"])
    return PolicyStage(cfg.objective, cfg.rollout, RewardControl(), inject_label=True)


class _Step(torch.nn.Module):
    """The policy under DDP as Lightning runs it: the step (a stage's loss) inside DDP's forward,
    the policy itself called unwrapped."""

    def __init__(self, policy):
        super().__init__()
        self.policy = policy

    def forward(self, stage, exp):
        from types import SimpleNamespace

        return stage.loss(SimpleNamespace(policy=self.policy, micro_batch_size=0), exp)[0]


def _norm_rank(rank, port: int, cache: str, out: str) -> None:
    """One DDP rank: PolicyStage.loss on this rank's rows, backward, the averaged gradients."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from visurf.algorithms import AGGREGATIONS

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2, timeout=datetime.timedelta(seconds=60))
    policy, processor, examples = _setup(cache)
    exp = _norm_experience(processor, examples, RANK_ROWS[rank])
    # Some parameters (e.g. a frozen tower's) may get no gradient in a step.
    step = DistributedDataParallel(_Step(policy), find_unused_parameters=True)
    grads = {}
    for mode in AGGREGATIONS:
        step.zero_grad(set_to_none=True)
        step(_policy_stage(mode), exp).backward()  # DDP averages the ranks' gradients here
        grads[mode] = {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}
    torch.save(grads, f"{out}/norm_rank{rank}.pt")
    dist.destroy_process_group()


def test_token_normalisation_across_processes_matches_one_process(tmp_path, visurf_cache):
    """2 DDP ranks holding 1 and 3 rows (different token counts) give, for every aggregation, the
    gradient of one process holding all 4 rows: the loss divides by counts over all processes
    (`visurf.objectives.policy.global_counts`), not by each rank's own."""
    from types import SimpleNamespace

    import torch.multiprocessing as mp

    from visurf.algorithms import AGGREGATIONS

    policy, processor, examples = _setup(str(visurf_cache))  # builds the cached model and data first
    port = _free_port()
    mp.spawn(_norm_rank, args=(port, str(visurf_cache), str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"norm_rank{r}.pt") for r in range(2)]

    whole = _norm_experience(processor, examples, (0, 4))
    own = [_norm_experience(processor, examples, rows) for rows in RANK_ROWS]
    for mode in AGGREGATIONS:
        policy.zero_grad(set_to_none=True)
        loss, _ = _policy_stage(mode).loss(SimpleNamespace(policy=policy, micro_batch_size=0), whole)
        loss.backward()
        expected = {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}
        for got in ranks:
            assert got[mode].keys() == expected.keys()
            for name in expected:
                torch.testing.assert_close(
                    got[mode][name], expected[name], rtol=1e-4, atol=1e-7, msg=f"{mode} {name}"
                )
        if mode in ("bnpo", "dapo", "grpo"):
            # Each rank's own mean, averaged, would weight rank 0's one row as much as rank 1's three.
            policy.zero_grad(set_to_none=True)
            for part in own:
                (
                    _policy_stage(mode).loss(SimpleNamespace(policy=policy, micro_batch_size=0), part)[0] / 2
                ).backward()
            naive = dict(policy.named_parameters())
            worst = max((naive[n].grad - expected[n]).abs().max().item() for n in expected)
            assert worst > 1e-5, f"{mode}: the per-rank mean should differ here"
