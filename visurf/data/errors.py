"""Errors of the data layer: a dataset that cannot be used, and one malformed row of it."""

from __future__ import annotations


class DataError(ValueError):
    """A dataset that cannot be used (no usable rows, unknown file format, ...)."""


class BadRowError(DataError):
    """A malformed dataset row; the message names the row id and what is wrong."""

    def __init__(self, row_id: str, reason: str):
        self.row_id, self.reason = row_id, reason
        super().__init__(f"bad row {row_id!r}: {reason}")

    def __reduce__(self):  # picklable across DataLoader workers
        return type(self), (self.row_id, self.reason)
