"""`python -m visurf.export`: a run (its final model/ or a .ckpt) becomes one plain HF model
directory with the adapters merged, which loads without peft and scores tokens as the run's
adapted policy does."""

from __future__ import annotations

import re
import shutil

import bitsandbytes as bnb
import pytest
import torch
from omegaconf import OmegaConf
from peft import PeftModel
from transformers import AutoModelForImageTextToText

from tests.conftest import smoke_config as config
from visurf.cli.export import ExportError, export, main
from visurf.data.sources import load_examples
from visurf.models.adapters import apply_adapters, quantization_config
from visurf.models.loading import load_policy
from visurf.models.processing import VLProcessor
from visurf.objectives import SFTStage
from visurf.rollout import Sequences, pad_completions, token_logps
from visurf.runs.weights import WeightsError


@pytest.fixture(scope="module")
def seqs(visurf_cache, tiny_dir):
    """Prompts + label completions of three synthetic examples."""
    processor = VLProcessor.from_pretrained(tiny_dir)
    examples = load_examples(config().data, 112, "train")[:3]
    inputs = processor([e.prompt for e in examples], [e.image for e in examples])
    ids, mask = pad_completions(
        processor.completion_ids([SFTStage().label_text(e) for e in examples]),
        processor.pad_token_id,
        processor.eos_token_id,
    )
    return Sequences(inputs, ids, mask, torch.zeros(len(examples), dtype=torch.bool))


def logps(model, seqs) -> torch.Tensor:
    device = next(model.parameters()).device  # a 4-bit model loads onto a GPU where there is one
    prompt = {k: v.to(device) for k, v in seqs.prompt.items()}
    seqs = Sequences(prompt, seqs.ids.to(device), seqs.mask.to(device), seqs.truncated.to(device))
    with torch.no_grad():
        return token_logps(model.eval(), seqs)[seqs.mask > 0].cpu()


def load_exported(out):
    model = AutoModelForImageTextToText.from_pretrained(out)
    assert not any("lora" in n or "base_layer" in n for n in model.state_dict())
    assert getattr(model.config, "quantization_config", None) is None
    processor = VLProcessor.from_pretrained(out)  # tokenizer, image processor, chat template
    assert processor.chat_template and (out / "chat_template.jinja").is_file()
    return model


def assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        torch.testing.assert_close(sa[name], sb[name], atol=0, rtol=0, msg=name)


# -- run directories as fit writes them ---------------------------------------------------------


