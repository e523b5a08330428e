"""A run on disk: its directory's layout (`rundir`), its name (`naming`), its checkpoints
(`checkpoints`), what a `checkpoint=` names (`resolve`), loading its weights (`weights`) and its
metrics log (`metrics_log`)."""
