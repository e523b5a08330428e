"""A row's images: one in `image`, or a list in `images` (`[]`: a text-only row).

`image` is the ViSurf schema's column; `images`, a list, is the one TRL, ms-swift and EasyR1
datasets use for several images per prompt. A split may have either column or both (a jsonl file
mixing rows of each kind has both, with null where a row does not use one); a row gives exactly
one of them. A text-only row says so with `images: []`: a missing `image` stays an error, so a
lost image never turns a row into a question without one.

The prompt places the images at its `<image>` markers: one marker per image, one marker for all
of them, or none (the images come first). Markers in the problem take the place of the
template's. Any other count is a bad row, named before training starts.
"""

from __future__ import annotations

from collections.abc import Mapping

from visurf.data.prompt import IMAGE

IMAGE_COLUMNS = ("image", "images")


def stored_images(row: Mapping) -> tuple[list, bool]:
    """(the row's stored image values in order, whether they were given as a list in `images`);
    ValueError saying what is wrong. Values are whatever the split stores (decoded later)."""
    images, image = row.get("images"), row.get("image")
    if images is not None:
        if image is not None:
            raise ValueError("the row gives both image and images: one image, or a list of them")
        if isinstance(images, (str, bytes, Mapping)) or not hasattr(images, "__iter__"):
            raise ValueError(f"images must be a list of images ([] for a text-only row), got {images!r:.80}")
        images = list(images)
        for k, value in enumerate(images):
            if value is None:
                raise ValueError(f"images[{k}] is missing")
        return images, True
    if not any(c in row for c in IMAGE_COLUMNS):
        raise ValueError(
            "missing required column(s) ['image'] (or 'images': a list of images, [] for a text-only row)"
        )
    if image is None:
        raise ValueError("image is missing (a text-only row gives images: [])")
    return [image], False


def image_label(k: int, listed: bool) -> str:
    """How messages name image k of a row: `images[k]` in a list, else `image`."""
    return f"images[{k}]" if listed else "image"


def check_markers(prompt: str, count: int) -> None:
    """ValueError unless the prompt's `<image>` markers can place `count` images: none, one (all
    there), or one per image. A text-only prompt may keep one (a template's), which is dropped."""
    markers = prompt.count(IMAGE)
    if markers in (0, 1, count):
        return
    raise ValueError(
        f"the prompt has {markers} {IMAGE} markers for {count} image{'' if count == 1 else 's'}: "
        f"give one marker per image, one for all of them, or none (images first)"
    )
