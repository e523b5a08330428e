"""Greedy answers on evaluation sets are generated as the released evaluation generates them:
`generate(do_sample=False)` with the checkpoint's own generation settings in force."""

from __future__ import annotations

import json

from PIL import Image

from visurf.data.prompt import build_prompt
from visurf.evaluation.benchmark import greedy_texts
from visurf.models.loading import load_policy
from visurf.runs.resolve import locate

ANSWER = '<answer>[{"bbox_2d":[20,30,80,90],"point_2d":[50,60]}]</answer>'


def test_the_checkpoint_s_generation_settings_apply(answerer):
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(answerer / "config.yaml")
    model, processor = load_policy(cfg.model, path=locate(str(answerer)).weights)
    prompts = [build_prompt("the thing"), build_prompt("no such thing")]
    images = [Image.new("RGB", (112, 112), (0, 100, 200))] * 2
    # The run's own evaluation (rollouts neutralise the settings) wrote the same answers: the tiny
    # checkpoint sets no penalty.
    assert model.generation_config.repetition_penalty in (None, 1.0)
    texts = greedy_texts(model, processor, prompts, images, 40, "cpu")
    assert texts == [ANSWER, "<answer>[]</answer>"]
    logged = [
        json.loads(line)["completion"] for line in (answerer / "samples" / "eval_step00060.jsonl").open()
    ]
    assert set(texts) <= set(logged)
    # A checkpoint that ships a repetition penalty (Qwen-Instruct's is 1.05) has it applied to
    # greedy decoding, as `generate(do_sample=False)` applies it: a harsh one breaks the answer,
    # whose tokens repeat.
    model.generation_config.repetition_penalty = 50.0
    assert greedy_texts(model, processor, prompts[:1], images[:1], 40, "cpu") != [ANSWER]
