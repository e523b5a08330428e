"""summary.json records the machine a run computed on: its processor and thread count."""

from __future__ import annotations

import torch

from visurf.runs.summary import machine


def test_machine_names_the_processor_and_the_threads_in_use():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        record = machine()
        assert record["threads"] == 1
        assert isinstance(record["cpu"], str) and record["cpu"]
        assert record["gpu"] is None or isinstance(record["gpu"], str)
    finally:
        torch.set_num_threads(before)
