"""One way to write a file that readers never see half of, used by every part of vigie that writes one.

The guarantees, all of them every time: the file is created under a hidden temporary name next to its destination,
readable by its owner only (0600) from the first byte; it is fsynced, renamed over the destination, and the folder is
fsynced so the rename itself survives a power cut; on any failure the temporary file is removed and the destination
is left as it was. Folders vigie keeps data in are made private (0700).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path) -> Path:
    """Create `path` (and its parents) if needed; the folder itself ends up 0700 either way."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(path, PRIVATE_DIR)
    return path


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_sibling(dest: Path) -> Path:
    """A new, empty, hidden file next to `dest`, 0600 from its creation (O_EXCL: never someone else's file)."""
    while True:
        tmp = dest.with_name(f".{dest.stem}.{secrets.token_hex(4)}.tmp{dest.suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
            return tmp
        except FileExistsError:
            continue


def publish(tmp: Path, dest: Path) -> None:
    """fsync `tmp`, rename it to `dest`, fsync the folder."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, dest)
    fsync_dir(dest.parent)


def write_atomic(dest: Path, write: Callable[[Path], None]) -> Path:
    """Let `write` fill a temporary path (for writers that take a path: pyarrow, OpenCV), then publish it."""
    tmp = temp_sibling(dest)
    try:
        write(tmp)
        publish(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


@contextmanager
def atomic_open(dest: Path, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """`with atomic_open(dest) as fh: fh.write(...)`: published when the block ends without an exception."""
    tmp = temp_sibling(dest)
    try:
        with open(tmp, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
        publish(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_atomic(dest: Path, data: object) -> None:
    with atomic_open(dest, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
