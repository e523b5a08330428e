"""How a run trains: the LightningModule (`module`), the optimiser (`optim`), Lightning's Trainer
(`trainer`), the distributed strategies (`distributed`) and what a run prints (`console`)."""
