"""The grounding prompt. Short on purpose: the tiny CPU model reads it on every example."""

from __future__ import annotations

PROMPT_TEMPLATE = (
    "Find {problem}. Think in <think> </think>, then answer in <answer> </answer> "
    "with a JSON list of bbox_2d and point_2d."
)


def build_prompt(problem: str, template: str = PROMPT_TEMPLATE) -> str:
    if "{problem}" not in template:
        raise ValueError(f"prompt template must contain the placeholder {{problem}}, got {template!r}")
    # replace, not format: a template may contain other braces (e.g. a JSON example).
    return template.replace("{problem}", problem.strip())
