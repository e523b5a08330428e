"""Which of a step's rollout answers the run's reward could read, the way evaluation reads them
(visurf.evaluation.metrics, chosen by the reward's `metric`): a grounding answer is read when it
parses as a JSON list of objects, and `[]` is its "nothing there"; any other reward (counting,
multiple choice, exact answers) reads an answer when its `answer_format` component is set, and
has no "nothing there"."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from visurf.rewards.parsing import parse_completion


@dataclass
class AnswerReading:
    readable: torch.Tensor  # [N] bool: the reward could read the answer (`format_rate`)
    empty: torch.Tensor | None  # [N] bool: the answer is `[]`; None where `[]` means nothing


def grounding_reading(texts: list[str], scores: list[dict]) -> AnswerReading:
    objects = [parse_completion(t).objects for t in texts]
    return AnswerReading(
        torch.tensor([o is not None for o in objects], dtype=torch.bool),
        torch.tensor([o == [] for o in objects], dtype=torch.bool),
    )


def answer_text_reading(texts: list[str], scores: list[dict]) -> AnswerReading:
    readable = [float(s.get("answer_format", 0.0)) > 0 for s in scores]
    return AnswerReading(torch.tensor(readable, dtype=torch.bool), None)


def read_answers(reward, texts: list[str], scores: list[dict]) -> AnswerReading:
    """texts[i] scored as scores[i] by `reward`, read by its `metric` ("grounding" where it says none)."""
    metric = getattr(reward, "metric", "grounding")
    return (grounding_reading if metric == "grounding" else answer_text_reading)(texts, scores)
