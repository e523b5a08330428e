"""Benchmark evaluations in one table, as the papers give them: a row per benchmark, a column per metric.

    python -m visurf.analysis.benchmarks present ID_OR_DIR ...   # prints the ones that are here
    python -m visurf.analysis.benchmarks table DIR               # DIR/*.json -> DIR/table.md, table.csv

`table` reads the results `visurf.eval out=NAME.json` wrote on evaluation sets (docs/evaluation.md):
gIoU, cIoU, box hit rate at IoU 0.5 and N-Acc in percent, one decimal, with the number of
samples. A result without a segmenter has box-level gIoU and cIoU: its row says `box` in the
`masks` column and the table's note says so. A ratio without a denominator (N-Acc on a set
without no-target samples) is '—'.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

# The authors' evaluation sets on the hub, in the order their tables give them.
BENCHMARKS = (
    "Ricky06662/ReasonSeg_val",
    "Ricky06662/ReasonSeg_test",
    "Ricky06662/refcoco_val",
    "Ricky06662/refcoco_testA",
    "Ricky06662/refcocoplus_val",
    "Ricky06662/refcocoplus_testA",
    "Ricky06662/refcocog_val",
    "Ricky06662/refcocog_test",
    "Ricky06662/refcoco_val_all",
    "Ricky06662/refcoco_testA_all",
    "Ricky06662/refcocoplus_val_all",
    "Ricky06662/refcocoplus_testA_all",
    "Ricky06662/refcocog_val_all",
    "Ricky06662/refcocog_test_all",
    "Ricky06662/grefcoco_val_all",
)
COLUMNS = (("gIoU", "giou"), ("cIoU", "ciou"), ("hit@0.5", "box_hit"), ("N-Acc", "n_acc"))


def name_of(entry: str) -> str:
    """A benchmark's short name: the last part of its hub id or folder."""
    return Path(entry.rstrip("/")).name


def locate(entry: str, hub_cache=None) -> tuple[str, str] | None:
    """("dir", folder) or ("hub", id) for an evaluation set that is here, else None.

    An existing folder is taken as it is; anything else is a hub id, present when the local HF
    cache has a snapshot of it (nothing is downloaded).
    """
    if Path(entry).expanduser().is_dir():
        return "dir", str(Path(entry).expanduser())
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(entry, repo_type="dataset", local_files_only=True, cache_dir=hub_cache)
    except Exception:  # not in the cache (or not a repository id at all)
        return None
    return "hub", entry


def _order(name: str) -> tuple:
    names = [name_of(b) for b in BENCHMARKS]
    return (names.index(name), "") if name in names else (len(names), name)


def rows(results: dict[str, dict]) -> list[dict]:
    """One row per result: the benchmark, its metrics in percent, masks (sam2 | box), samples."""
    out = []
    for name in sorted(results, key=_order):
        result = results[name]
        box = result.get("level") == "box"
        row = {"benchmark": name}
        for label, key in COLUMNS:
            value = result.get(f"box_{key}" if box and key in ("giou", "ciou") else key)
            row[label] = None if value is None else round(100 * value, 1)
        row["masks"] = "box" if box else "sam2"
        row["samples"] = result.get("num_examples")
        out.append(row)
    return out


def markdown(table: list[dict]) -> str:
    headers = ["benchmark", *(label for label, _ in COLUMNS), "masks", "samples"]
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    for row in table:
        cells = [
            "—" if row[h] is None else (f"{row[h]:.1f}" if isinstance(row[h], float) else str(row[h]))
            for h in headers
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if any(row["masks"] == "box" for row in table):
        lines += ["", "masks `box`: no segmenter; gIoU and cIoU are box-level (box regions, not SAM2 masks)."]
    return "\n".join(lines) + "\n"


def write_table(folder: Path) -> str:
    """Read folder/*.json (visurf.eval results on evaluation sets), write table.md and table.csv."""
    folder = Path(folder)
    results = {}
    for path in sorted(folder.glob("*.json")):
        result = json.loads(path.read_text())
        if "box_hit" in result:  # an evaluation-set result, not some other file
            results[path.stem] = result
    if not results:
        raise FileNotFoundError(f"no evaluation-set results (visurf.eval out=NAME.json) in {folder}")
    table = rows(results)
    text = markdown(table)
    (folder / "table.md").write_text(text)
    with open(folder / "table.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    return text


def main(argv: list[str] | None = None) -> None:
    # Bad input ends with one line and status 2, as every command; the heavy imports of
    # visurf.cli.args.reported are left out, so that `present` answers in a moment.
    from visurf.cli.args import UsageError, fail

    argv = sys.argv[1:] if argv is None else argv
    try:
        if len(argv) >= 1 and argv[0] == "present":
            for entry in argv[1:] or BENCHMARKS:
                found = locate(entry)
                if found:
                    print(*found)
        elif len(argv) == 2 and argv[0] == "table":
            print(write_table(Path(argv[1])), end="")
        else:
            raise UsageError(
                "usage: python -m visurf.analysis.benchmarks present [ID_OR_DIR ...] | table DIR"
            )
    except (UsageError, FileNotFoundError) as err:
        fail("visurf.analysis.benchmarks", err)


if __name__ == "__main__":
    main()
