"""Atomic writes: a file is either its old self or its complete new self, never half of each.

Write to a temporary file in the same directory, flush it to disk, then rename it over the
target. A rename within one filesystem is atomic, so a crash or a kill at any moment leaves
the previous file intact (and at worst a stray `.tmp-*` file, which readers ignore).

    write_json("state.json", state)
    with atomic_path("model.safetensors") as tmp:
        save_file(tensors, tmp)
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside `path`; once the block has written it, move it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{path.name}-", dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        # mkstemp makes the file private, and a writer that replaces it (safetensors does) may too:
        # the result should look like any file written here.
        os.chmod(tmp, 0o666 & ~_UMASK)
        with open(tmp, "rb+") as f:  # the data must be on disk before the rename makes it visible
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_json(path: str | os.PathLike, obj: object, indent: int | None = 1) -> None:
    """JSON-encode `obj` (NaN and infinity refused: they are not JSON), end it with a newline, write it atomically."""
    write_atomic(path, (json.dumps(obj, indent=indent, allow_nan=False) + "\n").encode())


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (POSIX); not possible, and not needed, on every platform."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