def write_run(run_dir, cfg, model, processor) -> None:
    """What fit leaves behind: config.yaml, model/ (save_pretrained) and a Lightning-style
    last.ckpt whose state_dict is the module's (`policy.` + the model's keys). The smoke runs of
    tests/integration/test_adapters.py export real runs."""
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    model.save_pretrained(run_dir / "model")
    processor.save_pretrained(run_dir / "model")
    state = {f"policy.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "global_step": 2}, run_dir / "checkpoints" / "last.ckpt")


def perturbed(model, scale: float = 0.05):
    """Trained-looking weights: every trainable tensor moved (LoRA's B starts at 0)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad and p.is_floating_point():
                p.add_(scale * torch.randn(p.shape, generator=g))
    return model


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, tiny_dir):
    cfg = config("peft=lora")
    model, processor = load_policy(cfg.model, path=tiny_dir)
    run_dir = tmp_path_factory.mktemp("export") / "lora"
    write_run(run_dir, cfg, perturbed(apply_adapters(model, cfg.peft)), processor)
    return run_dir


# -- LoRA ----------------------------------------------------------------------------------------


def test_export_from_a_lora_run_dir(lora_run, tiny_dir, seqs, tmp_path):
    out = export(lora_run, tmp_path / "merged")
    merged = load_exported(out)
    base, _ = load_policy(config().model, path=tiny_dir)
    adapted = PeftModel.from_pretrained(load_policy(config().model, path=tiny_dir)[0], lora_run / "model")
    want = logps(adapted, seqs)
    assert (want - logps(base, seqs)).abs().max() > 1e-2  # the adapters matter
    torch.testing.assert_close(logps(merged, seqs), want, atol=1e-4, rtol=0)


def test_export_from_a_checkpoint_matches_the_run_dir(lora_run, tmp_path):
    main([f"checkpoint={lora_run / 'checkpoints' / 'last.ckpt'}", f"out={tmp_path / 'from_ckpt'}"])
    export(lora_run, tmp_path / "from_dir")
    # The final model/ and last.ckpt hold the same adapters: the same merged weights.
    assert_same_weights(load_exported(tmp_path / "from_ckpt"), load_exported(tmp_path / "from_dir"))


def test_a_run_dir_without_model_falls_back_to_last_ckpt(lora_run, tmp_path):
    run = tmp_path / "unfinished"
    shutil.copytree(lora_run, run, ignore=shutil.ignore_patterns("model"))
    export(run, tmp_path / "a")
    export(lora_run, tmp_path / "b")
    assert_same_weights(load_exported(tmp_path / "a"), load_exported(tmp_path / "b"))


# -- errors ------------------------------------------------------------------------------------


def test_export_errors_name_what_is_missing(lora_run, tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="no such run directory or checkpoint"):
        export(tmp_path / "nowhere", tmp_path / "out")
    empty = tmp_path / "empty_run"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="neither a run directory"):
        export(empty, tmp_path / "out")
    (empty / "config.yaml").write_text((lora_run / "config.yaml").read_text())
    with pytest.raises(FileNotFoundError, match="neither final weights .* nor a checkpoint"):
        export(empty, tmp_path / "out")
    lone = tmp_path / "lone" / "checkpoints"
    lone.mkdir(parents=True)
    shutil.copy(lora_run / "checkpoints" / "last.ckpt", lone)
    with pytest.raises(FileNotFoundError, match="config.yaml"):
        export(lone / "last.ckpt", tmp_path / "out")
    for argv, message in (
        ([f"out={tmp_path / 'out'}"], "checkpoint= is required"),
        ([f"checkpoint={lora_run}", "out=x", "bogus=1"], "unexpected argument"),
        ([f"checkpoint={tmp_path / 'nowhere'}", "out=x"], "no such"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2  # the input is at fault: one line, no traceback
        assert re.match(f"visurf.export: .*{message}", capsys.readouterr().err)


def test_a_checkpoint_without_the_adapters_is_refused(lora_run, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(lora_run / "config.yaml", run)
    state = torch.load(lora_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    state["state_dict"] = {k: v for k, v in state["state_dict"].items() if ".lora_" not in k}
    torch.save(state, run / "checkpoints" / "last.ckpt")
    with pytest.raises(WeightsError, match="lacks 56 adapter weights"):
        export(run, tmp_path / "out")


# -- QLoRA and full fine-tuning ------------------------------------------------------------------


def test_export_of_a_qlora_run(tiny_dir, seqs, tmp_path):
    """Adapters trained on the 4-bit base merge into the full-precision base: the export equals
    base + adapters exactly, and differs from the 4-bit model by the quantisation error only."""
    cfg = config("peft=qlora")
    quantized, processor = load_policy(
        cfg.model, path=tiny_dir, quantization_config=quantization_config(cfg.peft)
    )
    trained = perturbed(apply_adapters(quantized, cfg.peft))
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in trained.modules())
    run = tmp_path / "qlora"
    write_run(run, cfg, trained, processor)

    export(run, tmp_path / "from_dir")
    main([f"checkpoint={run / 'checkpoints' / 'last.ckpt'}", f"out={tmp_path / 'from_ckpt'}"])
    merged = load_exported(tmp_path / "from_dir")
    assert_same_weights(merged, load_exported(tmp_path / "from_ckpt"))
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in merged.modules())

    full_base, _ = load_policy(cfg.model, path=tiny_dir)
    want = logps(PeftModel.from_pretrained(full_base, run / "model"), seqs)
    got = logps(merged, seqs)
    torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    # Against the 4-bit model that was trained: the NF4 rounding of the base is the only gap.
    # Loose: the rounding error compounds through the layers.
    gap = (got - logps(trained, seqs)).abs()
    assert 0 < gap.mean() < 0.1, float(gap.mean())  # 0.02 here


def test_export_of_a_full_fine_tuning_run(tiny_dir, seqs, tmp_path):
    cfg = config()
    model, processor = load_policy(cfg.model, path=tiny_dir)
    perturbed(model, scale=0.01)
    run = tmp_path / "full"
    write_run(run, cfg, model, processor)
    export(run, tmp_path / "from_dir")
    export(run / "checkpoints" / "last.ckpt", tmp_path / "from_ckpt")
    for out in ("from_dir", "from_ckpt"):
        assert_same_weights(load_exported(tmp_path / out), model)


def test_export_dtype(lora_run, tmp_path):
    out = export(lora_run, tmp_path / "bf16", dtype="bfloat16")
    assert AutoModelForImageTextToText.from_pretrained(out).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="dtype='int3'"):
        export(lora_run, tmp_path / "x", dtype="int3")


def test_export_is_atomic_and_refuses_to_replace_a_foreign_directory(lora_run, tmp_path, monkeypatch):
    """A failure while writing leaves no half-written export; a non-model `out` is not replaced."""
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not a model directory"):
        export(lora_run, foreign)
    assert (foreign / "keep.txt").read_text() == "mine"

    out = export(lora_run, tmp_path / "out")
    before = sorted(p.name for p in out.iterdir())
    from transformers import PreTrainedModel

    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", broken)
    with pytest.raises(OSError, match="disk full"):
        export(lora_run, out)
    assert sorted(p.name for p in out.iterdir()) == before  # the earlier export, untouched
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []
