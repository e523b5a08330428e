"""Rollout batches by number, so a resumed run sees exactly the batches it would have seen.

Batch `i` of the run is a deterministic function of (seed, i): the examples are walked in a
fresh seeded permutation per pass over the data. Each process takes its share of a global batch
(prompts are never split across processes, so a prompt's group stays together). The run is one
endless Lightning epoch; the sampler starts at the module's own count of finished batches
(restored from a checkpoint on resume), so nothing is replayed or skipped.

The examples may be SplitRows (visurf.data.rows: decoded per item, in DataLoader workers with
`data.num_workers`). A row whose image does not decode is, with `data.on_bad_row=skip`, replaced
by the next row of the permutation and its id handed on with the batch; with `error` its
BadRowError is handed on, for the module to raise where the command reports it (an exception
raised in a worker would reach the command as a traceback).
"""

from __future__ import annotations

import itertools

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from visurf.data.errors import DataError


class NumberedBatches(Dataset):
    def __init__(self, examples: list, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise ValueError(f"train.batch_size must be >= 1, got {batch_size}")
        self.examples = examples
        self.per_rank = batch_size
        self.global_batch = batch_size * world_size
        self.seed = seed
        self.rank = rank
        self._orders: dict[int, list[int]] = {}

    def _order(self, data_pass: int) -> list[int]:
        if data_pass not in self._orders:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + data_pass)
            self._orders = {data_pass: torch.randperm(len(self.examples), generator=g).tolist()}
        return self._orders[data_pass]

    def indices(self, batch_number: int) -> list[int]:
        """Example indices of this process's share of global batch `batch_number`."""
        n = len(self.examples)
        start = batch_number * self.global_batch + self.rank * self.per_rank
        return [self._order((start + k) // n)[(start + k) % n] for k in range(self.per_rank)]

    def __len__(self) -> int:  # batches are numbered without end; the sampler bounds an epoch
        return 2**62

    def __getitem__(self, batch_number: int) -> tuple[int, list, list[str], DataError | None]:
        """(batch number, examples, ids of rows skipped for a bad image, an error to raise)."""
        fetch = getattr(self.examples, "fetch", None)
        if fetch is None:
            return batch_number, [self.examples[i] for i in self.indices(batch_number)], [], None
        batch, bad = [], []
        try:
            for i in self.indices(batch_number):
                (example, bad_id), tries = fetch(i), 0
                while example is None:  # skipped: the next row of this pass's order instead
                    bad.append(bad_id)
                    tries += 1
                    if tries >= len(self.examples):
                        raise DataError("no row of the training split has an image that decodes")
                    example, bad_id = fetch(self._after(i, tries))
                batch.append(example)
        except DataError as err:  # BadRowError too
            return batch_number, [], bad, err
        return batch_number, batch, bad, None

    def _after(self, index: int, tries: int) -> int:
        """The example `tries` places after `index` in the current order (any pass's: a stand-in)."""
        order = next(iter(self._orders.values()))
        return order[(order.index(index) + tries) % len(order)]


class BatchNumbers(Sampler):
    """Batch numbers from `start()` on; `start` reads the count of batches already trained."""

    def __init__(self, start):
        self.start = start

    def __iter__(self):
        return itertools.count(self.start())

    def __len__(self) -> int:
        return 2**31


def _keep_list(batch):
    return batch


def train_loader(batches: NumberedBatches, start, num_workers: int = 0) -> DataLoader:
    """Batches in order from `start()`; `num_workers` processes decode them ahead of the step."""
    workers = {"num_workers": num_workers, "persistent_workers": True} if num_workers > 0 else {}
    return DataLoader(batches, sampler=BatchNumbers(start), batch_size=None, collate_fn=_keep_list, **workers)
