"""Hand-computed cases for the reward parser, the grounding reward and the registry."""

import json
import math

import pytest

from visurf.config.compose import compose_config
from visurf.rewards import (
    REWARDS,
    GroundingReward,
    build_reward,
    coerce_objects,
    format_answer,
    format_completion,
    parse_completion,
)

BOX = {"bbox_2d": [100, 100, 300, 300], "point_2d": [200, 200]}
BOX2 = {"bbox_2d": [500, 500, 700, 700], "point_2d": [600, 600]}


def completion(objects, think="The target is the red square."):
    return f"<think>{think}</think><answer>{json.dumps(objects)}</answer>"


def score(objects, labels, size=840, raw=None, **kwargs):
    text = raw if raw is not None else completion(objects)
    return GroundingReward(**kwargs)(text, json.dumps(labels), size, size)


# --- parsing -------------------------------------------------------------------------------


def test_parse_strict_completion():
    parsed = parse_completion("  <think> a </think>\n <answer>[]</answer>\n")
    assert parsed.think == " a "
    assert parsed.answer == "[]"
    assert parsed.strict_format
    assert parsed.objects == []


@pytest.mark.parametrize(
    "text",
    [
        "<answer>[]</answer>",  # missing think
        "hello <think>a</think><answer>[]</answer>",  # text before the tags
        "<think>a</think> so <answer>[]</answer>",  # text between the tags
        "<think>a</think><answer>[]</answer> bye",  # text after the tags
        "<think>a</think><think>b</think><answer>[]</answer>",  # think twice
        "<think>a</think><answer>[]</answer><answer>[]</answer>",  # answer twice
        "<answer>[]</answer><think>a</think>",  # wrong order
        "<think>a<answer>[]</answer></think>",  # nested
    ],
)
def test_parse_not_strict(text):
    assert not parse_completion(text).strict_format


def test_parse_takes_first_tags_and_non_list_answer():
    parsed = parse_completion("<think>a</think><think>b</think><answer>{}</answer><answer>[]</answer>")
    assert parsed.think == "a"
    assert parsed.answer == "{}"
    assert parsed.objects is None
    assert parse_completion("no tags").answer is None


def test_format_answer_canonical_string():
    objects = [{"point_2d": [20.4, 29.6], "bbox_2d": [10, 20.2, 30.0, 39.7]}]
    assert format_answer(objects) == '[{"bbox_2d":[10,20,30,40],"point_2d":[20,30]}]'
    assert format_answer([]) == "[]"


def test_format_completion():
    assert format_completion("T", []) == "<think>T</think><answer>[]</answer>"
    assert format_completion(None, [BOX]) == (
        '<answer>[{"bbox_2d":[100,100,300,300],"point_2d":[200,200]}]</answer>'
    )


def test_parse_round_trip():
    objects = [BOX, BOX2]
    parsed = parse_completion(format_completion("look.", objects))
    assert parsed.strict_format and parsed.think == "look."
    assert parsed.objects == objects
    assert coerce_objects(parsed.objects) == [
        {"bbox_2d": [float(v) for v in o["bbox_2d"]], "point_2d": [float(v) for v in o["point_2d"]]}
        for o in objects
    ]


@pytest.mark.parametrize(
    "value",
    [
        None,
        "{}",
        "[1]",
        [{"bbox_2d": [1, 2, 3], "point_2d": [1, 2]}],
        [{"bbox_2d": [1, 2, 3, 4]}],
        [{"bbox_2d": [1, 2, 3, True], "point_2d": [1, 2]}],
        [{"bbox_2d": [1, 2, 3, float("nan")], "point_2d": [1, 2]}],
        '[{"bbox_2d": [1, 2, 3, 1e309], "point_2d": [1, 2]}]',
    ],
)
def test_coerce_objects_rejects_malformed(value):
    assert coerce_objects(value) is None


def test_coerce_objects_accepts_json_string():
    assert coerce_objects("[]") == []
    assert coerce_objects(json.dumps([BOX])) == [
        {"bbox_2d": [100.0] * 2 + [300.0] * 2, "point_2d": [200.0] * 2}
    ]


# --- grounding: accuracy ------------------------------------------------------------------------


def test_exact_single_match_is_full_reward():
    out = score([BOX], [BOX])
    assert out == {
        "think_format": 1.0,
        "answer_format": 2.0,
        "accuracy": 3.0,
        "non_repeat": 1.0,
        "total": 7.0,
        "correct": 1.0,
    }


