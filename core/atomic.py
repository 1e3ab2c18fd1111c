"""One way to write a file that readers never see half of, used by every part of vigie that writes one.

The guarantees, all of them every time: the file is created under a hidden temporary name next to its destination,
readable by its owner only (0600) from the first byte; it is fsynced, renamed over the destination, and the folder is
fsynced so the rename itself survives a power cut; on any failure the temporary file is removed and the destination
is left as it was.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

PRIVATE_FILE = 0o600


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


def write_atomic(dest: Path, write: Callable[[Path], object]) -> Path:
    """Let `write` fill a temporary path (for writers that take a path: pyarrow, OpenCV), then publish it."""
    tmp = temp_sibling(dest)
    try:
        write(tmp)
        publish(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest
