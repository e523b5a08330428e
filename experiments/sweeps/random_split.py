"""A concept split drawn at random, so that a comparison is also checked on a world nobody chose.

    python experiments/sweeps/random_split.py [--seed 0]

Draws which of the pocket world's concepts the base knows and which are novel: the same five
colours, three shapes and four relations as the default world, in the same numbers (three known
colours and two novel, two known shapes and one novel, two known relations and two novel), so
the world is as hard to read; only the roles change. Draws that give the default split or the
second split (`experiment=pocket_swapped`) are skipped, so the split is a new one. Prints the
`data.synth` lists as YAML, which `experiments/conf/experiment/pocket_novel_random.yaml` holds.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
# The pocket world's concepts, in a fixed order so that a seed always draws the same split.
COLORS = ("red", "blue", "green", "yellow", "purple")
SHAPES = ("circle", "square", "triangle")
RELATIONS = ("left of", "right of", "above", "below")
NUM_KNOWN = {"colors": 3, "shapes": 2, "relations": 2}
DEFAULT = {
    "colors": {"red", "blue", "green"},
    "shapes": {"circle", "square"},
    "relations": {"left of", "above"},
}
SWAPPED = {
    "colors": {"blue", "yellow", "purple"},
    "shapes": {"square", "triangle"},
    "relations": {"right of", "below"},
}


def draw(seed: int) -> dict[str, list[str]]:
    """The `data.synth` concept lists of the first draw, from `seed`, that is neither earlier split."""
    rng = random.Random(seed)
    pools = {"colors": COLORS, "shapes": SHAPES, "relations": RELATIONS}
    while True:
        known = {kind: set(rng.sample(pool, NUM_KNOWN[kind])) for kind, pool in pools.items()}
        if known not in (DEFAULT, SWAPPED):
            break
    lists = {}
    for kind, pool in pools.items():
        lists[f"known_{kind}"] = [c for c in pool if c in known[kind]]
        lists[f"novel_{kind}"] = [c for c in pool if c not in known[kind]]
    return lists


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="the draw's seed (default 0, the committed split's)"
    )
    args = parser.parse_args(argv)
    print(
        yaml.safe_dump({"data": {"synth": draw(args.seed)}}, sort_keys=False, default_flow_style=None), end=""
    )


if __name__ == "__main__":
    main()
