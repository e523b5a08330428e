"""experiments/sweeps/random_split.py: the seeded draw of a new concept split."""

from __future__ import annotations

import random

import yaml

from experiments.sweeps import random_split as script
from visurf.config.compose import compose_config
from visurf.data.synth_config import world_config

KINDS = script.POOLS
EARLIER = script.earlier_splits()


def as_sets(lists: dict) -> dict[str, set[str]]:
    return {kind: set(lists[f"known_{kind}"]) for kind in KINDS}


def test_a_draw_splits_every_concept_list_in_the_default_worlds_numbers():
    for seed in range(50):
        lists = script.draw(seed)
        for kind, pool in KINDS.items():
            known, novel = lists[f"known_{kind}"], lists[f"novel_{kind}"]
            assert sorted(known + novel) == sorted(pool) and not set(known) & set(novel)
            assert len(known) == script.NUM_KNOWN[kind]
        assert as_sets(lists) not in EARLIER
        assert script.draw(seed) == lists  # the seed fixes the split


def test_a_draw_that_repeats_an_earlier_split_is_skipped():
    def first_draw(seed):
        rng = random.Random(seed)
        return {kind: set(rng.sample(pool, script.NUM_KNOWN[kind])) for kind, pool in KINDS.items()}

    seed = next(s for s in range(10_000) if first_draw(s) in EARLIER)
    assert as_sets(script.draw(seed)) not in EARLIER


def test_the_committed_preset_holds_the_seed_0_draw_and_the_world_is_valid(capsys):
    script.main(["--seed", "0"])
    printed = yaml.safe_load(capsys.readouterr().out)["data"]["synth"]
    assert printed == script.draw(0)
    cfg = compose_config(["experiment=pocket_novel_random", "objective=visurf"])
    for field, names in printed.items():
        assert list(cfg.data.synth[field]) == names, field
    world_config(dict(cfg.data.synth))  # raises if the world cannot generate data
    assert cfg.data.synth.novel_fraction == 1.0 and cfg.trainer.max_steps == 480
