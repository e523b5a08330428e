"""Image tokens bounded and reported: model.min_pixels / model.max_pixels reach the processor, the
run reports what one image costs, and a prompt the model's context cannot hold is refused before
the first step, where a prompt cut to a length limit crashes the model with a token mismatch."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch
from PIL import Image

from tests.conftest import run
from visurf.config.compose import compose_config
from visurf.config.validate import ConfigError, validate
from visurf.data.errors import BadRowError
from visurf.models.loading import load_policy
from visurf.models.processing import VLProcessor


def test_pixel_bounds_reach_the_processor_and_set_the_image_tokens(tiny_dir):
    processor = VLProcessor.from_pretrained(tiny_dir)
    processor.set_pixel_bounds(3136, 224 * 224)
    assert processor.pixel_bounds() == (3136, 224 * 224)
    big = processor.tokens_added_by_image(224, 224)
    small = processor.tokens_added_by_image(112, 112)
    # 14-px patches merged 2 x 2: a 224 image has 8 x 8 image tokens, a 112 image 4 x 4
    assert big - small == 64 - 16
    processor.set_pixel_bounds(None, 112 * 112)  # a 224 image is now shrunk to 112: as many tokens
    assert processor.pixel_bounds() == (3136, 112 * 112)
    assert processor.tokens_added_by_image(224, 224) == small


def test_a_frame_outside_the_pixel_bounds_is_refused(tiny_dir):
    cfg = compose_config(["model=tiny", "model.max_pixels=10000"])
    with pytest.raises(ConfigError, match=r"model\.max_pixels=10000 .* 112x112 frame's 12544 pixels"):
        validate(cfg)
    with pytest.raises(ValueError, match=r"model\.frame=112: a 112x112 image is 12544 pixels, more than"):
        load_policy(cfg.model)  # the same check where the model loads (a preset validate cannot see into)
    with pytest.raises(ConfigError, match=r"model\.max_pixels=.*the gemma3 processor takes no pixel bounds"):
        validate(compose_config(["model=gemma3_4b", "model.max_pixels=1000000"]))
    with pytest.raises(ConfigError, match=r"model\.min_pixels=5000 .* <= model\.max_pixels"):
        validate(compose_config(["model=tiny", "model.min_pixels=5000", "model.max_pixels=4000"]))


def test_a_run_records_its_pixel_bounds_and_reports_the_image_tokens(smoke_run, caplog):
    with caplog.at_level(logging.INFO, logger="visurf.recipes.train"):
        run_dir, summary = smoke_run("objective=sft", "model.min_pixels=6272", "model.max_pixels=12544")
    assert "min_pixels: 6272" in (run_dir / "config.yaml").read_text()
    tokens = VLProcessor.from_pretrained(run_dir / "model").tokens_added_by_image(112, 112)
    assert summary["image_tokens"] == {
        "frame": 112,
        "tokens_per_image": tokens,
        "min_pixels": 6272,
        "max_pixels": 12544,
        "context": summary["image_tokens"]["context"],
    }
    saved = json.loads((run_dir / "model" / "preprocessor_config.json").read_text())
    assert saved["size"] == {"shortest_edge": 6272, "longest_edge": 12544}
    lines = [r.getMessage() for r in caplog.records if "image tokens" in r.getMessage()]
    assert lines == [
        f"  image tokens    {tokens} per 112x112 image, pixels bounded to [6272, 12544]; "
        f"context {summary['image_tokens']['context']} tokens"
    ]


def test_a_prompt_cut_to_a_length_limit_crashes_the_model_and_visurf_refuses_it_first(tiny_dir, tmp_path):
    from transformers import AutoModelForImageTextToText

    # Elsewhere: a prompt length limit (max_prompt_length) cuts the image's tokens, and the
    # forward pass fails on a mismatch between image features and image tokens.
    processor = VLProcessor.from_pretrained(tiny_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_dir)
    inputs = processor(["Find the circle."], [Image.new("RGB", (112, 112), "white")])
    limit = inputs["input_ids"].shape[1] - 10  # left truncation, as a prompt limit keeps the end
    cut = {k: v[:, -limit:] if k in ("input_ids", "attention_mask") else v for k, v in inputs.items()}
    with pytest.raises(ValueError, match="Image features and image tokens do not match"), torch.no_grad():
        model(**cut)

    # visurf cuts nothing: a model whose context cannot hold the prompt and its completion is
    # refused before the first step, naming the row and the counts.
    small = tmp_path / "small-context"
    shutil.copytree(tiny_dir, small)
    config = json.loads((small / "config.json").read_text())
    context = inputs["input_ids"].shape[1] + 4  # room for the prompt, not for 12 new tokens
    config["text_config"]["max_position_embeddings"] = context
    (small / "config.json").write_text(json.dumps(config))
    overrides = ("model=tiny", "model.source=path", f"model.path={small}", "objective=rlvr")
    with pytest.raises(BadRowError) as refused:
        run(tmp_path, "experiment=smoke", *overrides)
    message = str(refused.value)
    image = processor.tokens_added_by_image(112, 112)
    assert f"{image} of them for its 1 112x112 image)" in message
    assert f"more than the model's context of {context}" in message
    assert "up to 12 generated" in message and message.startswith("bad row ")
    assert not (tmp_path / "run" / "checkpoints").exists() and not (tmp_path / "run" / "metrics.csv").exists()
