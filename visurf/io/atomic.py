"""Writing files and directories so that a reader sees the old version or the new one, never a part.

Everything is written to a temporary name in the destination's own directory and renamed into
place (`os.replace`, atomic within one filesystem). A temporary file elsewhere (`$TMPDIR`) would
make the final move a copy across filesystems, which a kill can leave half done.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

TMP_MARK = ".tmp-"  # temporary names: .<name>.tmp-<pid>


def temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")


def fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_tree(path: Path) -> None:
    for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
        with open(file, "rb+") as f:
            os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path beside `path` to write a file or a directory to; on success it
    replaces `path` whole. On an exception the temporary is removed and `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    _remove(tmp)
    try:
        yield tmp
        _fsync_tree(tmp)
        if tmp.is_dir() and path.exists():
            # rename(2) cannot replace a non-empty directory: move the old one aside first. A kill
            # between the two renames leaves no `path` (and the old copy aside), never a half one.
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            _remove(old)
            os.replace(path, old)
            os.replace(tmp, path)
            _remove(old)
        else:
            os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        _remove(tmp)


def write_text(path: str | Path, text: str) -> None:
    """`path.write_text(text)`, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def remove_leftovers(folder: Path, name: str) -> None:
    """Remove the temporaries a killed process left for `folder/name` (any pid)."""
    for stale in list(folder.glob(f".{name}{TMP_MARK}*")) + list(folder.glob(f".{name}.old-*")):
        _remove(stale)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
