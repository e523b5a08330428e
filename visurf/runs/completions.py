"""A table of completions beside the images they answer: one row per completion.

A row is a `Completion`: the prompt, its images (none for a text-only row), the completion, its
reward components, its advantage (none in an evaluation) and whether it is the injected label.
`write_page` writes the rows as one HTML page that opens offline: each image inline (base64
PNG, at most `THUMBNAIL` pixels a side), once for the consecutive rows that answer one prompt. `columns`/`table_rows` give the same rows to a tracker (visurf.training.tracking).
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from visurf.io import atomic

THUMBNAIL = 384  # the longer side of an image on the page, in pixels


@dataclass
class Completion:
    id: str
    prompt: str
    images: list  # PIL images, in the prompt's order; [] for a text-only row
    completion: str
    rewards: dict[str, float] = field(default_factory=dict)  # components and `total`; {} when unscored
    advantage: float | None = None  # None where there is none (evaluation, SFT)
    is_label: bool = False

    def record(self) -> dict:
        """The row as JSON (its images as their sizes)."""
        return {
            "id": self.id,
            "prompt": self.prompt,
            "images": [list(image.size) for image in self.images],
            "completion": self.completion,
            "rewards": self.rewards,
            "advantage": self.advantage,
            "is_label": self.is_label,
        }


def reward_names(rows: list[Completion]) -> list[str]:
    """The reward components of the rows, `total` first, in the order they first appear."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row.rewards))
    return sorted(names, key=lambda name: name != "total")


def columns(rows: list[Completion]) -> list[str]:
    return ["id", "prompt", "images", "completion", *reward_names(rows), "advantage", "is_label"]


def table_rows(rows: list[Completion], image=lambda images: images) -> list[list]:
    """The rows as lists in `columns` order; `image` turns a row's image list into the cell a
    tracker shows (e.g. a W&B image)."""
    names = reward_names(rows)
    return [
        [
            r.id,
            r.prompt,
            image(r.images),
            r.completion,
            *(_number(r.rewards.get(n)) for n in names),
            _number(r.advantage),
            r.is_label,
        ]
        for r in rows
    ]


def thumbnail(image: Image.Image) -> Image.Image:
    """The image at most THUMBNAIL pixels a side (a copy; the aspect ratio kept)."""
    image = image.convert("RGB")
    image.thumbnail((THUMBNAIL, THUMBNAIL))
    return image


def data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    thumbnail(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def page(title: str, rows: list[Completion]) -> str:
    """The HTML page of `rows`: a self-contained table, images inline."""
    names = reward_names(rows)
    uris: dict[int, str] = {}  # one encoding per image object: a prompt's G rows share its image

    def cell_images(images) -> str:
        if not images:
            return "<i>no image</i>"
        return "".join(f'<img src="{uris.setdefault(id(im), data_uri(im))}">' for im in images)

    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["id", "prompt", "images", "completion"])
    head += "".join(f"<th>{html.escape(n)}</th>" for n in names) + "<th>advantage</th><th>label</th>"
    body, above = [], None
    for r in rows:
        numbers = "".join(f"<td>{_shown(r.rewards.get(n))}</td>" for n in names)
        same = above is not None and [id(im) for im in r.images] == above  # a prompt's next row
        shown = "<i>as above</i>" if same and r.images else cell_images(r.images)
        above = [id(im) for im in r.images]
        body.append(
            f'<tr class="{"label" if r.is_label else "rollout"}"><td>{html.escape(r.id)}</td>'
            f"<td><pre>{html.escape(r.prompt)}</pre></td><td>{shown}</td>"
            f"<td><pre>{html.escape(r.completion)}</pre></td>{numbers}"
            f"<td>{_shown(r.advantage)}</td><td>{'yes' if r.is_label else ''}</td></tr>"
        )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<table><tr>{head}</tr>{''.join(body)}</table></body></html>\n"
    )


def write_page(path: Path, title: str, rows: list[Completion], records: bool = True) -> None:
    """The HTML page of `rows` at `path`, and (`records`) their records beside it (`.jsonl`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, page(title, rows))
    if not records:
        return
    lines = "".join(json.dumps(r.record()) + "\n" for r in rows)
    atomic.write_text(path.with_suffix(".jsonl"), lines)


def _number(value) -> float | None:
    return None if value is None else float(value)


def _shown(value) -> str:
    return "" if value is None else f"{float(value):.4g}"


_STYLE = (
    "body{font-family:sans-serif}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:4px;vertical-align:top}"
    "pre{white-space:pre-wrap;max-width:40em;margin:0}img{max-width:384px;margin:2px}"
    "tr.label{background:#eef6ee}"
)
