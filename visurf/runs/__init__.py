"""A run on disk: its name (`naming`), its checkpoints (`checkpoints`) and its metrics log
(`metrics_log`)."""
