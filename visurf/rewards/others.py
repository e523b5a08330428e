"""Counting, multiple-choice and exact-answer rewards: answers that need no image, and small
examples of the registry's plug-in path."""

import re
from fractions import Fraction

from visurf.rewards.parsing import parse_completion
from visurf.rewards.registry import register_reward

# Bounded digit count: int() of a 5000-digit string raises, and no count is that large.
_INTEGER = re.compile(r"[+-]?[0-9]{1,30}")
_CHOICE = re.compile(r"\(?([A-Ea-e])\)?\.?")
# A number as math answers write it: an integer, a decimal or a fraction, digits bounded as above.
_NUMBER = re.compile(r"[+-]?(?:[0-9]{1,30}(?:\.[0-9]{1,30})?|\.[0-9]{1,30}|[0-9]{1,30}/[0-9]{1,30})")
_BOXED = re.compile(r"\\boxed\{(.*)\}")


def parse_integer(text) -> int | None:
    text = str(text).strip()
    return int(text) if _INTEGER.fullmatch(text) else None


def parse_choice(text) -> str | None:
    match = _CHOICE.fullmatch(str(text).strip())
    return match.group(1).upper() if match else None


def parse_exact(text):
    """A math-style answer: its value where it is a number (`0.5`, `1/2` and `.50` are one value;
    `\\boxed{...}`, `$...$`, thousands commas and a final '.' are dropped), else the text itself,
    lower-cased with its spaces collapsed; None where nothing is left."""
    text = str(text).strip().strip("$").strip()
    boxed = _BOXED.fullmatch(text)
    text = (boxed.group(1) if boxed else text).strip().rstrip(".").strip()
    number = text.replace(",", "").replace(" ", "")
    if _NUMBER.fullmatch(number):
        if "/" in number and int(number.split("/")[1].lstrip("+-")) == 0:
            return None
        return Fraction(number)
    words = " ".join(text.lower().split())
    return words or None


class _SingleAnswerReward:
    """think format + answer format + exact-match accuracy for a one-token answer."""

    components = ("think_format", "answer_format", "accuracy")
    max_total = 3.0
    metric = "answer"  # evaluated by accuracy, not boxes (visurf.evaluation.metrics.AnswerMetrics)
    answer_kind = "an answer"  # how messages name a well-formed label

    @staticmethod
    def parse_answer(text: str):
        raise NotImplementedError

    @classmethod
    def label_answer(cls, solution) -> str:
        """A row's solution as the answer text the policy writes (its canonical form: `3`, `B`);
        ValueError when it is not one."""
        value = cls.parse_answer(solution) if isinstance(solution, (str, int)) else None
        if value is None or isinstance(solution, bool):
            raise ValueError(f"solution {solution!r:.80} is not {cls.answer_kind} (reward {cls.name})")
        return cls.show(value, str(solution))

    @staticmethod
    def show(value, text: str) -> str:
        return str(value)

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
    answer_kind = "an integer count"


@register_reward("multiple_choice")
class MultipleChoiceReward(_SingleAnswerReward):
    """The answer is one letter A-E (case and `(B)` / `B.` forms accepted)."""

    parse_answer = staticmethod(parse_choice)
    answer_kind = "one letter A-E"


@register_reward("exact_answer")
class ExactAnswerReward(_SingleAnswerReward):
    """The answer equals the label: as numbers where both are numbers (math answers), else as
    text (case and spacing aside), e.g. `<answer>3/4</answer>` for the label `0.75`."""

    parse_answer = staticmethod(parse_exact)
    answer_kind = "an answer (a number or a text)"

    @staticmethod
    def show(value, text: str) -> str:
        return text.strip()  # as written: `3/4` and `0.75` score alike, and the row chose one
