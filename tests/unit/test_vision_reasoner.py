"""`vision_reasoner` (the Seg-Zero / VisionReasoner reference reward) on hand-made completions.

Each expected value is worked out by hand from the reference's rules (the comment beside it
gives the arithmetic), and set against what `grounding` gives for the same text where the two
differ: each case is one row of docs/rewards.md's table of differences.
"""

import json

import pytest

from visurf.rewards import GroundingReward, VisionReasonerReward, build_reward

LABEL = {"bbox_2d": [100, 100, 200, 200], "point_2d": [150, 150]}
LABEL2 = {"bbox_2d": [500, 500, 600, 600], "point_2d": [550, 550]}
THINK = "Look at the scene"  # no '.', so the reference's sentence split leaves the answer whole


def completion(objects, think=THINK) -> str:
    answer = objects if isinstance(objects, str) else json.dumps(objects)
    return f"<think>{think}</think><answer>{answer}</answer>"


def both(text: str, labels: list, size: int = 840) -> tuple[dict, dict]:
    """The reference rule for rule (its no-target rule included), and grounding."""
    solution = json.dumps(labels)
    reference = VisionReasonerReward(empty_label="reference")
    return reference(text, solution, size, size), GroundingReward()(text, solution, size, size)


def parts(out: dict) -> tuple:
    return out["think_format"], out["answer_format"], out["accuracy"], out["non_repeat"]


def test_registered_with_the_grounding_components():
    reward = build_reward("vision_reasoner")
    assert isinstance(reward, VisionReasonerReward)
    assert reward.components == GroundingReward.components and reward.max_total == 7.0


def test_exact_answer_is_full_reward():
    # IoU: inter = (200-100+1)^2 = 10201 = union -> 1 > 0.5; L1 0 < 10; point 0 px away, inside: 3.
    ours, _ = both(completion([LABEL]), [LABEL])
    assert ours == {
        "think_format": 1.0,
        "answer_format": 2.0,
        "accuracy": 3.0,
        "non_repeat": 1.0,
        "total": 7.0,
        "correct": 1.0,
    }


@pytest.mark.parametrize("dy,expected", [(29, 3.0), (30, 2.0)])
def test_point_threshold_is_30_pixels(dy, expected):
    # Same box (IoU and L1 hit); the point 29 px from the label point is < 30, 30 px is not.
    pred = {"bbox_2d": LABEL["bbox_2d"], "point_2d": [150, 150 + dy]}  # inside the box either way
    ours, grounding = both(completion([pred]), [LABEL])
    assert ours["accuracy"] == expected
    assert grounding["accuracy"] == expected  # grounding's default is the reference's 30 at 840
    # ... which the reference does not rescale: at a 112 frame its 30 px stay 30 px.
    assert both(completion([pred]), [LABEL], size=112)[0]["accuracy"] == expected
    loose = GroundingReward(point_threshold=100)(completion([pred]), json.dumps([LABEL]), 840, 840)
    assert loose["accuracy"] == 3.0  # the tiny presets' 100


def test_iou_adds_one_pixel_to_every_extent():
    # Label [0,0,10,10], prediction [0,0,10,5]. Reference: inter = (10-0+1)(5-0+1) = 66, areas
    # 11*11 = 121 and 11*6 = 66, union 121 -> IoU 66/121 = 0.545 > 0.5. L1 (0+0+0+5)/4 = 1.25;
    # point 3 px away, inside: accuracy 3. Continuous areas (grounding): 50/100 = 0.5, not > 0.5: 2.
    label = {"bbox_2d": [0, 0, 10, 10], "point_2d": [5, 5]}
    pred = {"bbox_2d": [0, 0, 10, 5], "point_2d": [5, 2]}
    ours, grounding = both(completion([pred]), [label])
    assert ours["accuracy"] == 3.0 and grounding["accuracy"] == 2.0
    # `correct` is grounding's in both (the reference has none): IoU 0.5 is no hit.
    assert ours["correct"] == grounding["correct"] == 0.0
    # A one-pixel box [5,5,5,5] matches itself: inter 1, union 1 + 1 - 1 = 1 -> IoU 1 (grounding: area 0 -> 0).
    dot = {"bbox_2d": [5, 5, 5, 5], "point_2d": [5, 5]}
    ours, grounding = both(completion([dot]), [dot])
    assert ours["accuracy"] == 3.0 and grounding["accuracy"] == 2.0


