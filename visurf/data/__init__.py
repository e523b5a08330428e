"""Data: loading any ViSurf-schema dataset, and the synthetic grounding world (`visurf.data.synth`)."""

# synth is not imported here, so `python -m visurf.data.synth` runs it exactly once.
from visurf.data.dataset import (
    BadRowError,
    DataError,
    Example,
    collate_examples,
    prepare_dataset,
    prepare_example,
)
from visurf.data.loading import load_split
from visurf.data.prompt import PROMPT_TEMPLATE, build_prompt

__all__ = [
    "PROMPT_TEMPLATE",
    "BadRowError",
    "DataError",
    "Example",
    "build_prompt",
    "collate_examples",
    "load_split",
    "prepare_dataset",
    "prepare_example",
]
