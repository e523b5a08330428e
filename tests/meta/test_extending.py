"""docs/extending.md: every worked example, written out and run exactly as the page shows it."""

from __future__ import annotations

import re
import shlex

import pandas as pd
import pytest

from visurf.config.paths import ROOT

PAGE = ROOT / "docs" / "extending.md"
BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)


def examples() -> dict[str, tuple[str, list[str]]]:
    """{file name: (its code, the overrides of the command shown after it)}."""
    blocks = BLOCK.findall(PAGE.read_text())
    out = {}
    for (lang, code), (_, command) in zip(blocks, blocks[1:]):
        if lang != "python":
            continue
        name = code.splitlines()[0].removeprefix("# ").strip()
        words = shlex.split(command.replace("\\\n", " "))
        assert words[:3] == ["python", "-m", "visurf.run"], command
        out[name] = (code, words[3:])
    return out


def test_the_page_has_an_example_of_each_extension_point():
    assert set(examples()) == {"cap.py", "rank.py", "sft_think.py", "brevity.py"}


@pytest.fixture(autouse=True)
def forget_what_the_examples_register():
    """Each example registers a name for the rest of the process: forgotten after its test, so
    the suite's checks of every registered component see the package's own."""
    from visurf.algorithms import ADVANTAGE_ESTIMATORS
    from visurf.objectives import STAGES
    from visurf.reward_control import STRATEGIES
    from visurf.rewards import REWARDS

    registries = (ADVANTAGE_ESTIMATORS, STAGES, STRATEGIES, REWARDS)
    before = [set(r.names()) for r in registries]
    yield
    for registry, names in zip(registries, before):
        for name in set(registry.names()) - names:
            registry.remove(name)


def run_example(name: str, tmp_path, *extra: str):
    from visurf.config.compose import compose_config
    from visurf.config.validate import validate
    from visurf.recipes.train import train

    code, overrides = examples()[name]
    (tmp_path / name).write_text(code)
    overrides = [o.replace(f"[{name}]", f"[{tmp_path / name}]") for o in overrides]
    cfg = compose_config(["experiment=smoke", *overrides, *extra])
    validate(cfg)  # imports the plugin: its name is registered before the rest is checked
    summary = train(cfg, tmp_path / "run")
    return cfg, summary, pd.read_csv(tmp_path / "run" / "metrics.csv")


def test_a_strategy_from_a_file_caps_the_labels_advantage(tmp_path):
    from visurf.reward_control import RewardControl

    cfg, summary, metrics = run_example("cap.py", tmp_path, "trainer.max_steps=3")
    control = RewardControl.from_config(cfg.reward_control)
    assert control.names == ("align", "no_think", "smooth", "cap") and control.strategies[-1].at == 0.5
    assert summary["steps"] == 3
    assert (metrics["train/label/advantage"].dropna() <= 0.5 + 1e-6).all()


def test_an_estimator_from_a_file_forms_the_advantages(tmp_path):
    import torch

    from visurf.objectives import build_schedule

    cfg, summary, _ = run_example("rank.py", tmp_path)
    stage = build_schedule(cfg).stages[0]
    assert stage.estimator.__name__ == "rank_advantages" and summary["steps"] == 2
    ranks = stage.estimator(torch.tensor([[0.0, 3.0, 3.0, 1.0], [2.0, 2.0, 2.0, 2.0]]))
    torch.testing.assert_close(ranks, torch.tensor([[-1.0, 2 / 3, 2 / 3, -1 / 3], [0.0, 0.0, 0.0, 0.0]]))


def test_a_stage_kind_from_a_file_trains_its_objective(tmp_path):
    from visurf.objectives import build_schedule
    from visurf.training.console import run_header

    cfg, summary, metrics = run_example("sft_think.py", tmp_path)
    stage = build_schedule(cfg).stages[0]
    assert type(stage).__name__ == "SFTWithThink" and stage.use_think
    assert "SFT with think texts" in run_header(cfg, tmp_path)
    assert summary["steps"] == 2 and metrics["train/sft_nll"].notna().any()


def test_a_reward_from_a_file_is_scored_and_logged(tmp_path):
    cfg, summary, metrics = run_example("brevity.py", tmp_path, "objective=rlvr")
    assert cfg.reward.kwargs.words == 30
    assert metrics["train/reward/brevity"].notna().any() and summary["steps"] == 2


def test_a_plugin_that_cannot_be_imported_is_named_in_one_line(tmp_path):
    from visurf.config.compose import compose_config
    from visurf.config.validate import ConfigError, validate

    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('my bug')\n")
    with pytest.raises(
        ConfigError, match=r"plugins: '.*broken.py' could not be imported: RuntimeError: my bug"
    ):
        validate(compose_config([f"plugins=[{broken}]"]))
    with pytest.raises(ConfigError, match="no such file"):
        validate(compose_config([f"plugins=[{tmp_path / 'absent.py'}]"]))
