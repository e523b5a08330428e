"""A policy step's format rates follow its reward, as evaluation's do: a grounding answer is read
when it parses as a JSON list (and `[]` is "nothing there"); an answer-text reward reads what its
`answer_format` component says it could, with no `[]` rate. Hand-counted on one small batch."""

from __future__ import annotations

import pytest
import torch

from visurf.data.dataset import Example
from visurf.objectives.answer_reading import read_answers
from visurf.objectives.policy import by_group, rollout_metrics
from visurf.rewards import build_reward
from visurf.rollout import Sequences

BOX = '[{"bbox_2d": [10, 10, 50, 50], "point_2d": [30, 30]}]'
# Two prompts x G=3 rollouts. Counting reads t0, t1, t4 (integers); grounding reads t3, t5
# (JSON lists), t3 being `[]`; t0, t3 and t5 have the strict <think>…</think><answer>…</answer> form.
TEXTS = [
    "<think>two squares</think><answer>2</answer>",
    "<answer>+3</answer>",
    "<answer>three</answer>",
    "<think>none here</think><answer>[]</answer>",
    "<answer>0</answer>",
    f"<think>one box</think><answer>{BOX}</answer>",
]
SOLUTIONS = {"counting": "2", "grounding": BOX}


def example(i: int, group: str) -> Example:
    return Example(f"q{i}", "how many?", "how many?", None, [], "", 112, 112, group=group)


def step_metrics(reward_name: str) -> dict[str, float]:
    reward = build_reward(reward_name)
    examples = [example(0, "known"), example(1, "novel")]
    scores = [reward(t, SOLUTIONS[reward_name], 112, 112) for t in TEXTS]
    mask = torch.ones(6, 4)
    seqs = Sequences({}, torch.zeros(6, 4, dtype=torch.long), mask, torch.zeros(6, dtype=torch.bool))
    reading = read_answers(reward, TEXTS, scores)
    correct = torch.tensor([bool(s["correct"]) for s in scores]).view(2, 3)
    return rollout_metrics(TEXTS, scores, seqs, 3, reading) | by_group(examples, correct, reading)


def test_a_text_answer_step_counts_the_answers_its_reward_could_read():
    metrics = step_metrics("counting")
    assert metrics["format_rate"] == 3 / 6  # t0, t1, t4
    assert metrics["reward/answer_format"] == 3 / 6
    assert metrics["strict_format_rate"] == 3 / 6
    assert metrics["accuracy"] == 1 / 6  # t0 says 2
    # `[]` is not an answer a count can give: no rate of it, overall or per group
    assert not [k for k in metrics if k.endswith("empty_answer_rate")]
    assert metrics["group/known/accuracy"] == pytest.approx(1 / 3)


def test_a_grounding_step_keeps_its_json_list_format_and_empty_answer_rates():
    metrics = step_metrics("grounding")
    assert metrics["format_rate"] == 2 / 6  # t3, t5
    assert metrics["strict_format_rate"] == 3 / 6
    assert metrics["empty_answer_rate"] == 1 / 6  # t3
    assert metrics["group/known/empty_answer_rate"] == 0.0
    assert metrics["group/novel/empty_answer_rate"] == pytest.approx(1 / 3)
    assert metrics["group/multi/empty_answer_rate"] != metrics["group/multi/empty_answer_rate"]  # NaN: absent
    assert metrics["accuracy"] == 1 / 6  # t5 is the label's box
