"""Completions mapped back to the original image size as the released evaluation maps them."""

from __future__ import annotations

import json

import pytest

from visurf.evaluation.answers import MappedAnswer, map_answer


def completion(answer) -> str:
    body = answer if isinstance(answer, str) else json.dumps(answer)
    return f"<think>the left dog</think><answer>{body}</answer>"


def test_boxes_and_points_scale_per_axis_and_round_half_up():
    # An 840 frame for a 1260 x 420 original: x factor 1.5, y factor 0.5.
    text = completion([{"bbox_2d": [10, 11, 101, 103], "point_2d": [33, 45]}])
    mapped = map_answer(text, 1260 / 840, 420 / 840)
    # 10*1.5+.5 = 15.5 -> 15; 11*.5+.5 = 6.0 -> 6; 101*1.5+.5 = 152.0 -> 152; 103*.5+.5 = 52.0 -> 52
    assert mapped.boxes == [[15, 6, 152, 52]]
    # 33*1.5+.5 = 50.0 -> 50; 45*.5+.5 = 23.0 -> 23
    assert mapped.points == [[50, 23]]


def test_rounding_is_int_of_v_times_f_plus_a_half():
    # int() truncates toward zero: -3 * 1 + 0.5 = -2.5 -> -2 (floor would give -3); 2.4 + .5 -> 2.
    mapped = map_answer(completion([{"bbox_2d": [-3, 2.4, 7.5, 9.49], "point_2d": [0.5, -0.6]}]), 1.0, 1.0)
    assert mapped.boxes == [[-2, 2, 8, 9]] and mapped.points == [[1, 0]]


def test_several_objects_keep_their_order():
    objects = [
        {"bbox_2d": [0, 0, 10, 10], "point_2d": [5, 5]},
        {"bbox_2d": [20, 20, 40, 40], "point_2d": [30, 30]},
    ]
    mapped = map_answer(completion(objects), 2.0, 2.0)
    assert mapped.boxes == [[0, 0, 20, 20], [40, 40, 80, 80]] and mapped.points == [[10, 10], [60, 60]]


@pytest.mark.parametrize(
    "text",
    [
        "no answer at all",
        '<answer>[{"bbox_2d": [1, 2, 3, 4], "point_2d": [1, 2]}]',  # never closed
        completion("[{'bbox_2d': [1, 2, 3, 4]}]"),  # not JSON
        completion([]),
        completion("null"),
        completion({"bbox_2d": [1, 2, 3, 4], "point_2d": [1, 2]}),  # an object, not a list
        completion([{"point_2d": [1, 2]}]),  # no box
        completion([{"bbox_2d": [1, 2, 3], "point_2d": [1, 2]}]),  # three coordinates
        completion([{"bbox_2d": ["1", 2, 3, 4], "point_2d": [1, 2]}]),  # a string
        completion('[{"bbox_2d": [NaN, 2, 3, 4], "point_2d": [1, 2]}]'),  # int(nan) raises
        completion([{"bbox_2d": [1, 2, 3, 4], "point_2d": [1, 2]}, "junk"]),  # one bad element spoils all
        12345,
    ],
)
def test_what_the_released_code_cannot_read_is_an_empty_answer(text):
    assert map_answer(text, 1.0, 1.0) == MappedAnswer([], [])


def test_a_bad_point_keeps_the_boxes_and_drops_every_point():
    objects = [{"bbox_2d": [1, 2, 3, 4], "point_2d": [2, 3]}, {"bbox_2d": [5, 6, 7, 8]}]
    mapped = map_answer(completion(objects), 1.0, 1.0)
    assert mapped.boxes == [[1, 2, 3, 4], [5, 6, 7, 8]] and mapped.points == []


def test_extra_coordinates_are_ignored_and_booleans_are_numbers():
    mapped = map_answer(completion([{"bbox_2d": [1, 2, 3, 4, 99], "point_2d": [True, 2, 7]}]), 10.0, 10.0)
    assert mapped.boxes == [[10, 20, 30, 40]] and mapped.points == [[10, 20]]


def test_whitespace_around_the_json_and_the_first_answer_block():
    text = '<think>x</think><answer>\n  [{"bbox_2d": [1, 2, 3, 4], "point_2d": [2, 3]}]\n</answer><answer>[]</answer>'
    assert map_answer(text, 1.0, 1.0).boxes == [[1, 2, 3, 4]]
