"""The one LightningModule: rollout → reward → advantage → loss, for every objective.

It asks the objective's stage schedule which stage owns the current step and runs it; it holds
no objective-specific branches. Optimisation is manual so that a stage can take μ passes over
one rollout batch and so that a non-finite loss or gradient is caught before it reaches the
weights.
"""

from __future__ import annotations

import copy
import logging
import math

import lightning as L
import torch

from visurf.objectives import StageSchedule
from visurf.training.distributed import clip_grad_norm, is_sharded, shard_policy
from visurf.training.optim import build_optimizer, lr_factor

log = logging.getLogger(__name__)

PROGRESS_BAR_KEYS = ("reward", "accuracy")


class PostTrainModule(L.LightningModule):
    def __init__(self, cfg, policy, processor, reward_fn, schedule: StageSchedule):
        super().__init__()
        self.automatic_optimization = False
        self.cfg = cfg
        self.policy = policy.train()  # from_pretrained returns eval mode
        if self.uses_adapters():
            # Checkpoints hold the adapters; the frozen base comes from the model config (and a
            # 4-bit base's quantisation state cannot be loaded back strictly).
            self.strict_loading = False
        self.processor = processor
        self.reward_fn = reward_fn
        self.schedule = schedule
        self._frozen: dict = {}  # the KL reference, kept out of the module's own state_dict
        self.micro_batch_size = int(cfg.train.get("micro_batch_size", 0) or 0)
        self.skipped_steps = 0
        self.batches_done = 0  # rollout batches trained; the data sampler resumes from it
        self.bad_rows: set[str] = set()  # training rows skipped when their image did not decode
        self._consecutive_skips = 0
        self._stage_index: int | None = None
        self.last_samples: list[dict] | None = None  # the last batch's records (completions_log.py)

    # -- the StageHost members (visurf/objectives/stage.py): all a stage may use of the module --
    def to_device(self, inputs: dict) -> dict:
        return {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in inputs.items()}

    @property
    def reference(self):
        return self._frozen.get("reference")

    def set_reference(self, model) -> None:
        # Not an attribute assignment: nn.Module would register it as a trainable submodule.
        self._frozen["reference"] = model

    def uses_adapters(self) -> bool:
        return hasattr(self.policy, "disable_adapter") and hasattr(self.policy, "peft_config")

    def reset_reference(self) -> None:
        """The KL reference becomes the policy as it is now (frozen).

        With adapters the reference is the same network with its adapters disabled, so no copy
        is made (after an SFT stage under adapters that is the base, not the SFT result).
        """
        if self.uses_adapters():
            self.set_reference(None)
            return
        if is_sharded(self.policy):
            raise RuntimeError(
                "objective.beta > 0 under trainer=fsdp needs adapters (e.g. peft=lora): a sharded "
                "policy cannot be deep-copied as the KL reference"
            )
        self.set_reference(copy.deepcopy(self.policy).eval().requires_grad_(False))

    @torch.no_grad()
    def reference_logps(self, seqs, temperature: float = 1.0) -> torch.Tensor:
        """ℓ_ref of `seqs` at `temperature` (a policy stage passes its sampling temperature)."""
        from visurf.rollout import token_logps

        if self.uses_adapters():
            with self.policy.disable_adapter():
                return token_logps(self.policy, seqs, self.micro_batch_size, temperature=temperature)
        if self.reference is None:
            self.reset_reference()
        return token_logps(
            self.reference.to(self.device), seqs, self.micro_batch_size, temperature=temperature
        )

    # -- Lightning hooks ---------------------------------------------------------------------
    def configure_model(self):
        # Under trainer=fsdp the policy becomes the FSDP root here (Lightning's sharding context),
        # so training_step runs outside any FSDP forward; elsewhere a no-op (docs/distributed.md).
        self.policy = shard_policy(self.policy)

    def configure_optimizers(self):
        params = [p for p in self.policy.parameters() if p.requires_grad]
        o = self.cfg.optim
        optimizer = build_optimizer(params, o)
        factor = lr_factor(
            int(o.warmup_steps),
            int(self.cfg.trainer.max_steps),
            str(o.get("schedule", "constant")),
            float(o.get("min_lr_ratio", 0.0)),
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def training_step(self, batch, batch_idx):
        batch_number, examples = batch[0], batch[1]
        if len(batch) > 2:  # from SplitRows (visurf.data.batches): rows skipped, or an error
            self.bad_rows.update(batch[2])
            if batch[3] is not None:
                raise batch[3]
        index = self.schedule.index_at(self.global_step)
        stage = self.schedule.stages[index]
        if index != self._stage_index:
            log.info("step %d: stage %d (%s) starts", self.global_step, index, stage.kind)
            stage.on_start(self)
            self._stage_index = index
        # Sampling depends only on (seed, batch number, rank): a resumed run samples the same.
        torch.manual_seed(int(self.cfg.seed) * 1_000_003 + batch_number * 97 + self.global_rank)
        exp = stage.experience(self, examples)
        self.last_samples = exp.samples
        metrics = dict(exp.metrics)
        for _ in range(stage.passes):
            loss, stats = stage.loss(self, exp)
            grad_norm = self._optimise(loss)
            metrics.update({k: float(v) for k, v in stats.items()})
            metrics["loss"] = float(loss.detach())
            metrics["grad_norm"] = grad_norm
        self.batches_done = batch_number + 1
        metrics["stage"] = float(index)
        metrics["skipped_steps"] = float(self.skipped_steps)
        self._log(metrics, len(examples))

    def _optimise(self, loss: torch.Tensor) -> float:
        """Backward, clip and step — or skip the step when anything is non-finite."""
        opt = self.optimizers()
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        params = [p for p in self.policy.parameters() if p.requires_grad]
        clip = float(self.cfg.optim.grad_clip) if self.cfg.optim.grad_clip else math.inf
        grad_norm = clip_grad_norm(self.policy, params, clip)  # global norm under FSDP too
        bad = torch.tensor(
            float(not (torch.isfinite(loss.detach()) and torch.isfinite(grad_norm))), device=self.device
        )
        bad = self.trainer.strategy.reduce(bad, reduce_op="sum") if self.trainer.world_size > 1 else bad
        if bad.item() > 0:
            opt.zero_grad(set_to_none=True)
            self.skipped_steps += 1
            self._consecutive_skips += 1
            log.warning(
                "non-finite loss or gradient at step %d: step skipped (%d so far)",
                self.global_step,
                self.skipped_steps,
            )
            limit = int(self.cfg.train.max_skipped_steps)
            if self._consecutive_skips >= limit:
                raise RuntimeError(
                    f"{limit} consecutive non-finite steps (train.max_skipped_steps); stopping"
                )
            return float("nan")
        self._consecutive_skips = 0
        opt.step()
        self.lr_schedulers().step()
        return float(grad_norm)

    def _log(self, metrics: dict[str, float], batch_size: int) -> None:
        # Every key a stage reports is logged every step, NaN included (a per-group metric of a
        # group absent from the batch): a key left out would show its last value again, as
        # Lightning keeps a step metric's value until it is logged anew.
        for key, value in metrics.items():
            if value is None:
                continue
            self.log(
                f"train/{key}",
                value,
                on_step=True,
                prog_bar=key in PROGRESS_BAR_KEYS,
                batch_size=batch_size,
                sync_dist=self.trainer.world_size > 1,
            )

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        # A batch is (number, examples[, skipped ids, error]): images and text with no tensor in them, which each stage
        # turns into tensors on the device itself. Lightning's search of it for tensors to move
        # cost about 10 ms a step, 9 s of the default base's build.
        return batch

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.uses_adapters():
            trainable = {f"policy.{n}" for n, p in self.policy.named_parameters() if p.requires_grad}
            checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in trainable}
        checkpoint["visurf"] = {
            "skipped_steps": self.skipped_steps,
            "stage_index": self._stage_index,
            "batches_done": self.batches_done,
            "bad_rows": sorted(self.bad_rows),
        }
        if self.reference is not None:  # the reference is part of the run's state (sft_rlvr resets it)
            checkpoint["visurf"]["reference"] = self.reference.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("visurf", {})
        self.skipped_steps = state.get("skipped_steps", 0)
        self._stage_index = state.get("stage_index")
        self.batches_done = state.get("batches_done", 0)
        self.bad_rows = set(state.get("bad_rows", []))
        if "reference" in state:
            reference = copy.deepcopy(self.policy).eval().requires_grad_(False)
            reference.load_state_dict(state["reference"])
            self.set_reference(reference)
