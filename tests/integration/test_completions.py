"""visurf.evaluation.runner.completions: the evaluator's generation loop, greedy or sampled."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import smoke_config


def setup(tiny_dir):
    from visurf.data.sources import load_examples
    from visurf.models.loading import load_policy
    from visurf.rewards import build_reward

    cfg = smoke_config("model.source=path", f"model.path={tiny_dir}")
    examples = load_examples(cfg.data, int(cfg.model.frame), "test")[:3]
    model, processor = load_policy(cfg.model, path=tiny_dir)
    reward_fn = build_reward(cfg.reward.name, **dict(cfg.reward.kwargs))
    return model.eval(), processor, reward_fn, examples


def test_sampled_rows_come_grouped_by_example_and_greedy_is_the_evaluators(tiny_dir):
    from visurf.evaluation.runner import completions, evaluate

    model, processor, reward_fn, examples = setup(tiny_dir)
    torch.manual_seed(0)
    sampled = list(
        completions(
            model,
            processor,
            reward_fn,
            examples,
            batch_size=2,
            max_new_tokens=24,
            num_samples=3,
            temperature=1.5,
        )
    )
    assert [len(batch) for batch, _, _ in sampled] == [2, 1]
    for batch, texts, rewards in sampled:
        assert len(texts) == len(rewards) == 3 * len(batch)
        for i, (text, reward) in enumerate(zip(texts, rewards)):  # row i belongs to example i // 3
            e = batch[i // 3]
            assert reward == reward_fn(text, e.solution, e.width, e.height)

    # Greedy ignores num_samples, and its completions are the ones `evaluate` scores and logs.
    greedy = list(
        completions(model, processor, reward_fn, examples, batch_size=2, max_new_tokens=24, num_samples=5)
    )
    texts = [t for _, batch_texts, _ in greedy for t in batch_texts]
    _, logged = evaluate(
        model, processor, reward_fn, examples, batch_size=2, max_new_tokens=24, num_samples_logged=3
    )
    assert texts == [s["completion"] for s in logged]


def test_padding_batches_generate_and_yield_nothing(tiny_dir, monkeypatch):
    import visurf.evaluation.runner as runner
    from visurf.evaluation.runner import completions

    model, processor, reward_fn, examples = setup(tiny_dir)
    calls = []
    original = runner.sample

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(runner, "sample", counted)
    out = list(
        completions(model, processor, reward_fn, examples, batch_size=2, max_new_tokens=8, num_batches=4)
    )
    assert len(out) == 2 and len(calls) == 4


def test_bad_sampling_settings_are_refused_naming_them(tiny_dir):
    from visurf.evaluation.runner import completions

    model, processor, reward_fn, examples = setup(tiny_dir)
    for temperature, k in [(0.0, 2), (1.0, 0)]:
        with pytest.raises(ValueError, match="temperature > 0 and num_samples >= 1"):
            next(
                completions(
                    model,
                    processor,
                    reward_fn,
                    examples,
                    batch_size=2,
                    max_new_tokens=8,
                    num_samples=k,
                    temperature=temperature,
                )
            )