def test_one_malformed_element_zeroes_accuracy():
    # The second element has no point: reading every element's point raises, and the reference's
    # catch-all makes the whole accuracy 0. Format still scores per element: (2 + 1) / 2 = 1.5.
    text = completion([LABEL, {"bbox_2d": [300, 300, 400, 400]}])
    ours, grounding = both(text, [LABEL])
    assert parts(ours) == (1.0, 1.5, 0.0, 1.0) and ours["total"] == 3.5
    # grounding scores the well-formed element: 3 / max(2 predicted, 1 label) = 1.5.
    assert grounding["accuracy"] == 1.5 and grounding["answer_format"] == 1.5


def test_a_non_object_element_stops_the_format_count():
    # Format: the first element earns 2/2 = 1; `"bbox_2d" in 5` raises, and the reference returns
    # what it had. Accuracy: 5["bbox_2d"] raises: 0. (grounding: (2 + 0) / 2 = 1, accuracy 3/2.)
    ours, grounding = both(completion([LABEL, 5]), [LABEL])
    assert parts(ours) == (1.0, 1.0, 0.0, 1.0)
    assert grounding["answer_format"] == 1.0 and grounding["accuracy"] == 1.5
    # A string without a key name earns 0 and the count goes on: (2 + 0 + 2) / 3 = 4/3 (as summed).
    ours, _ = both(completion([LABEL, "a box", LABEL]), [LABEL])
    assert ours["answer_format"] == 2 / 3 + 0 / 3 + 2 / 3


def test_swapped_corners_are_not_forgiven():
    # Prediction [200,200,100,100] for label [100,100,200,200]: inter = max(0, 100-200+1) = 0 ->
    # IoU 0; L1 (100+100+100+100)/4 = 100; point x 150 >= 200 fails, so not inside: accuracy 0.
    swapped = {"bbox_2d": [200, 200, 100, 100], "point_2d": [150, 150]}
    ours, grounding = both(completion([swapped]), [LABEL])
    assert parts(ours) == (1.0, 2.0, 0.0, 1.0)
    assert grounding["accuracy"] == 3.0  # sorted corners cover the same pixels


ANSWER = json.dumps([LABEL])


@pytest.mark.parametrize(
    "text,ours,grounding",
    [
        (f"<think>a</think><answer>{ANSWER}</answer>", 1.0, 1.0),
        (f"<think>a</think> \n <answer>{ANSWER}</answer>", 1.0, 1.0),  # whitespace between: both
        (f"\n<think>a</think><answer>{ANSWER}</answer>", 0.0, 1.0),  # fullmatch: nothing before
        (f"<think>a</think><answer>{ANSWER}</answer>\n", 0.0, 1.0),  # ... nor after, not even a newline
        # The first lazy `.*?` stretches over the extra tags: a second think block passes.
        (f"<think>a</think><think>b</think><answer>{ANSWER}</answer>", 1.0, 0.0),
        (f"<think>a</think><answer>{ANSWER}</answer><answer>[]</answer>", 1.0, 0.0),
        (f"<think>a</think><answer>x</think><answer>{ANSWER}</answer>", 1.0, 0.0),
        (f"<think>a</think>so<answer>{ANSWER}</answer>", 0.0, 0.0),  # text between: neither
        (f"<answer>{ANSWER}</answer>", 0.0, 0.0),
    ],
)
def test_think_format_whitespace_and_repeated_tags(text, ours, grounding):
    got_ours, got_grounding = both(text, [LABEL])
    assert got_ours["think_format"] == ours and got_grounding["think_format"] == grounding


@pytest.mark.parametrize(
    "think,ours,grounding",
    [
        # The reference splits the whole completion at '.': "<think>Look", "It is red", "It is red",
        # "</think><answer>...": one repeat, which still earns 1 (it needs two). grounding: 0.
        ("Look. It is red. It is red.", 1.0, 0.0),
        ("Look. It is red. It is red. It is red.", 0.0, 0.0),  # two repeats of one sentence
        ("Look. A. A. B. B.", 0.0, 0.0),  # one repeat each of two sentences: two repeats
        # Without the last '.', the last sentence is "It is red</think><answer>...": one repeat.
        ("Look. It is red. It is red. It is red", 1.0, 0.0),
        ("Look. It is red. it is red. IT IS RED.", 1.0, 0.0),  # case-sensitive; grounding lower-cases
        ("Look! Red! Red! Red!", 1.0, 0.0),  # only '.' ends a sentence; grounding splits at '!' too
        # Inside the tags the first sentence is "<think>It is red": no repeat at all.
        ("It is red. It is red.", 1.0, 0.0),
    ],
)
def test_non_repeat_needs_two_repeats_and_splits_at_dots(think, ours, grounding):
    got_ours, got_grounding = both(completion([LABEL], think=think), [LABEL])
    assert got_ours["non_repeat"] == ours and got_grounding["non_repeat"] == grounding


