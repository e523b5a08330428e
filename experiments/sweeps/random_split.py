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
import functools
import random

import yaml

from visurf.config.compose import compose_config
from visurf.data.synth_config import SynthConfig

# The pocket world's concepts, in a fixed order so that a seed always draws the same split.
COLORS = ("red", "blue", "green", "yellow", "purple")
SHAPES = ("circle", "square", "triangle")
RELATIONS = ("left of", "right of", "above", "below")
NUM_KNOWN = {"colors": 3, "shapes": 2, "relations": 2}
POOLS = {"colors": COLORS, "shapes": SHAPES, "relations": RELATIONS}


def known_sets(world) -> dict[str, set[str]]:
    """The known concepts of a world (a SynthConfig or a `data.synth` config), by kind."""
    return {kind: set(getattr(world, f"known_{kind}")) for kind in POOLS}


@functools.cache  # composing the config is the slow part of a draw
def earlier_splits() -> list[dict[str, set[str]]]:
    """The default split (SynthConfig's own lists) and the second (experiment=pocket_swapped's)."""
    swapped = compose_config(["experiment=pocket_swapped"]).data.synth
    return [known_sets(SynthConfig()), known_sets(swapped)]


def draw(seed: int) -> dict[str, list[str]]:
    """The `data.synth` concept lists of the first draw, from `seed`, that is neither earlier split."""
    rng, earlier = random.Random(seed), earlier_splits()
    while True:
        known = {kind: set(rng.sample(pool, NUM_KNOWN[kind])) for kind, pool in POOLS.items()}
        if known not in earlier:
            break
    lists = {}
    for kind, pool in POOLS.items():
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
