"""A mixed dataset as files (jsonl + PNG), the layout docs/data.md shows: text-only rows
(`images: []`), one-image rows (`image`) and two-image rows (`images`, each label object naming
its image). Images come in several sizes, so that each label maps with its own image's resize."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

# (width, height) of each image file, and the red square's box in its own pixels
PICTURES = {
    "wide.png": ((224, 112), [20, 10, 120, 60]),
    "tall.png": ((96, 160), [8, 80, 48, 150]),
    "square.png": ((112, 112), [60, 60, 100, 100]),
}


def draw(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (size, box) in PICTURES.items():
        image = Image.new("RGB", size, (230, 230, 230))
        ImageDraw.Draw(image).rectangle(box, fill=(200, 30, 30))
        image.save(folder / name)


def target(name: str, image: int | None = None) -> dict:
    x1, y1, x2, y2 = PICTURES[name][1]
    obj = {"bbox_2d": [x1, y1, x2, y2], "point_2d": [(x1 + x2) // 2, (y1 + y2) // 2]}
    return obj if image is None else obj | {"image": image}


def grounding_rows() -> list[dict]:
    """Six rows, two of each kind (ids end in -text, -one, -two)."""
    return [
        {"id": "q0-text", "problem": "the unicorn", "images": [], "solution": "[]"},
        {
            "id": "q1-one",
            "problem": "the red square",
            "image": "images/wide.png",
            "solution": json.dumps([target("wide.png")]),
        },
        {
            "id": "q2-two",
            "problem": "the red square in <image> or <image>",
            "images": ["images/wide.png", "images/tall.png"],
            "solution": json.dumps([target("tall.png", image=1)]),
        },
        {"id": "q3-text", "problem": "the dragon", "images": [], "solution": "[]"},
        {
            "id": "q4-one",
            "problem": "the red square",
            "image": "images/square.png",
            "solution": json.dumps([target("square.png")]),
        },
        {
            "id": "q5-two",
            "problem": "both red squares",
            "images": ["images/square.png", "images/wide.png"],
            "solution": json.dumps([target("square.png", image=0), target("wide.png", image=1)]),
        },
    ]


# An answer-text label for each row above, per reward that reads one: the red squares shown
ANSWERS = {
    "counting": ["0", "1", "1", "0", "1", "2"],
    "multiple_choice": ["(a)", "B", "b.", "A", "B", "C"],
    "exact_answer": ["0", "1/1", "1.0", "zero", "1", "2"],
}


def write_mixed(folder: Path, reward: str = "grounding") -> Path:
    """train.jsonl and test.jsonl (the same six rows) and images/ in `folder`; the labels are
    boxes (grounding) or the answers of `reward` (ANSWERS)."""
    draw(folder / "images")
    rows = grounding_rows()
    if reward != "grounding":
        rows = [row | {"solution": answer} for row, answer in zip(rows, ANSWERS[reward])]
    for split in ("train", "test"):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder
