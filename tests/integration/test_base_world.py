"""The embedded base model learns the run's own synthetic world, cached per world."""

from __future__ import annotations

from omegaconf import OmegaConf

from visurf.config.compose import compose_config
from visurf.io.cache import recipe_key
from visurf.models.base import base_path, base_world
from visurf.recipes.base_model import base_config, base_dir

SHAPES = "+data.synth.known_shapes=[square,diamond]"


def test_the_base_is_keyed_by_its_recipe_and_its_whole_world():
    model = compose_config([]).model
    recipe = {"frame": 112, **OmegaConf.to_container(model.base, resolve=True), "world": base_world(model)}
    assert base_path(model).name == f"base-{recipe_key(recipe)}"
    world = base_world(model)
    assert world["grid"] == 4 and world["known_shapes"] == ["circle", "square"]  # defaults filled in
    assert not {"num_train", "num_test", "num_val", "seed", "novel_fraction"} & set(world)
    # Fields the base recipe sets itself (how many rows, the seed) do not follow the run.
    same = compose_config(["data.synth.num_train=10", "data.synth.seed=3", "data.synth.novel_fraction=0.2"])
    assert base_path(same.model) == base_path(model)
    # Naming a field at its default value is the same world.
    assert base_path(compose_config(["+data.synth.known_shapes=[circle,square]"]).model) == base_path(model)
    # data=local has no synthetic world: its base learns the default world (in an entry of its own).
    local = compose_config(["data=local", "data.path=/nowhere"]).model
    assert base_world(local) is None
    from visurf.data.synth_config import world_config

    def world(cfg):
        return world_config(OmegaConf.to_container(cfg.data.synth, resolve=True))

    assert world(base_config(local)) == world(base_config(model))


def test_a_changed_world_gets_its_own_base_trained_on_that_world():
    default, changed = compose_config([]).model, compose_config([SHAPES, "data.synth.grid=3"]).model
    changes = {k: v for k, v in base_world(changed).items() if base_world(default)[k] != v}
    assert changes == {"grid": 3, "known_shapes": ["square", "diamond"]}
    assert base_path(changed) != base_path(default)
    synth = base_config(changed).data.synth
    assert list(synth.known_shapes) == ["square", "diamond"] and synth.grid == 3
    assert synth.novel_fraction == 0.0 and synth.num_train == 4000  # the base recipe's own
    assert base_config(changed).model.freeze_vision_tower is True  # the recipe's, passed on
    off = compose_config(["model.base.freeze_vision_tower=false"]).model
    assert base_config(off).model.freeze_vision_tower is False and base_path(off) != base_path(default)


def test_a_base_built_for_a_changed_world_is_trained_on_its_rows():
    overrides = [SHAPES, "model.base.steps=1", "model.base.batch_size=2", "model.base.num_train=8"]
    model = compose_config(overrides).model
    out = base_dir(model)
    assert (out / "config.json").is_file() and out == base_path(model)
    run_cfg = OmegaConf.load(out.with_name(out.name + "-run") / "config.yaml")
    assert list(run_cfg.data.synth.known_shapes) == ["square", "diamond"]
    from visurf.data.sources import load_examples

    rows = load_examples(run_cfg.data, 112, "train")
    thinks = " ".join(e.think for e in rows)
    assert "diamond" in thinks and "circle" not in thinks
    # The recipe freezes the vision tower: the base's tower is the tiny model's, bit for bit.
    from safetensors.torch import load_file

    from visurf.models.loading import tiny_dir

    base, tiny = load_file(out / "model.safetensors"), load_file(tiny_dir(112) / "model.safetensors")
    visual = [k for k in tiny if ".visual." in k or k.startswith("visual.")]
    assert visual and all(base[k].equal(tiny[k]) for k in visual)
    assert any(not base[k].equal(tiny[k]) for k in tiny if k not in visual)  # the language model trained


def test_the_swapped_pocket_preset_trades_the_concept_roles_and_keeps_the_pocket_settings():
    from visurf.data.synth_config import SynthConfig

    pocket = compose_config(["experiment=pocket", "objective=visurf"])
    swapped = compose_config(["experiment=pocket_swapped", "objective=visurf"])
    default = SynthConfig()
    world = swapped.data.synth
    # Every default-novel colour, shape and relation is known in the swapped world; red, green,
    # circles and the default-known relations are novel there.
    assert set(default.novel_colors + default.novel_shapes + default.novel_relations) <= set(
        world.known_colors + world.known_shapes + world.known_relations
    )
    assert set(world.novel_colors + world.novel_shapes + world.novel_relations) <= set(
        default.known_colors + default.known_shapes + default.known_relations
    )
    SynthConfig(**base_world(swapped.model))  # a valid world
    for key in (
        "optim.lr",
        "objective.beta",
        "trainer.max_steps",
        "eval.every_n_batches",
        "train.batch_size",
    ):
        assert OmegaConf.select(swapped, key) == OmegaConf.select(pocket, key), key
    assert base_path(swapped.model) != base_path(pocket.model)
    assert list(base_config(swapped.model).data.synth.novel_shapes) == [
        "circle"
    ]  # the base learns this world


def test_the_novel_pocket_preset_keeps_the_pockets_base_and_settings_and_asks_only_novel_questions():

    from visurf.config.validate import validate

    for objective in ("sft", "rlvr", "sft_rlvr", "visurf"):
        pocket = compose_config(["experiment=pocket", f"objective={objective}"])
        novel = compose_config(["experiment=pocket_novel", f"objective={objective}"])
        validate(novel)
        # the same base: the novel share is the post-training data's, not the base's world
        assert base_path(novel.model) == base_path(pocket.model), objective
        for key in ("optim.lr", "objective.beta", "train.batch_size", "rollout.num_generations"):
            assert OmegaConf.select(novel, key) == OmegaConf.select(pocket, key), (objective, key)
        assert novel.data.synth.novel_fraction == 1.0 and novel.trainer.max_steps == 480
        assert novel.data.synth.num_test == 3500 and novel.eval.every_n_batches == 0


def test_the_novel_presets_on_other_splits_change_only_the_world_and_get_bases_of_their_own():
    from visurf.config.validate import validate

    default = compose_config(["experiment=pocket_novel", "objective=visurf"])
    swapped = compose_config(["experiment=pocket_swapped", "objective=visurf"])
    bases = {base_path(default.model)}
    for preset in ("pocket_novel_swapped", "pocket_novel_random"):
        cfg = compose_config([f"experiment={preset}", "objective=visurf"])
        validate(cfg)
        for key in (
            "optim.lr",
            "objective.beta",
            "trainer.max_steps",
            "data.synth.novel_fraction",
            "data.synth.num_test",
        ):
            assert OmegaConf.select(cfg, key) == OmegaConf.select(default, key), (preset, key)
        bases.add(base_path(cfg.model))
    assert base_path(compose_config(["experiment=pocket_novel_swapped"]).model) == base_path(swapped.model)
    assert len(bases) == 3  # the random split's base is neither of the others
