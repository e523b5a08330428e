"""Scenes of the synthetic world: sampling non-overlapping shapes and drawing them with PIL."""

from __future__ import annotations

import functools
import io
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

from visurf.data.synth_config import PALETTE

BACKGROUND = (236, 236, 230)


@dataclass(frozen=True)
class SceneObject:
    color: str
    shape: str
    box: tuple[int, int, int, int]  # x1, y1, x2, y2; x2/y2 exclusive, so the drawn pixels are x1..x2-1

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"

    @property
    def center(self) -> tuple[int, int]:
        x1, y1, x2, y2 = self.box
        return (x1 + x2) // 2, (y1 + y2) // 2

    def label(self) -> dict:
        """The grounding label, keys in canonical order (bbox_2d, then point_2d)."""
        return {"bbox_2d": list(self.box), "point_2d": list(self.center)}


def sample_scene(rng: random.Random, colors, shapes, num: int, size: int, tries: int = 50, grid: int = 0):
    """`num` objects with unique (colour, shape) pairs placed without overlap, or None if placement failed."""
    pairs = [(c, s) for c in colors for s in shapes]
    chosen = rng.sample(pairs, num)
    if grid:
        return [SceneObject(c, s, b) for (c, s), b in zip(chosen, grid_boxes(rng, num, size, grid))]
    lo, hi = max(4, round(0.15 * size)), max(5, round(0.30 * size))
    gap = max(1, size // 40)  # keep shapes visibly apart
    boxes: list[tuple[int, int, int, int]] = []
    for _ in chosen:
        for _ in range(tries):
            side = rng.randint(lo, hi)
            x1, y1 = rng.randint(1, size - side - 1), rng.randint(1, size - side - 1)
            box = (x1, y1, x1 + side, y1 + side)
            if all(_apart(box, other, gap) for other in boxes):
                boxes.append(box)
                break
        else:
            return None
    return [SceneObject(c, s, b) for (c, s), b in zip(chosen, boxes)]


def grid_boxes(rng: random.Random, num: int, size: int, grid: int) -> list[tuple[int, int, int, int]]:
    """One box per distinct cell of a grid x grid layout, inset by a small margin."""
    cell = size // grid
    inset = max(1, cell // 8)
    boxes = []
    for k in rng.sample(range(grid * grid), num):
        x, y = (k % grid) * cell, (k // grid) * cell
        boxes.append((x + inset, y + inset, x + cell - inset, y + cell - inset))
    return boxes


def _apart(a, b, gap: int) -> bool:
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def gradient_background(size: int) -> Image.Image:
    """A light background whose tint changes with x (red) and y (blue).

    A tiny vision encoder has only relative (rotary) positions; the tint gives every patch its
    absolute place in the image, as a large model learns it from data at scale.
    """
    return _gradient(size).copy()  # the caller draws on it


@functools.lru_cache(maxsize=8)
def _gradient(size: int) -> Image.Image:
    # Drawn once per size: pixel by pixel it took most of a world's generation time.
    ramp = [round(255 - 60 * i / max(1, size - 1)) for i in range(size)]
    red = Image.new("L", (size, size))
    red.putdata([ramp[i % size] for i in range(size * size)])
    blue = Image.new("L", (size, size))
    blue.putdata([ramp[i // size] for i in range(size * size)])
    green = Image.new("L", (size, size), 235)
    return Image.merge("RGB", (red, green, blue))


def render_scene(objects, size: int, background: str = "plain") -> Image.Image:
    if background == "gradient":
        image = gradient_background(size)
    else:
        image = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for obj in objects:
        x1, y1, x2, y2 = obj.box
        x2, y2 = x2 - 1, y2 - 1  # PIL's boxes are inclusive
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        fill = PALETTE[obj.color]
        if obj.shape == "circle":
            draw.ellipse((x1, y1, x2, y2), fill=fill)
        elif obj.shape == "square":
            draw.rectangle((x1, y1, x2, y2), fill=fill)
        elif obj.shape == "triangle":
            draw.polygon([(cx, y1), (x2, y2), (x1, y2)], fill=fill)
        elif obj.shape == "diamond":
            draw.polygon([(cx, y1), (x2, cy), (cx, y2), (x1, cy)], fill=fill)
        else:
            raise ValueError(f"unknown shape {obj.shape!r}")
    return image


def colour_at(image: Image.Image, x: int, y: int) -> str | None:
    """The palette colour of the shape at pixel (x, y) (clamped into the image); None on background.

    Shapes are filled with saturated palette colours; the light (tinted) background is far from all.
    """
    x, y = min(max(int(x), 0), image.width - 1), min(max(int(y), 0), image.height - 1)
    pixel = image.convert("RGB").getpixel((x, y))
    distance = {name: sum(abs(a - b) for a, b in zip(rgb, pixel)) for name, rgb in PALETTE.items()}
    nearest = min(distance, key=distance.get)
    return nearest if distance[nearest] < 60 else None


def shape_at(image: Image.Image, x: int, y: int) -> bool:
    """Whether pixel (x, y) (clamped into the image) is a shape's fill rather than background."""
    return colour_at(image, x, y) is not None


def png_bytes(image: Image.Image) -> bytes:
    # PIL writes no timestamps, so the same pixels always give the same bytes.
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
