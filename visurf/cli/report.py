"""`python -m visurf.report SWEEP_DIR`: tables and plots of a sweep (`visurf.analysis.report`).

Writes report.md, report.csv and the curves' PNGs into SWEEP_DIR and prints report.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from visurf.analysis.report import write_report


def main(argv: list[str] | None = None) -> dict[str, Path]:
    parser = argparse.ArgumentParser(prog="python -m visurf.report", description=__doc__.splitlines()[0])
    parser.add_argument("sweep_dir", type=Path, help="a folder with runs (each with summary.json) below it")
    args = parser.parse_args(argv)
    try:
        paths = write_report(args.sweep_dir)
    except FileNotFoundError as err:
        parser.exit(2, f"visurf.report: {err}\n")
    print(paths["markdown"].read_text())
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return paths


if __name__ == "__main__":
    main()
