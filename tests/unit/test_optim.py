"""The optimiser a run builds from its `optim` group (visurf.training.module.build_optimizer)."""

import pytest
import torch

from visurf.config.compose import compose_config
from visurf.training.module import build_optimizer, lr_factor


def _params():
    return [torch.nn.Parameter(torch.ones(3))]


def test_default_is_adamw_with_the_configured_betas():
    o = compose_config([]).optim
    opt = build_optimizer(_params(), o)
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.defaults["betas"] == tuple(o.betas) and opt.defaults["lr"] == o.lr


def test_sgd_steps_in_proportion_to_the_gradient():
    o = compose_config(["optim.name=sgd", "optim.lr=0.1", "optim.momentum=0.5"]).optim
    params = [torch.nn.Parameter(torch.zeros(2))]
    opt = build_optimizer(params, o)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.5
    params[0].grad = torch.tensor([1.0, 0.01])
    opt.step()
    # SGD: -lr * g per parameter (AdamW would move both by about lr).
    assert torch.allclose(params[0].detach(), torch.tensor([-0.1, -0.001]))


def test_unknown_optimizer_is_refused_by_name():
    o = compose_config(["optim.name=lion"]).optim
    with pytest.raises(ValueError, match="optim.name"):
        build_optimizer(_params(), o)


def test_cosine_decays_to_its_floor_after_warmup():
    factor = lr_factor(warmup=2, total=12, kind="cosine", floor=0.1)
    assert factor(0) == pytest.approx(1 / 3) and factor(1) == pytest.approx(2 / 3)
    assert factor(2) == pytest.approx(1.0)  # the peak, where the decay starts
    assert factor(7) == pytest.approx(0.1 + 0.9 * 0.5)  # half way: half way between peak and floor
    assert factor(12) == pytest.approx(0.1) and factor(50) == pytest.approx(0.1)
    assert lr_factor(2, 12, "cosine")(12) == pytest.approx(0.0)  # the default floor is 0
    assert lr_factor(2, 12, "constant", floor=0.1)(12) == 1.0  # a floor is cosine's alone


def test_base_recipe_passes_its_floor_and_optional_settings_into_the_cache_key():
    from visurf.models.base import base_path
    from visurf.recipes.base_model import base_config

    model = compose_config(["experiment=pocket"]).model
    # the default base ends its cosine at a floor (conf/model/tiny_base.yaml says why)
    assert base_config(model).optim.min_lr_ratio == 0.3 and base_config(model).optim.schedule == "cosine"
    assert base_config(model).optim.weight_decay == 0.0  # absent from the preset: the recipe's default
    for override, option in (
        ("model.base.min_lr_ratio=0.1", "min_lr_ratio"),
        ("+model.base.weight_decay=0.1", "weight_decay"),
    ):
        changed = compose_config(["experiment=pocket", override]).model
        assert base_config(changed).optim[option] == 0.1
        assert base_path(changed) != base_path(model)
