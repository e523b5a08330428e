"""Hand-computed cases for GroundingMetrics (box-level gIoU / cIoU / N-Acc, per-group split, merging)."""

import json

import pytest
import torch

from visurf.evaluation import GroundingMetrics
from visurf.rewards import GroundingReward

SIZE = 100
KEYS = {
    "accuracy",
    "mean_reward",
    "format_rate",
    "strict_format_rate",
    "giou",
    "ciou",
    "n_acc",
    "think_words",
}


def obj(x1, y1, x2, y2):
    return {"bbox_2d": [x1, y1, x2, y2], "point_2d": [(x1 + x2) / 2, (y1 + y2) / 2]}


def completion(objects, think="look closely"):
    answer = f"<answer>{json.dumps(objects)}</answer>"
    return answer if think is None else f"<think>{think}</think>{answer}"


def run(samples, groups=None, width=SIZE, height=SIZE, metric=None):
    """samples: (completion text, label objects[, group]); rewards come from GroundingReward."""
    metric = metric or GroundingMetrics()
    texts = [s[0] for s in samples]
    labels = [s[1] for s in samples]
    groups = groups or [s[2] if len(s) > 2 else "known" for s in samples]
    reward = GroundingReward()
    rewards = [reward(t, labels[i], SIZE, SIZE) for i, t in enumerate(texts)]
    metric.update(texts, rewards, labels, groups, width, height)
    return metric


def test_two_predicted_boxes_against_one_label_use_the_union():
    # Pred union: 50 + 100 - 25 = 125 px; with label (100 px): inter 75, union 150.
    out = run([(completion([obj(0, 0, 10, 5), obj(5, 0, 15, 10)]), [obj(0, 0, 10, 10)])]).compute()
    assert out["giou"] == pytest.approx(0.5)
    assert out["ciou"] == pytest.approx(0.5)
    assert out["n_acc"] is None  # no non-object question
    assert out["num_examples"] == 1


def test_correct_empty_answer_scores_full_and_adds_nothing_to_ciou():
    out = run([(completion([]), [])]).compute()
    assert out["giou"] == 1.0 and out["n_acc"] == 1.0
    assert out["ciou"] is None  # 0/0 over the only sample
    assert out["accuracy"] == 1.0 and out["format_rate"] == 1.0 and out["strict_format_rate"] == 1.0


def test_empty_prediction_for_object_and_object_for_empty_label_score_zero():
    out = run([(completion([]), [obj(0, 0, 10, 10)]), (completion([obj(0, 0, 10, 10)]), [])]).compute()
    assert out["giou"] == 0.0
    assert out["ciou"] == 0.0  # 0 / (100 + 100)
    assert out["n_acc"] == 0.0


def test_ciou_is_total_intersection_over_total_union():
    # A: inter 50, union 100 (IoU 1/2).  B: 20x20 boxes offset by 10: inter 100, union 700 (IoU 1/7).
    out = run(
        [
            (completion([obj(0, 0, 10, 5)]), [obj(0, 0, 10, 10)]),
            (completion([obj(10, 10, 30, 30)]), [obj(0, 0, 20, 20)]),
            (completion([]), []),  # contributes 0/0
        ]
    ).compute()
    assert out["ciou"] == pytest.approx(150 / 800)
    assert out["giou"] == pytest.approx((0.5 + 1 / 7 + 1.0) / 3)


def test_boxes_clip_to_image_swapped_corners_and_malformed_boxes_ignored():
    pred = [{"bbox_2d": [10, 10, -50, -50]}, {"bbox_2d": [1, 2, "x", 4]}, {"bbox_2d": [float("nan")] * 4}]
    # json.dumps writes NaN and json.loads reads it back: a non-finite box must still be skipped.
    out = run([(completion(pred), [obj(0, 0, 10, 10)])]).compute()
    assert out["giou"] == 1.0  # only the swapped box survives, clipped to [0, 0, 10, 10]
    assert out["format_rate"] == 1.0


def test_unparsable_answer_is_an_empty_prediction():
    out = run(
        [
            ("<think>hmm</think><answer>not json</answer>", [obj(0, 0, 10, 10)]),
            ("no tags at all", []),
        ]
    ).compute()
    assert out["format_rate"] == 0.0 and out["strict_format_rate"] == 0.5
    assert out["giou"] == pytest.approx(0.5)  # 0 for the object, 1 for the empty label
    assert out["ciou"] == 0.0
    assert out["n_acc"] == 0.0  # N-Acc needs an explicit parsable []
    # Rewards: (think 1 + non-repeat 1) and (non-repeat 1).
    assert out["accuracy"] == 0.0 and out["mean_reward"] == pytest.approx(1.5)


