"""Time to the first training batch and peak resident memory: the eager data path against the lazy one.

    OMP_NUM_THREADS=1 python experiments/bench/bench_data.py [--rows 7300] [--lazy-rows 1000,7300]
        [--eager-rows 250,500,1000] [--out /tmp/bench_data]

Builds (once, under --out) a dataset of --rows rows in the published training sets' convention
(visurf.data.seg_zero_replica: images stored at 840 x 840 as PNG, labels in that frame, the
original size in img_width / img_height) as a `save_to_disk` DatasetDict, then measures, each
in a fresh process, for the first N rows of its train split read with `data=local`:

- eager: the path runs took before: every row decoded and resized to the model frame (840) up
  front into a list of Examples (`visurf.data.dataset.prepare_dataset`), then batch 0;
- lazy: the path runs take now: `visurf.data.sources.open_rows` (the cheap checks over every
  row, no image decoded), the token-length check over the rows' text (`drop_overlong`, with the
  tiny model's processor), then batch 0 of 8 prompts decoded through the DataLoader
  (`visurf.data.batches`), as the first training step receives it.

Time is from the start of loading to batch 0 in hand, and from the process's launch (its
imports and the processor's load included); the step's model compute, the same for both paths,
is left out. Memory is the growth of the
peak resident set (VmHWM) over the resident set after the imports. The eager path holds
840 x 840 x 3 bytes a row, so at full size it needs about 15 GiB: give it fewer rows
(--eager-rows) and read its growth per row. Prints one table and the lazy path's ratios to the
eager one at the largest eager row count. Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

MiB = 2**20
FRAME = 840
BATCH = 8


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def build(out: Path, rows: int) -> Path:
    """The dataset, written once: train (all rows) and test (the last 64) of a DatasetDict."""
    import datasets

    from visurf.data.seg_zero_replica import replica_dataset

    folder = out / f"published_{rows}_size{FRAME}"
    if (folder / "dataset_dict.json").is_file():
        return folder
    start = time.time()
    train = replica_dataset(rows, stored=FRAME, cache_dir=out / "cache")
    datasets.DatasetDict({"train": train, "test": train.select(range(max(0, rows - 64), rows))}).save_to_disk(
        str(folder)
    )
    print(f"built {rows} rows at {FRAME} px in {time.time() - start:.0f} s: {folder}", flush=True)
    return folder


def measure(mode: str, folder: Path, rows: int) -> dict:
    """One path in this process (run by `--measure`): seconds to batch 0, resident growth."""
    from omegaconf import OmegaConf

    from visurf.data.batches import NumberedBatches, train_loader
    from visurf.data.dataset import prepare_dataset
    from visurf.data.lengths import drop_overlong
    from visurf.data.prompt import TEMPLATES
    from visurf.data.sources import open_rows, open_split
    from visurf.models.loading import tiny_dir
    from visurf.models.processing import VLProcessor
    from visurf.recipes.train import longest_label

    processor = VLProcessor.from_pretrained(tiny_dir(112))
    cfg = OmegaConf.create(
        {
            "source": "local",
            "path": str(folder),
            "image_root": None,
            "on_bad_row": "error",
            "prompt_template": "seg_zero",
        }
    )
    split = f"train[:{rows}]"
    before = _status_kib("VmRSS")
    start = time.time()
    if mode == "eager":
        examples, _ = prepare_dataset(open_split(cfg, split), FRAME, TEMPLATES["seg_zero"])
        examples = drop_overlong(examples, processor, 32768, longest_label)
    else:
        examples = drop_overlong(open_rows(cfg, FRAME, split), processor, 32768, longest_label)
    loader = train_loader(NumberedBatches(examples, BATCH, seed=0), start=lambda: 0)
    batch = next(iter(loader))
    seconds = time.time() - start
    assert len(batch[1]) == BATCH and batch[1][0].image.size == (FRAME, FRAME)
    peak = _status_kib("VmHWM")
    return {
        "mode": mode,
        "rows": rows,
        "seconds": round(seconds, 2),
        "growth_mib": round((peak - before) / 1024, 1),
        "at": time.time(),
    }


def run(mode: str, folder: Path, rows: int) -> dict:
    launched = time.time()
    out = subprocess.run(
        [sys.executable, __file__, "--measure", mode, "--data", str(folder), "--rows", str(rows)],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if out.returncode != 0:
        raise SystemExit(f"{mode} at {rows} rows failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["from_launch"] = round(result.pop("at") - launched, 2)  # imports and processor included
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=7300, help="rows of the dataset built")
    parser.add_argument("--lazy-rows", default="1000,7300")
    parser.add_argument("--eager-rows", default="250,500,1000")
    parser.add_argument("--out", default="/tmp/bench_data")
    parser.add_argument("--measure", choices=["eager", "lazy"], help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, Path(args.data), args.rows)))
        return
    folder = build(Path(args.out), args.rows)
    results = [run("eager", folder, int(n)) for n in args.eager_rows.split(",") if n]
    results += [run("lazy", folder, int(n)) for n in args.lazy_rows.split(",") if n]
    print(f"\n{'path':<6} {'rows':>6} {'to batch 0 (s)':>15} {'from launch (s)':>16} {'growth (MiB)':>13}")
    for r in results:
        print(
            f"{r['mode']:<6} {r['rows']:>6} {r['seconds']:>15.2f} {r['from_launch']:>16.2f} {r['growth_mib']:>13.1f}"
        )
    for mode in ("eager", "lazy"):
        runs = sorted((r for r in results if r["mode"] == mode), key=lambda r: r["rows"])
        if len(runs) >= 2:  # growth per row between the two largest counts: fixed costs cancel
            a, b = runs[-2], runs[-1]
            slope = (b["growth_mib"] - a["growth_mib"]) / (b["rows"] - a["rows"])
            print(f"{mode}: {slope:.3f} MiB a row (between {a['rows']} and {b['rows']} rows)", end="")
            if mode == "eager":
                n = args.rows
                print(
                    f", so about {(a['growth_mib'] + slope * (n - a['rows'])) / 1024:.1f} GiB at {n} rows",
                    end="",
                )
            print()
    eager = max((r for r in results if r["mode"] == "eager"), key=lambda r: r["rows"], default=None)
    lazy = max((r for r in results if r["mode"] == "lazy"), key=lambda r: r["rows"], default=None)
    if eager and lazy:
        print(
            f"lazy at {lazy['rows']} rows over eager at {eager['rows']} rows: memory "
            f"{lazy['growth_mib'] / eager['growth_mib']:.3f}, time {lazy['seconds'] / eager['seconds']:.2f}"
        )


if __name__ == "__main__":
    main()
