"""The tiny local VLM: transformers' own Qwen2.5-VL, loadable through the Auto classes offline."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

from visurf.models.tiny import SPECIAL_TOKENS, main


def test_cli_writes_an_hf_directory_that_auto_classes_load(tmp_path, capsys):
    out = tmp_path / "tiny"
    main(["--out", str(out), "--num-layers", "1", "--vocab-size", "600"])
    assert "parameters" in capsys.readouterr().out
    model = AutoModelForImageTextToText.from_pretrained(out)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert model.config.text_config.num_hidden_layers == 1
    tok = AutoTokenizer.from_pretrained(out)
    for token in SPECIAL_TOKENS:
        assert tok.convert_tokens_to_ids(token) != tok.unk_token_id
        assert len(tok(token, add_special_tokens=False)["input_ids"]) == 1
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    proc = AutoImageProcessor.from_pretrained(out)
    assert proc.merge_size == 2 and proc.patch_size == 14
    assert (out / "chat_template.jinja").read_text().startswith("{% for message")
    assert json.loads((out / "visurf_tiny.json").read_text())["num_layers"] == 1


def test_tokenizer_learnt_the_synthetic_corpus(tiny_dir):
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    text = '<think>I see a red circle.</think><answer>[{"bbox_2d":[10,20,30,40],"point_2d":[20,30]}]</answer>'
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    assert len(ids) < len(text) / 2  # merges were learnt: far fewer tokens than characters


def test_generate_uses_the_kv_cache_and_matches_a_full_forward(tiny_dir):
    from PIL import Image

    from visurf.models.processing import VLProcessor

    model = AutoModelForImageTextToText.from_pretrained(tiny_dir).eval()
    proc = VLProcessor.from_pretrained(tiny_dir)
    img = Image.new("RGB", (112, 112), (200, 30, 30))
    inputs = proc(["Find the red circle.", "Find the blue square."], [img, img])
    out = model.generate(
        **inputs,
        do_sample=False,
        max_new_tokens=6,
        use_cache=True,
        return_dict_in_generate=True,
        output_scores=True,
        eos_token_id=proc.eos_token_id,
        pad_token_id=proc.pad_token_id,
    )
    # Greedy tokens from the cached generation equal the argmax of one uncached forward pass.
    seq = out.sequences
    p = inputs["input_ids"].shape[1]
    full = model(
        input_ids=seq,
        attention_mask=torch.ones_like(seq).masked_fill(seq == proc.pad_token_id, 0),
        pixel_values=inputs["pixel_values"],
        image_grid_thw=inputs["image_grid_thw"],
        mm_token_type_ids=torch.cat([inputs["mm_token_type_ids"], torch.zeros_like(seq[:, p:])], 1),
    )
    greedy = full.logits[:, p - 1 : -1].argmax(-1)
    assert torch.equal(greedy[:, :1], seq[:, p : p + 1])
    assert torch.allclose(out.scores[0], full.logits[:, p - 1], atol=1e-4)


def test_an_unknown_family_is_refused_with_the_choices(tmp_path):
    from visurf.models.tiny import build_tiny

    with pytest.raises(ValueError, match=r"--family must be one of .*'gemma3'.*'qwen3_vl'.*got 'nope'"):
        build_tiny(tmp_path / "m", family="nope")
    assert not (tmp_path / "m").exists()  # refused before anything is written
