"""Resume reproduces the uninterrupted run; non-finite steps never reach the weights."""

from __future__ import annotations

import json

import lightning as L
import pandas as pd
import torch
from safetensors.torch import load_file

from tests.conftest import run

RESUME_RUN = ["experiment=smoke", "objective=visurf", "train.checkpoint_every=2", "rollout.num_generations=3"]


def test_resume_continues_to_the_same_final_metrics(tmp_path):
    whole_dir, whole = run(tmp_path, *RESUME_RUN, "trainer.max_steps=4", name="whole")
    part_dir, _ = run(tmp_path, *RESUME_RUN, "trainer.max_steps=2", name="part")
    # The user's command: the same run, longer, resume=<run dir>; it continues in that directory.
    from visurf.compose import compose_config
    from visurf.train import fit, run_dir_for

    cfg = compose_config([*RESUME_RUN, "trainer.max_steps=4", f"resume={part_dir}"])
    resumed = fit(cfg, run_dir_for(cfg, tmp_path / "unused"))
    assert resumed["steps"] == 4 and resumed["resumed_from"].endswith("last.ckpt")
    assert resumed["eval_before"] == whole["eval_before"]
    assert resumed["eval_after"] == whole["eval_after"]
    assert resumed["change"] == whole["change"] is not None  # the outcomes before were checkpointed
    a, b = (
        load_file(whole_dir / "model" / "model.safetensors"),
        load_file(part_dir / "model" / "model.safetensors"),
    )
    for name in a:
        assert torch.equal(a[name], b[name]), name

    # metrics.csv holds the whole run: the same training losses at every step.
    def loss(d):
        return pd.read_csv(d / "metrics.csv").dropna(subset=["train/loss"]).set_index("step")["train/loss"]

    pd.testing.assert_series_equal(loss(whole_dir), loss(part_dir))
    assert json.loads((part_dir / "summary.json").read_text())["steps"] == 4


class PoisonFirstStep(L.Callback):
    """Turns every gradient of the first optimisation step into NaN, through a real autograd hook."""

    def __init__(self):
        self.handles = []
        self.before = None
        self.after_first = None

    def on_train_start(self, trainer, module):
        self.before = {k: v.clone() for k, v in module.policy.state_dict().items()}
        self.handles = [p.register_hook(lambda g: g * float("nan")) for p in module.policy.parameters()]

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.handles:
            for h in self.handles:
                h.remove()
            self.handles = []
            self.after_first = {k: v.clone() for k, v in module.policy.state_dict().items()}


def test_resuming_with_another_test_size_finishes_without_a_change(tmp_path):
    """Before and after then cover different questions: no `change`, and nothing else lost."""
    from visurf.compose import compose_config
    from visurf.train import fit, run_dir_for

    part_dir, part = run(tmp_path, *RESUME_RUN, "trainer.max_steps=2", "eval.num_examples=4", name="part")
    assert part["change"] is not None
    cfg = compose_config([*RESUME_RUN, "trainer.max_steps=3", "eval.num_examples=2", f"resume={part_dir}"])
    resumed = fit(cfg, run_dir_for(cfg, tmp_path / "unused"))
    assert resumed["steps"] == 3 and resumed["change"] is None
    assert resumed["eval_before"]["num_examples"] == 4 and resumed["eval_after"]["num_examples"] == 2
    assert json.loads((part_dir / "summary.json").read_text())["steps"] == 3  # the run's outputs are written


def test_non_finite_gradients_skip_the_step_and_never_reach_the_weights(tmp_path):
    from visurf.compose import compose_config
    from visurf.train import fit

    poison = PoisonFirstStep()
    cfg = compose_config(["experiment=smoke", "objective=sft"])
    summary = fit(cfg, tmp_path / "run", callbacks=[poison])
    assert summary["skipped_steps"] == 1
    assert summary["steps"] == 2  # the skipped step is not counted; two real steps still ran
    for name, value in poison.after_first.items():
        assert torch.equal(value, poison.before[name]), name  # the poisoned step changed nothing
    final = load_file(tmp_path / "run" / "model" / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in final.values())
    assert any(not torch.equal(final[k], poison.before[k]) for k in final)  # later steps did train
    logged = pd.read_csv(tmp_path / "run" / "metrics.csv")["train/skipped_steps"].dropna()
    assert logged.max() == 1