def test_non_repeat_reads_the_answer_too():
    # The answer's decimals split sentences: '[{"bbox_2d": [100', then "5, 100" three times (two
    # repeats), then '5], "point_2d": [150', "5, 150", '5]}]</answer>': 0. grounding reads the think only.
    pred = {"bbox_2d": [100.5, 100.5, 100.5, 100.5], "point_2d": [150.5, 150.5]}
    ours, grounding = both(completion([pred]), [LABEL])
    assert ours["non_repeat"] == 0.0 and grounding["non_repeat"] == 1.0


def test_nan_coordinate_loses_only_its_own_hits():
    # Point [NaN, 150]: the box still hits IoU (1) and L1 (0); the distance is NaN, and NaN < 30 is
    # false: accuracy 2. Format counts list lengths only: 2. grounding drops the element: format
    # 1 (box only), accuracy 0.
    text = completion('[{"bbox_2d": [100, 100, 200, 200], "point_2d": [NaN, 150]}]')
    ours, grounding = both(text, [LABEL])
    assert parts(ours) == (1.0, 2.0, 2.0, 1.0) and ours["total"] == 6.0
    assert parts(grounding) == (1.0, 1.0, 0.0, 1.0)
    # With a second, exact element for a second label: (2 + 3) / max(2, 2) = 2.5.
    text = completion(
        '[{"bbox_2d": [100, 100, 200, 200], "point_2d": [NaN, 150]}, ' + json.dumps(LABEL2) + "]"
    )
    assert both(text, [LABEL, LABEL2])[0]["accuracy"] == 2.5
    # NaN in the box: IoU NaN, L1 NaN and the inside test all fail: 0 (the point alone earns nothing).
    text = completion('[{"bbox_2d": [NaN, 100, 200, 200], "point_2d": [150, 150]}]')
    assert both(text, [LABEL])[0]["accuracy"] == 0.0


def test_empty_answers_earn_no_format_or_accuracy():
    # `[]`: the format loop sees no element (0), and the reference's array code fails on an empty
    # list (accuracy 0), for an empty label as for any other. grounding gives a right `[]` 7.
    ours, grounding = both(completion([]), [])
    assert parts(ours) == (1.0, 0.0, 0.0, 1.0) and ours["total"] == 2.0
    assert grounding["total"] == 7.0
    assert ours["correct"] == 1.0  # grounding's notion of correct: a right "nothing there"
    assert parts(both(completion([]), [LABEL])[0]) == (1.0, 0.0, 0.0, 1.0)
    # A box for an empty label: format 2, accuracy 0 (the label's array fails).
    assert parts(both(completion([LABEL]), [])[0]) == (1.0, 2.0, 0.0, 1.0)


def test_the_no_target_rule():
    right, box = completion([]), completion([LABEL])
    reference, full = VisionReasonerReward(empty_label="reference"), VisionReasonerReward()
    assert full.empty_label == "full"  # the default
    # reference: its IoU step raises on the empty label and the catch-all zeroes the accuracy, so
    # a right `[]` (think 1 + format 0 + accuracy 0 + non-repeat 1 = 2) earns less than a
    # hallucinated box (1 + 2 + 0 + 1 = 4).
    assert parts(reference(right, "[]", 840, 840)) == (1.0, 0.0, 0.0, 1.0)
    assert reference(box, "[]", 840, 840)["total"] == 4.0
    # full: the right `[]` earns the full accuracy 3 (5 in all: its format stays the reference's 0).
    assert parts(full(right, "[]", 840, 840)) == (1.0, 0.0, 3.0, 1.0)
    assert full(right, "[]", 840, 840)["total"] == 5.0 and full(box, "[]", 840, 840)["total"] == 4.0
    # Only the accuracy of a right `[]` changes: a `[]` without answer tags earns nothing, and
    # rows with a target score the same under both rules.
    assert full("[]", "[]", 840, 840)["accuracy"] == 0.0
    for text in (right, box, completion([LABEL, LABEL2]), completion("[{}]")):
        for labels in ([LABEL], [LABEL, LABEL2]):
            solution = json.dumps(labels)
            assert reference(text, solution, 840, 840) == full(text, solution, 840, 840)
    assert build_reward("vision_reasoner", empty_label="reference").empty_label == "reference"
    with pytest.raises(ValueError, match=r"empty_label must be one of \['reference', 'full'\], got 'zero'"):
        VisionReasonerReward(empty_label="zero")


