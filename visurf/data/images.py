"""Decoding dataset images (PIL image, bytes, {"bytes", "path"} dict or file path) and resizing them."""

from __future__ import annotations

import io
import os

from PIL import Image


def decode_image(value) -> Image.Image:
    """An RGB PIL image; ValueError saying why when the image is missing or unreadable."""
    if isinstance(value, Image.Image):
        return to_rgb(value)
    value = _stored(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _open(io.BytesIO(bytes(value)), "image bytes")
    if isinstance(value, (str, os.PathLike)):
        return _open(value, f"image file {os.fspath(value)}")
    if value is None:
        raise ValueError("image is missing")
    raise ValueError(f"image has an unsupported type {type(value).__name__}")


def _stored(value):
    """What a stored image holds: a `{"bytes", "path"}` dict's bytes or path, other values as
    they are; ValueError for a dict with neither or a path that is not a file."""
    if isinstance(value, dict):
        value = value["bytes"] if value.get("bytes") is not None else value.get("path") or None
        if value is None:
            raise ValueError("image is missing (neither bytes nor path)")
    if isinstance(value, (str, os.PathLike)) and not os.path.isfile(value):
        raise ValueError(f"image file not found: {os.fspath(value)}")
    return value


HEADER_BYTES = 1 << 16  # enough for the size of a PNG or JPEG (EXIF and ICC blocks included)


def image_size(value) -> tuple[int, int]:
    """(width, height) of a stored image from its header, without decoding its pixels: a
    `{"bytes", "path"}` dict (bytes may be a zero-copy arrow buffer), bytes or a file path.
    ValueError as `decode_image` gives, when the header cannot be read."""
    if isinstance(value, Image.Image):
        return value.size
    value = _stored(value)
    if isinstance(value, (str, os.PathLike)):
        return _header(value, f"image file {os.fspath(value)}")
    if value is None:
        raise ValueError("image is missing")
    try:
        view = memoryview(value)
    except TypeError:
        raise ValueError(f"image has an unsupported type {type(value).__name__}") from None
    try:
        return _header(io.BytesIO(bytes(view[:HEADER_BYTES])), "image bytes")
    except ValueError:
        return _header(io.BytesIO(bytes(view)), "image bytes")  # a header past the first 64 KiB


def _header(source, what: str) -> tuple[int, int]:
    try:
        with Image.open(source) as img:
            return img.size
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"corrupt image: {what} could not be read ({err})") from None


def _open(source, what: str) -> Image.Image:
    try:
        with Image.open(source) as img:
            img.load()  # decode now, so a truncated or corrupt file fails here and not later
            return to_rgb(img)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"corrupt image: {what} could not be decoded ({err})") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB, 8 bits a channel. 16-bit grayscale (modes I;16* and I, as PIL opens 16-bit PNG and
    TIFF) is scaled from 0..65535: PIL's own convert clips at 255, which turns it almost white."""
    if image.mode.startswith("I;16") or image.mode == "I":
        import numpy as np

        values = np.asarray(image, dtype=np.float64)
        gray = np.clip(np.rint(values * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    return image.convert("RGB")


def resize_image(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to (width, height), bilinear, as the label scaling assumes."""
    if image.size == tuple(size):
        return image
    return image.resize(tuple(size), Image.Resampling.BILINEAR)
