"""experiments/probes/loss_weight_by_group.py: each row's weight in the loss under each aggregation."""

from __future__ import annotations

import pytest
import torch

from experiments.probes import loss_weight_by_group as probe


def _mask(lengths: list[int], width: int = 30) -> torch.Tensor:
    return torch.stack([(torch.arange(width) < n).long() for n in lengths])


def test_row_weights_match_the_aggregations_by_hand():
    mask = _mask([5, 25])  # a `[]` label against a box label
    grpo = probe.row_weights(mask, "grpo")
    dapo = probe.row_weights(mask, "dapo")
    # grpo: each row 1/N_rows whatever its length; dapo: n_row / N_tokens
    assert grpo.tolist() == pytest.approx([0.5, 0.5])
    assert dapo.tolist() == pytest.approx([5 / 30, 25 / 30])


def test_tally_bins_shares_and_token_weights():
    mask = _mask([5, 25, 10])
    batch = {
        "adv": torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64),
        "mask": mask,
        "bins": [
            ("non_object", "label", "empty"),
            ("known", "label", "boxes"),
            ("known", "rollout", "boxes"),
        ],
        "w": {m: probe.row_weights(mask, m) for m in ("grpo", "dapo")},
    }
    out = probe.tally([batch], ["grpo", "dapo"])
    empty = out["non_object/label/empty"]
    assert empty["rows"] == 1 and empty["tokens"] == 5
    # grpo: |A|·w = 1/3, 1/3, 2/3 of a total 4/3
    assert empty["grpo"]["push_share"] == pytest.approx(0.25)
    assert empty["grpo"]["net_push"] == pytest.approx(1 / 3)
    # a token of the 5-token row weighs (1/3)/5 against dapo's 1/40: 40/15
    assert empty["grpo"]["token_weight"] == pytest.approx(40 / 15)
    # dapo: |A|·w = 5/40, 25/40, 20/40 of a total 50/40; every token weighs 1
    assert empty["dapo"]["push_share"] == pytest.approx(0.1)
    assert empty["dapo"]["token_weight"] == pytest.approx(1.0)
    assert out["known/label/boxes"]["dapo"]["net_push"] == pytest.approx(-25 / 40)


def test_the_probe_runs_the_real_stage(tmp_path):
    out = probe.main(
        ["--batches", "1", "--out", str(tmp_path / "w.json"), "experiment=smoke", "objective=visurf"]
    )
    bins = out["bins"]
    labels = [k for k in bins if "/label/" in k]
    assert sum(bins[k]["rows"] for k in labels) == 2  # one label per prompt (batch of 2)
    for mode in ("grpo", "dapo"):
        assert sum(b[mode]["push_share"] for b in bins.values()) == pytest.approx(1.0)
    assert (tmp_path / "w.json").is_file()
