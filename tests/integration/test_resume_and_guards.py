"""Resume reproduces the uninterrupted run; non-finite steps never reach the weights."""

from __future__ import annotations

import json
import os

import lightning as L
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import run

RESUME_RUN = ["experiment=smoke", "objective=visurf", "train.checkpoint_every=2", "rollout.num_generations=3"]


def test_resume_continues_to_the_same_final_metrics(tmp_path):
    whole_dir, whole = run(tmp_path, *RESUME_RUN, "trainer.max_steps=4", name="whole")
    part_dir, _ = run(tmp_path, *RESUME_RUN, "trainer.max_steps=2", name="part")
    # The user's command: the same run, longer, resume=<run dir>; it continues in that directory.
    from visurf.config.compose import compose_config
    from visurf.recipes.train import run_dir_for, train

    cfg = compose_config([*RESUME_RUN, "trainer.max_steps=4", f"resume={part_dir}"])
    resumed = train(cfg, run_dir_for(cfg, tmp_path / "unused"))
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
    from visurf.config.compose import compose_config
    from visurf.recipes.train import run_dir_for, train

    part_dir, part = run(tmp_path, *RESUME_RUN, "trainer.max_steps=2", "eval.num_examples=4", name="part")
    assert part["change"] is not None
    cfg = compose_config([*RESUME_RUN, "trainer.max_steps=3", "eval.num_examples=2", f"resume={part_dir}"])
    resumed = train(cfg, run_dir_for(cfg, tmp_path / "unused"))
    assert resumed["steps"] == 3 and resumed["change"] is None
    assert resumed["eval_before"]["num_examples"] == 4 and resumed["eval_after"]["num_examples"] == 2
    assert json.loads((part_dir / "summary.json").read_text())["steps"] == 3  # the run's outputs are written


def test_non_finite_gradients_skip_the_step_and_never_reach_the_weights(tmp_path):
    from visurf.config.compose import compose_config
    from visurf.recipes.train import train

    poison = PoisonFirstStep()
    cfg = compose_config(["experiment=smoke", "objective=sft"])
    summary = train(cfg, tmp_path / "run", callbacks=[poison])
    assert summary["skipped_steps"] == 1
    assert summary["steps"] == 2  # the skipped step is not counted; two real steps still ran
    for name, value in poison.after_first.items():
        assert torch.equal(value, poison.before[name]), name  # the poisoned step changed nothing
    final = load_file(tmp_path / "run" / "model" / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in final.values())
    assert any(not torch.equal(final[k], poison.before[k]) for k in final)  # later steps did train
    logged = pd.read_csv(tmp_path / "run" / "metrics.csv")["train/skipped_steps"].dropna()
    assert logged.max() == 1


# -- interruptions: every record kept once, the outputs equal the uninterrupted run's -------------

FAULT_RUN = ["experiment=smoke", "objective=visurf", "train.checkpoint_every=1"]


class Killed(BaseException):
    """Stands in for a kill inside the process (not an Exception: nothing handles it as an error)."""