def test_think_words_mean_counts_whitespace_words():
    out = run(
        [
            (completion([], think="one two  three\nfour"), []),
            (completion([], think=None), []),
        ]
    ).compute()
    assert out["think_words"] == 2.0  # (4 + 0) / 2


def test_per_group_split_and_overall():
    out = run(
        [
            (completion([obj(0, 0, 10, 10)]), [obj(0, 0, 10, 10)], "known"),
            (completion([obj(0, 0, 10, 5)]), [obj(0, 0, 10, 10)], "novel"),
            (completion([]), [], "non_object"),
            (completion([obj(0, 0, 10, 10)]), [], "non_object"),
            (completion([]), [obj(0, 0, 10, 10)], "somewhere_else"),  # unknown: overall only
        ]
    ).compute()
    assert set(out["groups"]) == {"known", "novel", "non_object"}  # "multi" has no examples
    assert out["num_examples"] == 5
    assert out["groups"]["known"]["giou"] == 1.0 and out["groups"]["known"]["accuracy"] == 1.0
    assert out["groups"]["novel"]["giou"] == pytest.approx(0.5)
    assert out["groups"]["non_object"] == pytest.approx(
        {**out["groups"]["non_object"], "giou": 0.5, "n_acc": 0.5, "num_examples": 2}
    )
    assert out["groups"]["non_object"]["ciou"] == 0.0  # 0 / 100
    assert out["groups"]["known"]["n_acc"] is None
    assert out["giou"] == pytest.approx((1 + 0.5 + 1 + 0 + 0) / 5)
    assert out["ciou"] == pytest.approx((100 + 50) / (100 + 100 + 100 + 100))
    assert out["n_acc"] == 0.5
    assert set(out["groups"]["known"]) == KEYS | {"num_examples"}


def test_absent_denominators_are_none_and_output_is_json():
    empty = GroundingMetrics()
    with pytest.warns(UserWarning):  # torchmetrics warns on compute before update
        out = empty.compute()
    assert all(out[key] is None for key in KEYS)
    assert out["num_examples"] == 0 and out["groups"] == {}

    out = run([(completion([obj(0, 0, 10, 10)]), [obj(0, 0, 10, 10)])]).compute()
    text = json.dumps(out, allow_nan=False)
    assert json.loads(text) == out
    assert all(type(out[key]) is float for key in KEYS - {"n_acc"})
    assert type(out["num_examples"]) is int


def test_per_sample_image_sizes():
    # Same box, different frames: clipped to 10x10 in the small image, full 20x20 in the big one.
    samples = [(completion([obj(0, 0, 20, 20)]), [obj(0, 0, 10, 10)])] * 2
    out = run(samples, width=[10, 40], height=[10, 40]).compute()
    assert out["giou"] == pytest.approx((1.0 + 0.25) / 2)
    with pytest.raises(ValueError):
        run(samples, width=[10], height=10)


SAMPLES = [
    (completion([obj(0, 0, 10, 5), obj(5, 0, 15, 10)]), [obj(0, 0, 10, 10)], "multi"),
    (completion([]), [], "non_object"),
    (completion([obj(10, 10, 30, 30)]), [obj(0, 0, 20, 20)], "known"),
    ("garbage", [obj(0, 0, 10, 10)], "novel"),
    (completion([obj(0, 0, 10, 10)], think="a b c"), [], "non_object"),
    (completion([obj(2, 2, 8, 8)]), [obj(0, 0, 10, 10), obj(50, 50, 60, 60)], "multi"),
]


@pytest.mark.parametrize("how", ["merge_state", "sum"])
def test_two_process_reduction_matches_single_pass(how):
    whole = run(SAMPLES)
    first, second = run(SAMPLES[:2]), run(SAMPLES[2:])
    if how == "merge_state":
        first.merge_state(second)
    else:  # what an all-reduce with dist_reduce_fx="sum" does
        first.stats = first.stats + second.stats
    # Sums of IoUs in another order may differ in the last bit, so compare to tolerance.
    assert torch.allclose(first.stats, whole.stats)
    assert flat(first.compute()) == pytest.approx(flat(whole.compute()))


def flat(out: dict) -> dict:
    groups = {f"{g}/{k}": v for g, metrics in out["groups"].items() for k, v in metrics.items()}
    return {**{k: v for k, v in out.items() if k != "groups"}, **groups}


def test_reset_and_mismatched_lengths():
    metric = run(SAMPLES)
    metric.reset()
    assert metric.stats.abs().sum() == 0
    with pytest.raises(ValueError):
        metric.update(["x"], [], [[]], ["known"], SIZE, SIZE)
    with pytest.raises(ValueError):
        metric.update(["x"], [{"total": 0, "correct": 0}], ["not a label"], ["known"], SIZE, SIZE)
