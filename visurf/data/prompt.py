"""The grounding prompt: a template, given by name or as text, with the question inserted.

`short` (PROMPT_TEMPLATE) is visurf's own, short on purpose: the tiny CPU model reads it on every
example. The others are the prompts the released checkpoints were trained and evaluated with
(docs/evaluation.md says where each comes from and how they differ):

- `seg_zero`: the user prompt Seg-Zero and VisionReasoner train with (`verl/utils/rl_dataset.py`
  in the Seg-Zero repository), the default of the real-model presets;
- `vision_reasoner`: VisionReasoner's inference prompt (`vision_reasoner_model.py`): the same text
  without the leading image line;
- `visurf`: ViSurf's inference prompt (`visurf_model.py`): as `vision_reasoner`, with spaces
  after the commas of the example coordinates.

Placeholders: `{problem}` is the problem with surrounding whitespace removed; `{question}` is the
problem as Seg-Zero inserts it, lower-cased with '.' stripped from both ends. `<image>` marks
where the image goes (visurf.models.processing); without it the image comes first. A problem
that holds `<image>` markers itself (`Which of <image> and <image> is larger?`) places the
images there, and the template's own marker is left out.
"""

from __future__ import annotations

import re

IMAGE = "<image>"

PROMPT_TEMPLATE = (
    "Find {problem}. Think in <think> </think>, then answer in <answer> </answer> "
    "with a JSON list of bbox_2d and point_2d."
)

# The reference prompt, sentence for sentence. The sentences run together with no space between
# them, as the reference's string concatenation leaves them; the example answer is a literal.
_REFERENCE_TEXT = (
    'Please find "{question}" with bboxs and points.'
    "Compare the difference between object(s) and find the most closely matched object(s)."
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags."
    "Output the bbox(es) and point(s) inside the interested object(s) in JSON format."
    "i.e., <think> thinking process here </think>"
    "<answer>{example}</answer>"
)
_EXAMPLE = '[{"bbox_2d": [10,100,200,210], "point_2d": [30,110]}, {"bbox_2d": [225,296,706,786], "point_2d": [302,410]}]'
_SPACED_EXAMPLE = (
    '[{"bbox_2d": [10, 100, 200, 210], "point_2d": [30, 110]}, '
    '{"bbox_2d": [225, 296, 706, 786], "point_2d": [302, 410]}]'
)

TEMPLATES = {
    "short": PROMPT_TEMPLATE,
    "seg_zero": IMAGE + "\n" + _REFERENCE_TEXT.replace("{example}", _EXAMPLE),
    "vision_reasoner": _REFERENCE_TEXT.replace("{example}", _EXAMPLE),
    "visurf": _REFERENCE_TEXT.replace("{example}", _SPACED_EXAMPLE),
}
_PLACEHOLDER = re.compile(r"\{problem\}|\{question\}")


def template_text(template: str) -> str:
    """The template of a name in TEMPLATES, or `template` itself when it has a placeholder."""
    if template in TEMPLATES:
        return TEMPLATES[template]
    if not isinstance(template, str) or not _PLACEHOLDER.search(template):
        raise ValueError(
            f"prompt template must be one of {sorted(TEMPLATES)} or text with the placeholder "
            f"{{problem}} or {{question}}, got {template!r}"
        )
    return template


def seg_zero_question(problem: str) -> str:
    """The problem as Seg-Zero puts it in its prompt: lower-cased, '.' stripped from both ends."""
    return problem.lower().strip(".")


def build_prompt(problem: str, template: str = PROMPT_TEMPLATE) -> str:
    # One pass over the template, so a problem that contains a placeholder is not expanded.
    values = {"{problem}": problem.strip(), "{question}": seg_zero_question(problem)}
    text = template_text(template)
    if IMAGE in problem:  # the problem places the images; the template's marker (and its newline) go
        text = text.replace(IMAGE + "\n", "").replace(IMAGE, "")
    return _PLACEHOLDER.sub(lambda match: values[match.group(0)], text)
