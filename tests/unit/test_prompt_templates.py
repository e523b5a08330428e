"""Prompt templates by name or text, and which one each model preset uses."""

from __future__ import annotations

import pytest

from tests.conftest import smoke_config
from visurf.config.compose import compose_config
from visurf.config.validate import ConfigError, validate
from visurf.data.prompt import PROMPT_TEMPLATE, TEMPLATES, build_prompt, template_text


def test_names_and_texts():
    assert template_text("short") == PROMPT_TEMPLATE and build_prompt(" a cat ") == build_prompt(
        "a cat", "short"
    )
    assert build_prompt(" A Cat. ", "Find {problem} / {question}") == "Find A Cat. /  a cat. "
    assert build_prompt("A cat...", "{question}") == "a cat"
    with pytest.raises(ValueError, match=r"one of \['seg_zero', 'short', 'vision_reasoner', 'visurf'\]"):
        template_text("segzero")


def test_a_problem_holding_a_placeholder_is_not_expanded():
    assert build_prompt("{question}", "[{problem}] [{question}]") == "[{question}] [{question}]"


def test_the_reference_templates_differ_only_where_their_sources_do():
    seg_zero, vision_reasoner, visurf = (TEMPLATES[n] for n in ("seg_zero", "vision_reasoner", "visurf"))
    assert seg_zero == "<image>\n" + vision_reasoner
    assert visurf == vision_reasoner.replace("[10,100,200,210]", "[10, 100, 200, 210]").replace(
        "[30,110]", "[30, 110]"
    ).replace("[225,296,706,786]", "[225, 296, 706, 786]").replace("[302,410]", "[302, 410]")


@pytest.mark.parametrize(
    ("model", "template", "max_new_tokens"),
    [
        ("qwen2_5_vl_7b", "seg_zero", 2048),
        ("qwen2_5_vl_3b", "seg_zero", 2048),
        ("qwen3_vl_2b", "seg_zero", 2048),
        ("tiny_base", None, 128),
        ("tiny", None, 128),
    ],
)
def test_presets_choose_their_prompt_and_evaluation_length(model, template, max_new_tokens):
    cfg = compose_config([f"model={model}"])
    assert cfg.data.prompt_template == template and cfg.eval.max_new_tokens == max_new_tokens
    # data.prompt_template overrides the preset's choice, on either data option.
    for data in ("synth", "local"):
        cfg = compose_config([f"model={model}", f"data={data}", "data.path=/x", "data.prompt_template=short"])
        assert cfg.data.prompt_template == "short"


def test_an_unknown_template_is_a_config_error():
    with pytest.raises(ConfigError, match="data.prompt_template: prompt template must be one of"):
        validate(smoke_config("data.prompt_template=nonsense"))
