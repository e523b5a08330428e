"""The stage contract (visurf/objectives/stage.py): the module provides it, the stages keep to it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from visurf.objectives.stage import Stage, StageHost, protocol_members

OBJECTIVES = Path(__file__).resolve().parents[2] / "visurf" / "objectives"
HOST_PARAMS = ("host", "module")  # the name a stage method gives its host


def host_uses(path: Path) -> set[str]:
    """Attributes read off a stage method's host parameter (`host.x`), anywhere in the file."""
    used = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in HOST_PARAMS
        ):
            used.add(node.attr)
    return used


@pytest.mark.parametrize("path", sorted(OBJECTIVES.glob("*.py")), ids=lambda p: p.name)
def test_stages_use_only_what_the_host_declares(path):
    extra = host_uses(path) - protocol_members(StageHost)
    assert not extra, f"{path.name} reaches into the module for {sorted(extra)}: declare them in StageHost"


def test_a_real_module_is_a_host_with_every_member(visurf_cache):
    from tests.integration.test_objectives import make_module

    _, module = make_module("objective=visurf")
    assert isinstance(module, StageHost)
    for name in protocol_members(StageHost):
        assert getattr(module, name) is not None, name


def signature_mismatches(protocol: type, implementation: type) -> list[str]:
    """The protocol's methods whose parameters (names, kinds, defaults) the implementation does not
    share: a host method called with an argument it does not take fails only at run time."""
    bad = []
    for name, member in vars(protocol).items():
        if name.startswith("_") or not callable(getattr(protocol, name)) or isinstance(member, property):
            continue
        want = inspect.signature(getattr(protocol, name))
        have = inspect.signature(getattr(implementation, name))
        strip = lambda sig: [  # noqa: E731
            (p.name, p.kind, p.default) for p in sig.parameters.values() if p.name not in ("self", "cls")
        ]
        if strip(want) != strip(have):
            bad.append(f"{name}{have} is not {name}{want}")
    return bad


def test_the_module_implements_the_host_methods_with_their_declared_signatures():
    from visurf.training.module import PostTrainModule

    assert not signature_mismatches(StageHost, PostTrainModule)


@pytest.mark.parametrize("kind", ["sft", "policy"])
def test_every_stage_kind_implements_the_stage_methods_with_their_declared_signatures(kind):
    from visurf.objectives import STAGES

    assert not signature_mismatches(Stage, STAGES.get(kind))


def test_the_signature_check_catches_a_drifted_parameter():
    class Drifted:
        def reference_logps(self, seqs):  # the temperature a policy stage passes is missing
            pass

        def to_device(self, inputs: dict) -> dict:
            pass

        def reset_reference(self) -> None:
            pass

    assert [m.split("(")[0] for m in signature_mismatches(StageHost, Drifted)] == ["reference_logps"]


def test_every_objective_is_built_from_stages_that_satisfy_the_protocol():
    from tests.conftest import smoke_config
    from visurf.objectives import build_schedule

    for objective in ("sft", "rlvr", "sft_rlvr", "visurf"):
        for stage in build_schedule(smoke_config(f"objective={objective}")).stages:
            assert isinstance(stage, Stage), type(stage)
            assert stage.kind in ("sft", "policy") and stage.passes >= 1


def test_a_host_missing_a_member_is_not_a_host():
    class Partial:
        policy = processor = reward_fn = None
        micro_batch_size = 0

    assert not isinstance(Partial(), StageHost)


def test_the_checker_catches_a_stage_that_reaches_further(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def loss(self, host, exp):\n    return host.trainer.optimizers, host.policy\n")
    assert host_uses(bad) - protocol_members(StageHost) == {"trainer"}