def test_empty_prediction_for_empty_label():
    out = score([], [])
    assert out["accuracy"] == 3.0 and out["correct"] == 1.0 and out["answer_format"] == 2.0
    assert out["total"] == 7.0  # in full, as a right box


def test_empty_prediction_scores_below_a_wrong_box_on_an_object_question():
    far = {"bbox_2d": [300, 300, 400, 400], "point_2d": [350, 350]}
    empty, wrong = score([], [BOX]), score([far], [BOX])
    assert wrong["accuracy"] == 0.0 and wrong["total"] == 4.0
    assert empty["answer_format"] == 0.0 and empty["total"] == 2.0


def test_empty_list_format_always_leaves_the_box_or_empty_choice_to_accuracy():
    far = {"bbox_2d": [300, 300, 400, 400], "point_2d": [350, 350]}
    empty = score([], [BOX], empty_list_format="always")
    wrong = score([far], [BOX], empty_list_format="always")
    assert empty["answer_format"] == wrong["answer_format"] == 2.0
    assert empty["total"] == wrong["total"] == 4.0  # a wrong box and a wrong [] tie
    right_empty = score([], [], empty_list_format="always")
    assert right_empty["total"] == 7.0 and right_empty["correct"] == 1.0


def test_empty_list_format_refuses_an_unknown_rule():
    with pytest.raises(
        ValueError, match="empty_list_format must be 'when_right' or 'always', got 'sometimes'"
    ):
        GroundingReward(empty_list_format="sometimes")


@pytest.mark.parametrize("objects,labels", [([], [BOX]), ([BOX], [])])
def test_empty_against_non_empty(objects, labels):
    out = score(objects, labels)
    assert out["accuracy"] == 0.0 and out["correct"] == 0.0


def test_extra_prediction_divides_by_predicted():
    out = score([BOX, BOX2], [BOX])
    assert out["accuracy"] == pytest.approx(3 / 2)
    assert out["correct"] == 0.0


def test_missing_prediction_divides_by_labels():
    out = score([BOX], [BOX, BOX2])
    assert out["accuracy"] == pytest.approx(3 / 2)
    assert out["correct"] == 0.0


def test_hungarian_matches_out_of_order():
    out = score([BOX2, BOX], [BOX, BOX2])
    assert out["accuracy"] == 3.0 and out["correct"] == 1.0


def test_malformed_element_counts_as_predicted():
    out = score([BOX, {"bbox_2d": [1, 2], "point_2d": [1, 2]}], [BOX])
    assert out["accuracy"] == pytest.approx(3 / 2)
    assert out["answer_format"] == pytest.approx((2 + 1) / 2)
    assert out["correct"] == 0.0


def test_swapped_corners_are_sorted():
    swapped = {"bbox_2d": [300, 300, 100, 100], "point_2d": [200, 200]}
    out = score([swapped], [BOX])
    assert out["accuracy"] == 3.0 and out["correct"] == 1.0


def test_point_outside_its_predicted_box_loses_point_reward():
    # Point 20 px from the label point (within 30) but outside the predicted box.
    pred = {"bbox_2d": [100, 100, 300, 300], "point_2d": [200, 320]}
    label = {"bbox_2d": [100, 100, 300, 300], "point_2d": [200, 300]}
    assert score([pred], [label])["accuracy"] == 2.0
    inside = {"bbox_2d": [100, 100, 300, 300], "point_2d": [200, 280]}
    assert score([inside], [label])["accuracy"] == 3.0


def test_point_far_from_label_loses_point_reward():
    pred = {"bbox_2d": [100, 100, 300, 300], "point_2d": [105, 105]}
    assert score([pred], [BOX])["accuracy"] == 2.0  # 134 px away > 30


def test_partial_overlap_components():
    # Shifted by 20 px in x: IoU = 180*200 / (2*40000 - 36000) = 0.818 > 0.5; L1 = 20 >= 10.
    pred = {"bbox_2d": [120, 100, 320, 300], "point_2d": [220, 200]}
    out = score([pred], [BOX])
    assert out["accuracy"] == 2.0 and out["correct"] == 1.0
    # Shifted by 150 px: IoU = 50*200 / (80000 - 10000) = 0.143 fails, L1 fails, point 150 px fails.
    far = {"bbox_2d": [250, 100, 450, 300], "point_2d": [350, 200]}
    out = score([far], [BOX])
    assert out["accuracy"] == 0.0 and out["correct"] == 0.0


