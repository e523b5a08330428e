"""The commands (`python -m visurf.X`): run, eval, export, report, compare."""
