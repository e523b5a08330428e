"""Evaluation metrics for grounding completions (box-level gIoU / cIoU / N-Acc and reward stats)."""

from visurf.evaluation.metrics import METRICS, AnswerMetrics, GroundingMetrics, metric_for

__all__ = ["METRICS", "AnswerMetrics", "GroundingMetrics", "metric_for"]
