"""Where visurf keeps what it builds on first use (tiny models, the base model, synthetic data)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def cache_dir() -> Path:
    """`$VISURF_CACHE`, default `~/.cache/visurf`."""
    return Path(os.environ.get("VISURF_CACHE", Path.home() / ".cache" / "visurf")).expanduser()


def recipe_key(recipe: dict) -> str:
    """A short stable hash of a recipe, so a changed recipe gets its own cache entry."""
    blob = json.dumps(recipe, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