def test_only_the_first_120_objects_count():
    # 121 copies of the label: the first 120 are kept, one matches (3), divided by max(120, 1):
    # 0.025, not 3/121. Format sums 2/121 once per element (121 elements).
    ours, _ = both(completion([LABEL] * 121), [LABEL])
    assert ours["accuracy"] == 3 / 120
    total = 0.0
    for _ in range(121):
        total += 2 / 121
    assert ours["answer_format"] == total


def test_coordinates_follow_numpy_conversion():
    # `true` among numbers becomes 1 in the prediction's array: box [1,100,200,200]. IoU:
    # inter 101*101 = 10201, areas 200*101 = 20200 and 10201 -> 10201/20200 = 0.505 > 0.5; L1
    # (99+0+0+0)/4 = 24.75 fails; point inside and 0 px away: accuracy 2. (grounding: not a number, 0.)
    text = completion('[{"bbox_2d": [true, 100, 200, 200], "point_2d": [150, 150]}]')
    ours, grounding = both(text, [LABEL])
    assert ours["accuracy"] == 2.0 and grounding["accuracy"] == 0.0
    # A string coordinate: no arithmetic on a string array, accuracy 0 (format still 2).
    text = completion('[{"bbox_2d": ["100", 100, 200, 200], "point_2d": [150, 150]}]')
    assert parts(both(text, [LABEL])[0]) == (1.0, 2.0, 0.0, 1.0)


def test_format_counts_list_lengths_only():
    # bbox_2d [null, "a", NaN, [1]] is a list of 4 and point_2d a list of 2: format 2. The box
    # cannot become an array (a nested list among scalars): accuracy 0. grounding: point only, 1.
    text = completion('[{"bbox_2d": [null, "a", NaN, [1]], "point_2d": [1, 2]}]')
    ours, grounding = both(text, [LABEL])
    assert parts(ours) == (1.0, 2.0, 0.0, 1.0) and grounding["answer_format"] == 1.0


def test_answer_text_is_stripped_of_unicode_whitespace():
    # No-break spaces around the JSON: the reference's `\s*` takes them, json.loads never sees
    # them: format 2, accuracy 3. grounding hands them to json.loads, which refuses: 0 and 0.
    text = f"<think>a</think><answer>\u00a0{ANSWER}\u00a0</answer>"
    ours, grounding = both(text, [LABEL])
    assert parts(ours) == (1.0, 2.0, 3.0, 1.0)
    assert (grounding["answer_format"], grounding["accuracy"]) == (0.0, 0.0)


def test_hungarian_matching_and_division():
    # Two labels answered in reverse order: matched one to one, (3 + 3) / 2 = 3.
    assert both(completion([LABEL2, LABEL]), [LABEL, LABEL2])[0]["accuracy"] == 3.0
    # One label, one exact and one far prediction: 3 / max(2, 1) = 1.5.
    far = {"bbox_2d": [700, 700, 800, 800], "point_2d": [750, 750]}
    assert both(completion([LABEL, far]), [LABEL])[0]["accuracy"] == 1.5


def test_bad_label_or_size_is_a_clear_error():
    with pytest.raises(ValueError, match="malformed grounding label"):
        VisionReasonerReward()(completion([]), "[{}]", 840, 840)
    with pytest.raises(ValueError, match="image size"):
        VisionReasonerReward()(completion([]), "[]", 0, 0)


def test_non_string_completion_scores_zero():
    out = VisionReasonerReward()(None, json.dumps([LABEL]), 840, 840)
    assert out["total"] == 0.0 and out["correct"] == 0.0
