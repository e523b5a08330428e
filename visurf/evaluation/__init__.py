"""Evaluation metrics for grounding completions (box-level gIoU / cIoU / N-Acc and reward stats)."""

from visurf.evaluation.metrics import GroundingMetrics

__all__ = ["GroundingMetrics"]
