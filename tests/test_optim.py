"""The optimiser a run builds from its `optim` group (visurf.module.build_optimizer)."""

import pytest
import torch

from visurf.compose import compose_config
from visurf.module import build_optimizer


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
