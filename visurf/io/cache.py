"""Where visurf keeps what it builds on first use (tiny models, the base model, synthetic data)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path


def cache_dir() -> Path:
    """`$VISURF_CACHE`, default `~/.cache/visurf`."""
    return Path(os.environ.get("VISURF_CACHE", Path.home() / ".cache" / "visurf")).expanduser()


def recipe_key(recipe: dict) -> str:
    """A short stable hash of a recipe, so a changed recipe gets its own cache entry."""
    blob = json.dumps(recipe, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


COMPLETE = ".visurf-complete"  # written last into an entry: without it the entry does not count


def is_complete(entry: Path) -> bool:
    """Whether a cache entry was built to the end (an interrupted build leaves no marker)."""
    return (Path(entry) / COMPLETE).is_file()


def build_entry(entry: str | Path, build: Callable[[Path], object]) -> Path:
    """The cache entry `entry`, built by `build(folder)` first unless a complete one exists.

    Under a file lock (concurrent runs build it once), `build` makes the temporary folder it is
    given (beside the entry; it does not exist yet); the completion marker is written into it
    last and the folder is renamed into place. A build killed at any point leaves no entry that
    counts: the next call rebuilds it, replacing whatever an interrupted build left there.
    """
    from filelock import FileLock

    from visurf.io.atomic import atomic_path, remove_leftovers

    entry = Path(entry)
    entry.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(entry) + ".lock"):
        if is_complete(entry):
            return entry
        remove_leftovers(entry.parent, entry.name)  # a killed build's temporaries (we hold the lock)
        with atomic_path(entry) as tmp:
            build(tmp)  # creates the folder (e.g. by copytree) or writes into it
            tmp.mkdir(exist_ok=True)
            (tmp / COMPLETE).write_text(json.dumps({"built": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")
    return entry