@pytest.mark.parametrize("size", [840, 112, 1680])
def test_thresholds_scale_with_image_size(size):
    s = size / 840
    label = {"bbox_2d": [100 * s, 100 * s, 300 * s, 300 * s], "point_2d": [200 * s, 200 * s]}

    def shifted(box_err, point_err):
        d = box_err * s
        return {
            "bbox_2d": [100 * s + d, 100 * s + d, 300 * s + d, 300 * s + d],
            "point_2d": [200 * s + point_err * s, 200 * s],
        }

    # At 840: 9 px mean L1 and a 29 px point error pass; 11 px L1 or a 31 px point error fail.
    assert score([shifted(9, 29)], [label], size=size)["accuracy"] == 3.0
    assert score([shifted(11, 29)], [label], size=size)["accuracy"] == 2.0
    assert score([shifted(9, 31)], [label], size=size)["accuracy"] == 2.0  # too far from the label point
    # The tiny presets' looser point threshold (100 at 840) lets the 31 px error through.
    assert score([shifted(9, 31)], [label], size=size, point_threshold=100)["accuracy"] == 3.0


def test_default_thresholds_are_the_reference_ones():
    reward = GroundingReward()
    assert (reward.box_l1_threshold, reward.point_threshold, reward.iou_threshold) == (10.0, 30.0, 0.5)
    assert reward.reference_frame == 840.0


def test_custom_thresholds():
    pred = {"bbox_2d": [120, 100, 320, 300], "point_2d": [220, 200]}
    assert score([pred], [BOX], box_l1_threshold=30)["accuracy"] == 3.0
    assert score([pred], [BOX], iou_threshold=0.9)["accuracy"] == 1.0  # only the point remains


def test_non_rectangular_size_uses_longest_side():
    reward = GroundingReward()
    pred = {"bbox_2d": [105, 105, 305, 305], "point_2d": [200, 200]}  # L1 = 5
    labels = json.dumps([BOX])
    # Longest side 420 -> threshold 5: L1 of 5 fails; longest side 840 -> threshold 10 passes.
    assert reward(completion([pred]), labels, 420, 100)["accuracy"] == 2.0
    assert reward(completion([pred]), labels, 100, 840)["accuracy"] == 3.0


def test_non_finite_coordinates_are_malformed():
    text = '<think>a</think><answer>[{"bbox_2d": [NaN, 1, 2, Infinity], "point_2d": [1, 1e309]}]</answer>'
    out = score(None, [BOX], raw=text)
    assert out["answer_format"] == 0.0 and out["accuracy"] == 0.0
    assert all(math.isfinite(v) for v in out.values())


def test_huge_finite_coordinates_do_not_give_nan():
    huge = {"bbox_2d": [-1e308, -1e308, 1e308, 1e308], "point_2d": [0, 0]}
    out = score([huge], [BOX])
    assert all(math.isfinite(v) for v in out.values())
    assert out["accuracy"] == 0.0


def test_pairwise_geometry_equals_the_scalar_functions():
    # The matching runs on numpy arrays; every element must be the scalar function's value to the
    # bit (so scores at a threshold's edge cannot move), extreme boxes included.
    import numpy as np

    from visurf.rewards.geometry import (
        distance,
        inside,
        iou,
        mean_l1,
        pairwise_distance,
        pairwise_iou,
        pairwise_mean_l1,
        rows_inside,
        sort_corners,
    )

    rng = np.random.default_rng(0)
    boxes = [sort_corners(rng.uniform(-50, 900, 4).tolist()) for _ in range(30)]
    boxes += [
        [0.0, 0.0, 0.0, 0.0],
        [5.0, 5.0, 5.0, 9.0],
        [-1e308, -1e308, 1e308, 1e308],
        [0.0, 0.0, 1e308, 1e-300],
    ]
    points = [rng.uniform(-50, 900, 2).tolist() for _ in boxes[:-2]] + [[1e308, -1e308], [0.1, 0.2]]
    a, p = np.array(boxes), np.array(points)
    got_iou, got_l1, got_dist = pairwise_iou(a, a), pairwise_mean_l1(a, a), pairwise_distance(p, p)
    for i in range(len(boxes)):
        assert rows_inside(p, a)[i] == inside(points[i], boxes[i])
        for j in range(len(boxes)):
            assert got_iou[i, j] == iou(boxes[i], boxes[j])
            assert got_l1[i, j] == mean_l1(boxes[i], boxes[j])
            assert got_dist[i, j] == distance(points[i], points[j])


