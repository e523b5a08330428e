"""Counting and multiple-choice rewards: small examples of the registry's plug-in path."""

import re

from visurf.rewards.parsing import parse_completion
from visurf.rewards.registry import register_reward

# Bounded digit count: int() of a 5000-digit string raises, and no count is that large.
_INTEGER = re.compile(r"[+-]?[0-9]{1,30}")
_CHOICE = re.compile(r"\(?([A-Ea-e])\)?\.?")


def parse_integer(text) -> int | None:
    text = str(text).strip()
    return int(text) if _INTEGER.fullmatch(text) else None


def parse_choice(text) -> str | None:
    match = _CHOICE.fullmatch(str(text).strip())
    return match.group(1).upper() if match else None


class _SingleAnswerReward:
    """think format + answer format + exact-match accuracy for a one-token answer."""

    components = ("think_format", "answer_format", "accuracy")
    max_total = 3.0

    @staticmethod
    def parse_answer(text: str):
        raise NotImplementedError

    def __call__(self, completion: str, solution, width: int = 0, height: int = 0) -> dict[str, float]:
        label = self.parse_answer(solution)
        if label is None:
            raise ValueError(f"malformed {self.name} label: {solution!r:.200}")
        scores = dict.fromkeys(self.components, 0.0)
        correct = 0.0
        try:
            parsed = parse_completion(completion)
            answer = self.parse_answer(parsed.answer) if parsed.answer is not None else None
            scores["think_format"] = float(parsed.strict_format)
            scores["answer_format"] = float(answer is not None)
            correct = float(answer is not None and answer == label)
            scores["accuracy"] = correct
        except Exception:  # last resort: the reward must never stop training
            pass
        return {**scores, "total": sum(scores.values()), "correct": correct}


@register_reward("counting")
class CountingReward(_SingleAnswerReward):
    """The answer is an integer count, e.g. `<answer>3</answer>`."""

    parse_answer = staticmethod(parse_integer)


@register_reward("multiple_choice")
class MultipleChoiceReward(_SingleAnswerReward):
    """The answer is one letter A-E (case and `(B)` / `B.` forms accepted)."""

    parse_answer = staticmethod(parse_choice)