class KillAt(L.Callback):
    """Stops the run at the end of optimisation step `step`, before that step's checkpoint."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if trainer.global_step >= self.step:
            raise Killed(f"step {trainer.global_step}")


class KillAtStart(L.Callback):
    """A resume that fails before its first step."""

    def on_train_start(self, trainer, module):
        raise Killed("at start")


def _fit(run_dir, *overrides, callbacks=None, resume=False):
    from visurf.config.compose import compose_config
    from visurf.recipes.train import train

    cfg = compose_config([*FAULT_RUN, *overrides, *([f"resume={run_dir}"] if resume else [])])
    return train(cfg, run_dir, callbacks=callbacks)


def _interrupted(run_dir, *overrides, callbacks=None, resume=False):
    try:
        _fit(run_dir, *overrides, callbacks=callbacks, resume=resume)
    except Killed:
        return
    raise AssertionError("the run was not interrupted")


def assert_same_run(whole_dir, part_dir):
    """metrics.csv row for row (every column), summary.json but for timing, final weights."""
    a, b = pd.read_csv(whole_dir / "metrics.csv"), pd.read_csv(part_dir / "metrics.csv")
    assert sorted(a.columns) == sorted(b.columns)
    pd.testing.assert_frame_equal(a, b[a.columns])
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (whole_dir, part_dir))
    for key in ("wall_time_s", "resumed_from"):
        sa.pop(key), sb.pop(key)
    assert sa == sb and sb["eval_after"] is not None and sb["change"] is not None
    wa, wb = (load_file(d / "model" / "model.safetensors") for d in (whole_dir, part_dir))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not (part_dir / "metrics.earlier.csv").exists()


def test_repeated_interruptions_and_a_failed_resume_keep_every_metrics_row_once(tmp_path):
    """Issue repro: metrics.csv held only the last part after several kills and resumes."""
    opts = ["trainer.max_steps=6", "eval.every_n_batches=2"]  # evaluations at the kill steps too
    whole = tmp_path / "whole"
    _fit(whole, *opts)
    run = tmp_path / "run"
    _interrupted(run, *opts, callbacks=[KillAt(2)])
    _interrupted(run, *opts, callbacks=[KillAt(4)], resume=True)
    _interrupted(run, *opts, callbacks=[KillAt(5)], resume=True)  # a part of 1 step
    _interrupted(run, *opts, callbacks=[KillAt(0)], resume=True)  # 1 step, no checkpoint
    _interrupted(run, *opts, callbacks=[KillAtStart()], resume=True)  # fails before a step
    _fit(run, *opts, resume=True)
    steps = pd.read_csv(run / "metrics.csv").dropna(subset=["train/loss"])["step"].tolist()
    assert steps == list(range(6))
    assert_same_run(whole, run)


def test_steps_done_again_after_a_resume_are_logged_once(tmp_path):
    """Issue repro: max_steps=12, checkpoint_every=5, killed at step 7: steps 5-6 appeared twice.
    Evaluations during training too: the one at step 6 is done again, once in the metrics."""
    opts = ["trainer.max_steps=8", "train.checkpoint_every=5", "eval.every_n_batches=2"]
    whole = tmp_path / "whole"
    _fit(whole, *opts)
    run = tmp_path / "run"
    _interrupted(run, *opts, callbacks=[KillAt(7)])
    _fit(run, *opts, resume=True)
    steps = pd.read_csv(run / "metrics.csv").dropna(subset=["train/loss"])["step"].tolist()
    assert steps == list(range(8))
    assert_same_run(whole, run)


def test_a_kill_mid_checkpoint_leaves_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    """Checkpoints go to a temporary file in checkpoints/ and are renamed: last.ckpt was left
    empty when the final move crossed filesystems ($TMPDIR elsewhere). Fast variant of
    tests/integration/test_faults.py (which kills real processes)."""
    import io

    import lightning.fabric.plugins.io.torch_io as torch_io

    whole = tmp_path / "whole"
    _fit(whole, "trainer.max_steps=4")
    monkeypatch.setenv("TMPDIR", "/dev/shm")  # another filesystem than the run directory
    real, calls = torch_io._atomic_save, []

    def half_then_killed(checkpoint, path):
        calls.append(path)
        if len(calls) == 4:  # step 2's last.ckpt, after step00002.ckpt
            buf = io.BytesIO()
            torch.save(checkpoint, buf)
            with open(path, "wb") as f:
                f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
            raise Killed("mid-checkpoint")
        return real(checkpoint, path)

    monkeypatch.setattr(torch_io, "_atomic_save", half_then_killed)
    run = tmp_path / "run"
    _interrupted(run, "trainer.max_steps=4")
    monkeypatch.setattr(torch_io, "_atomic_save", real)
    assert calls[3].parent == run / "checkpoints" and calls[3].name.startswith(".last.ckpt.tmp-")
    from visurf.runs.checkpoints import checkpoint_step

    assert checkpoint_step(run / "checkpoints" / "last.ckpt") == 1  # the previous one, whole
    _fit(run, "trainer.max_steps=4", resume=True)
    assert not [p for p in (run / "checkpoints").iterdir() if ".tmp-" in p.name]
    assert_same_run(whole, run)


def test_a_kill_before_summary_json_is_made_whole_by_resuming(tmp_path, monkeypatch):
    """Issue repro: resuming a run killed after its last checkpoint gave eval_after: null."""
    import visurf.io.atomic

    whole = tmp_path / "whole"
    _fit(whole, "trainer.max_steps=3")
    real = visurf.io.atomic.write_text

    def killed_at_summary(path, text):
        if str(path).endswith("summary.json"):
            raise Killed("before summary.json")
        return real(path, text)

    monkeypatch.setattr(visurf.io.atomic, "write_text", killed_at_summary)
    run = tmp_path / "run"
    _interrupted(run, "trainer.max_steps=3")
    monkeypatch.setattr(visurf.io.atomic, "write_text", real)
    assert not (run / "summary.json").exists()
    _fit(run, "trainer.max_steps=3", resume=True)
    assert_same_run(whole, run)


def test_an_empty_last_ckpt_names_the_newest_intact_one_and_resume_pick_takes_it(tmp_path):
    from visurf.runs.checkpoints import ResumeError

    run = tmp_path / "run"
    _fit(run, "trainer.max_steps=2")
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(ResumeError) as err:
        _fit(run, "trainer.max_steps=3", resume=True)
    message = str(err.value)
    assert "last.ckpt cannot be read: the file is empty" in message
    assert f"newest intact checkpoint is {run / 'checkpoints' / 'step00002.ckpt'} (step 2)" in message
    assert "resume_pick=newest_intact" in message
    summary = _fit(run, "trainer.max_steps=3", "resume_pick=newest_intact", resume=True)
    assert summary["steps"] == 3 and summary["resumed_from"].endswith("step00002.ckpt")


def test_a_checkpoint_outside_a_runs_checkpoints_folder_is_refused(tmp_path):
    """Issue repro: resume=/x/a/b.ckpt wrote into /x and crashed after training."""
    import shutil

    from visurf.config.compose import compose_config
    from visurf.recipes.train import run_dir_for
    from visurf.runs.checkpoints import ResumeError

    run = tmp_path / "run"
    _fit(run, "trainer.max_steps=1")
    stray = tmp_path / "x" / "a" / "b.ckpt"
    stray.parent.mkdir(parents=True)
    shutil.copy(run / "checkpoints" / "last.ckpt", stray)
    cfg = compose_config([*FAULT_RUN, f"resume={stray}"])
    with pytest.raises(ResumeError, match=r"is not in a run's checkpoints/ folder"):
        run_dir_for(cfg, tmp_path / "hydra")
    with pytest.raises(ResumeError):
        _fit(tmp_path / "x", f"resume={stray}")
    assert sorted(p.name for p in (tmp_path / "x").rglob("*")) == ["a", "b.ckpt"]  # nothing written


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_malicious_checkpoint_is_refused_without_running_its_code(tmp_path):
    """Checkpoints are loaded with weights_only=True: a pickle that runs code is not executed."""
    from visurf.runs.checkpoints import ResumeError

    run = tmp_path / "run"
    _fit(run, "trainer.max_steps=1")
    marker = tmp_path / "pwned"
    torch.save({"global_step": 1, "state_dict": {}, "x": _Payload(marker)}, run / "checkpoints" / "last.ckpt")
    with pytest.raises(ResumeError, match="last.ckpt cannot be read"):
        _fit(run, "trainer.max_steps=2", resume=True)
    assert not marker.exists()


def test_a_checkpoint_loads_with_weights_only(tmp_path):
    """Everything visurf and Lightning put in a checkpoint is plain data (no pickled objects)."""
    run = tmp_path / "run"
    _fit(run, "trainer.max_steps=1", "objective.beta=0.1")  # the KL reference is saved too
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["global_step"] == 1 and "reference" in ckpt["visurf"]
    assert ckpt["callbacks"]["EvalCallback"]["eval_before"]["num_examples"] == 4


def test_a_summary_with_holes_says_so_and_the_run_fails(tmp_path, monkeypatch):
    """Should an evaluation go missing, summary.json records what is missing and the run fails."""
    from visurf.evaluation.runner import EvalCallback
    from visurf.runs.summary import IncompleteRunError

    monkeypatch.setattr(EvalCallback, "on_train_end", lambda self, trainer, module: None)
    run = tmp_path / "run"
    with pytest.raises(IncompleteRunError, match="eval_after missing"):
        _fit(run, "trainer.max_steps=1")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["incomplete"] == ["eval_after"] and summary["eval_before"] is not None
    assert (run / "model" / "model.safetensors").is_file()  # everything else is written


def test_the_cli_refuses_a_stray_checkpoint_in_one_line(tmp_path):
    """`resume=` errors end like config errors: one `visurf:` line, exit status 2, nothing written."""
    from tests.cli.test_run_errors import cli

    stray = tmp_path / "x" / "a" / "b.ckpt"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"")
    out = cli("experiment=smoke", f"resume={stray}", f"hydra.run.dir={tmp_path / 'hydra'}")
    assert out.returncode == 2, out.stderr[-2000:]
    assert f"visurf: resume={stray}: a checkpoint is resumed in its own run directory" in out.stderr
    assert "Traceback" not in out.stderr
    assert sorted(p.name for p in (tmp_path / "x").rglob("*")) == ["a", "b.ckpt"]
