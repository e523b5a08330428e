"""The completions page: rows beside their images, inline, escaped, readable offline."""

from __future__ import annotations

import base64
import io
import json
import re

from PIL import Image

from visurf.runs.completions import THUMBNAIL, Completion, columns, table_rows, write_page


def images_in(html: str) -> list[Image.Image]:
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    return [Image.open(io.BytesIO(base64.b64decode(u))) for u in uris]


def test_a_page_shows_images_inline_once_per_prompt_and_escapes_text(tmp_path):
    big = Image.new("RGB", (1000, 500), (200, 10, 10))
    small = Image.new("RGB", (40, 30), (10, 200, 10))
    rows = [
        Completion("a", "find <b>", [big], "<answer>[]</answer>", {"total": 1.0, "accuracy": 0.0}, -0.5),
        Completion("a", "find <b>", [big], "x & y", {"total": 2.0, "accuracy": 1.0}, 0.5),
        Completion("b", "two", [small, big], "z", {"total": 0.0}, 0.25, is_label=True),
        Completion("c", "what is 2+2?", [], "4", {"total": 1.0}),
    ]
    path = tmp_path / "page.html"
    write_page(path, "step 3", rows)
    html = path.read_text()
    assert "&lt;answer&gt;[]&lt;/answer&gt;" in html and "x &amp; y" in html and "<b>" not in html
    # row 2 shares row 1's image: shown once; row 3 shows its two; the text-only row none
    sizes = [im.size for im in images_in(html)]
    assert sizes == [(THUMBNAIL, THUMBNAIL // 2), (40, 30), (THUMBNAIL, THUMBNAIL // 2)]
    assert html.count("<i>as above</i>") == 1 and html.count("<i>no image</i>") == 1
    assert html.count('<tr class="label">') == 1 and html.count('<tr class="rollout">') == 3
    records = [json.loads(line) for line in path.with_suffix(".jsonl").read_text().splitlines()]
    assert [r["images"] for r in records] == [[[1000, 500]], [[1000, 500]], [[40, 30], [1000, 500]], []]
    assert [r["advantage"] for r in records] == [-0.5, 0.5, 0.25, None]


def test_table_rows_follow_the_columns_with_missing_components_empty():
    rows = [
        Completion("a", "p", [], "t", {"accuracy": 1.0, "total": 2.0}, 1.0),
        Completion("b", "q", [], "u"),
    ]
    assert columns(rows) == [
        "id",
        "prompt",
        "images",
        "completion",
        "total",
        "accuracy",
        "advantage",
        "is_label",
    ]
    assert table_rows(rows, len) == [
        ["a", "p", 0, "t", 2.0, 1.0, 1.0, False],
        ["b", "q", 0, "u", None, None, None, False],
    ]
