"""The training data of a run as a LightningDataModule: numbered rollout batches per process."""

from __future__ import annotations

import lightning as L

from visurf.data.batches import NumberedBatches, train_loader


class RolloutData(L.LightningDataModule):
    def __init__(self, examples, batch_size: int, seed: int, num_workers: int = 0):
        super().__init__()
        self.examples = examples  # a list of Examples, or SplitRows (decoded per batch)
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers

    def train_dataloader(self):
        batches = NumberedBatches(
            self.examples,
            self.batch_size,
            self.seed,
            rank=self.trainer.global_rank,
            world_size=self.trainer.world_size,
        )
        return train_loader(
            batches, start=lambda: self.trainer.lightning_module.batches_done, num_workers=self.num_workers
        )