# --- grounding: format and non-repeat -------------------------------------------------------------


@pytest.mark.parametrize(
    "answer,expected",
    [
        ("[]", 0.0),
        (json.dumps([BOX]), 2.0),
        (json.dumps([{"bbox_2d": [1, 2, 3, 4]}]), 1.0),
        (json.dumps([{"point_2d": [1, 2]}, BOX]), 1.5),
        (json.dumps([{"bbox_2d": [1, 2, 3, "4"], "point_2d": [1, 2, 3]}]), 0.0),
        (json.dumps([{"bbox_2d": [1, 2, 3, True], "point_2d": [1, 2]}]), 1.0),
        (json.dumps([1, "x", BOX, []]), 0.5),
        ('{"bbox_2d": [1, 2, 3, 4]}', 0.0),
        ("[{broken", 0.0),
    ],
)
def test_answer_format_values(answer, expected):
    out = score(None, [BOX], raw=f"<think>a</think><answer>{answer}</answer>")
    assert out["answer_format"] == pytest.approx(expected)


def test_think_format_variants():
    reward = GroundingReward()
    labels = json.dumps([BOX])
    good = completion([BOX])
    assert reward(good, labels, 840, 840)["think_format"] == 1.0
    assert reward(f"<answer>{json.dumps([BOX])}</answer>", labels, 840, 840)["think_format"] == 0.0
    assert reward("Sure! " + good, labels, 840, 840)["think_format"] == 0.0
    assert reward("<think>a</think>" + good, labels, 840, 840)["think_format"] == 0.0
    # A completion without a think block can still be accurate.
    assert reward(f"<answer>{json.dumps([BOX])}</answer>", labels, 840, 840)["accuracy"] == 3.0


@pytest.mark.parametrize(
    "think,expected",
    [
        ("The square is red. It is big.", 1.0),
        ("The square is red. the square is RED !", 0.0),
        ("It is here.\nIt is here", 0.0),
        ("Point at 10.5 and 20.5. Box at 10.5 and 20.5, then 5.", 1.0),  # decimals are not sentence ends
        ("...", 1.0),
    ],
)
def test_non_repeat(think, expected):
    assert score([BOX], [BOX], raw=completion([BOX], think=think))["non_repeat"] == expected


def test_non_repeat_without_think():
    assert score(None, [BOX], raw=f"<answer>{json.dumps([BOX])}</answer>")["non_repeat"] == 1.0


def test_total_is_sum_and_bounds():
    out = score([BOX, BOX2], [BOX])
    assert out["total"] == pytest.approx(sum(out[c] for c in GroundingReward.components))
    assert GroundingReward.max_total == 7.0


def test_bad_label_or_size_is_a_clear_error():
    with pytest.raises(ValueError, match="malformed grounding label"):
        GroundingReward()(completion([]), "[{}]", 840, 840)
    with pytest.raises(ValueError, match="image size"):
        GroundingReward()(completion([]), "[]", 0, 0)


# --- registry and the other rewards -------------------------------------------------------------


def test_registry():
    assert {"grounding", "vision_reasoner", "counting", "multiple_choice"} <= set(REWARDS)
    reward = build_reward("grounding", box_l1_threshold=20.0)
    assert isinstance(reward, GroundingReward) and reward.box_l1_threshold == 20.0


# The grounding thresholds before the reference's became the defaults (box L1, point, IoU, frame):
# the tiny presets keep them, so the main job and the pocket sweeps score as they were measured.
TINY_THRESHOLDS = (10.0, 100.0, 0.5, 840.0)
REFERENCE_THRESHOLDS = (10.0, 30.0, 0.5, 840.0)


@pytest.mark.parametrize(
    "overrides,expected",
    [
        (["objective=visurf", "reward_control=all"], TINY_THRESHOLDS),  # the main job
        (["experiment=pocket", "objective=sft"], TINY_THRESHOLDS),
        (["experiment=smoke"], TINY_THRESHOLDS),
        (["model=tiny"], TINY_THRESHOLDS),
        (["model=qwen2_5_vl_3b"], REFERENCE_THRESHOLDS),
        (["model=qwen2_5_vl_7b"], REFERENCE_THRESHOLDS),
    ],
)
def test_model_presets_set_the_grounding_thresholds(overrides, expected):
    cfg = compose_config(overrides)
    reward = build_reward(cfg.reward.name, **dict(cfg.reward.kwargs))
    got = (reward.box_l1_threshold, reward.point_threshold, reward.iou_threshold, reward.reference_frame)
    assert got == expected


def test_preset_reward_kwargs_follow_the_reward_name_and_give_way_to_the_command_line():
    # Another reward on a tiny preset gets none of grounding's settings.
    for name in ("vision_reasoner", "counting"):
        cfg = compose_config([f"reward.name={name}"])
        assert dict(cfg.reward.kwargs) == {}
        build_reward(cfg.reward.name, **dict(cfg.reward.kwargs))
    cfg = compose_config(["reward.kwargs={point_threshold: 50}"])
    assert build_reward(cfg.reward.name, **dict(cfg.reward.kwargs)).point_threshold == 50.0
    cfg = compose_config(["model.reward_kwargs.grounding.point_threshold=60"])
    assert build_reward(cfg.reward.name, **dict(cfg.reward.kwargs)).point_threshold == 60.0


def test_registry_unknown_name_lists_names():
    with pytest.raises(KeyError) as info:
        build_reward("nope")
    message = str(info.value)
    assert "nope" in message and "grounding" in message and "counting" in message
    assert "multiple_choice" in message
    with pytest.raises(ValueError):
        build_reward("nope")


@pytest.mark.parametrize(
    "text,label,expected",
    [
        ("<think>count</think><answer>3</answer>", "3", (1, 1, 1, 1)),
        ("<think>count</think><answer> 4 </answer>", 3, (1, 1, 0, 0)),
        ("<answer>3</answer>", "3", (0, 1, 1, 1)),
        ("<think>c</think><answer>three</answer>", "3", (1, 0, 0, 0)),
        ("<think>c</think><answer>3.0</answer>", "3", (1, 0, 0, 0)),
        ("<think>c</think><answer>" + "9" * 5000 + "</answer>", "3", (1, 0, 0, 0)),
        ("3", "3", (0, 0, 0, 0)),
    ],
)
def test_counting(text, label, expected):
    out = build_reward("counting")(text, label, 10, 10)
    got = (out["think_format"], out["answer_format"], out["accuracy"], out["correct"])
    assert got == expected
    assert out["total"] == out["think_format"] + out["answer_format"] + out["accuracy"]


@pytest.mark.parametrize(
    "text,label,expected",
    [
        ("<think>hm</think><answer>B</answer>", "B", (1, 1, 1, 1)),
        ("<think>hm</think><answer>(b)</answer>", "B", (1, 1, 1, 1)),
        ("<think>hm</think><answer>C.</answer>", "B", (1, 1, 0, 0)),
        ("<think>hm</think><answer>F</answer>", "B", (1, 0, 0, 0)),
        ("<think>hm</think><answer>A or B</answer>", "B", (1, 0, 0, 0)),
        ("<answer>B</answer>", "b", (0, 1, 1, 1)),
    ],
)
def test_multiple_choice(text, label, expected):
    out = build_reward("multiple_choice")(text, label, 10, 10)
    got = (out["think_format"], out["answer_format"], out["accuracy"], out["correct"])
    assert got == expected


@pytest.mark.parametrize(
    "text,label,expected",
    [
        ("<think>w</think><answer>3/4</answer>", "0.75", (1, 1, 1, 1)),  # one value, two spellings
        ("<answer>\\boxed{12}</answer>", "12", (0, 1, 1, 1)),
        ("<answer>$-0.50$</answer>", "-1/2", (0, 1, 1, 1)),
        ("<answer>1,000.</answer>", "1000", (0, 1, 1, 1)),
        ("<answer> New   York </answer>", "new york", (0, 1, 1, 1)),
        ("<answer>0.7</answer>", "3/4", (0, 1, 0, 0)),
        ("<answer>1/0</answer>", "1", (0, 0, 0, 0)),  # no value
        ("<answer></answer>", "1", (0, 0, 0, 0)),
        ("7", "7", (0, 0, 0, 0)),  # no answer block
    ],
)
def test_exact_answer(text, label, expected):
    out = build_reward("exact_answer")(text, label, 0, 0)  # no image: no size
    got = (out["think_format"], out["answer_format"], out["accuracy"], out["correct"])
    assert got == expected


def test_other_rewards_reject_bad_labels():
    with pytest.raises(ValueError):
        build_reward("counting")("<answer>3</answer>", "x", 1, 1)
    with pytest.raises(ValueError):
        build_reward("multiple_choice")("<answer>A</answer>", "Z", 1, 1)
    with pytest.raises(ValueError):
        build_reward("exact_answer")("<answer>A</answer>", " ", 1, 1)
