"""One way to write a file that readers never see half of, used by every part of vigie that writes one.

The guarantees, all of them every time: the file is created under a hidden temporary name next to its destination,
readable by its owner only (0600) from the first byte, whatever the process umask; it is fsynced, renamed over the
destination, and the folder is fsynced so the rename itself survives a power cut; on any failure the temporary file
is removed and the destination is left as it was. Logs that are only ever appended to (the events' write-ahead log,
the uploader's journal, the access log) cannot be renamed into place; `open_append` gives them the same 0600 from
the first byte and the fsync of their folder when it creates them.

Folders that hold events, clips and state are made with `private_dir`: what it creates is 0700. A folder that was
already there keeps its mode and is warned about if others may enter it. It is not tightened: a configured folder
may be a mount point, a home folder or /tmp, whose mode other software relies on, and changing it behind the
operator's back would be a worse surprise than the warning.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
# What `temp_sibling` names look like, with or without the destination's suffix (`.x.1a2b3c4d.tmp.parquet`). The
# first pattern also matches the `.name.tmp` temporaries of earlier vigie versions, which a crash may have left.
TEMP_GLOBS = (".*.tmp", ".*.tmp.*")

_warned: set[Path] = set()  # folders already warned about in this process: once is enough


class FolderNotSyncedError(OSError):
    """The file is complete and in place, but its folder was not fsynced: a power cut may still undo the rename.
    A caller that would otherwise write the same data again (and so twice) can treat the file as written."""


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def private_dir(root: Path, *parts: str) -> Path:
    """`root / parts…`, created if missing: every level created here is 0700 (root's missing parents too).

    `root` is a folder a config names, `parts` vigie's own layout under it. A root that already exists keeps its
    mode (see the module docstring); if group or others may read or enter it, that is logged once per process.
    Folders below a private root are out of others' reach whatever their own mode, so only the root is checked.
    """
    if root.is_dir():
        _warn_if_open(root)
    else:
        make_private_dirs(root)
    path = root.joinpath(*parts)
    if parts and not path.is_dir():
        make_private_dirs(path)
    return path


def make_private_dirs(path: Path) -> None:
    """Create `path`'s missing levels 0700; levels already there are left as they are, without a word. For writers
    that only know a file's path inside a store whose root is checked elsewhere (`private_dir` says the rest)."""
    missing = []
    level = path
    while not level.is_dir():
        missing.append(level)
        if level.parent == level:
            break
        level = level.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # made by a concurrent writer (the event and operating writers share parents): not ours
        os.chmod(folder, PRIVATE_DIR)  # mkdir's mode passes through the umask; this one must be exact


def _warn_if_open(folder: Path) -> None:
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & 0o077 and folder not in _warned:
        _warned.add(folder)
        log.warning(
            "%s is mode %03o: other users may list or read what vigie keeps there; `chmod 700` it if they should not",
            folder,
            mode,
        )


def temp_sibling(dest: Path) -> Path:
    """A new, empty, hidden file next to `dest`, 0600 from its creation (O_EXCL: never someone else's file).

    Writers that take a path (pyarrow, OpenCV, matplotlib) open it with O_TRUNC, which keeps the mode; the suffix
    is kept because some of them pick the format from it."""
    while True:
        tmp = dest.with_name(f".{dest.stem}.{secrets.token_hex(4)}.tmp{dest.suffix}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        except FileExistsError:
            continue
        try:
            os.fchmod(fd, PRIVATE_FILE)  # a umask wider than 077 (say 0277) would otherwise leave it unwritable
        finally:
            os.close(fd)
        return tmp


def publish(tmp: Path, dest: Path) -> None:
    """fsync `tmp`, rename it to `dest`, fsync the folder (FolderNotSyncedError if only that last step fails)."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, dest)
    try:
        fsync_dir(dest.parent)
    except OSError as exc:
        raise FolderNotSyncedError(exc.errno, f"{dest} written, but its folder not fsynced: {exc.strerror}") from exc


def write_atomic(dest: Path, write: Callable[[Path], object]) -> Path:
    """Let `write` fill a temporary path (for writers that take a path: pyarrow, OpenCV), then publish it.

    `write` must raise when it fails: a writer that only returns False (cv2.imwrite) is checked by its caller."""
    tmp = temp_sibling(dest)
    try:
        write(tmp)
        publish(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)  # on a full disk, half a file holds the very space a retry needs
        raise
    return dest


def write_text_atomic(dest: Path, text: str) -> Path:
    return write_atomic(dest, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def open_append(path: Path, flags: int = os.O_WRONLY) -> int:
    """A descriptor appending to `path` (`flags`: O_WRONLY or O_RDWR), created 0600 if missing. A file created
    here has its folder fsynced, so records later fsynced into it cannot vanish with its name in a power cut. The
    file is vigie's own log, so one left looser by an earlier version is made 0600 too."""
    flags |= os.O_APPEND | os.O_CLOEXEC
    try:
        fd, created = os.open(path, flags | os.O_CREAT | os.O_EXCL, PRIVATE_FILE), True
    except FileExistsError:
        fd, created = os.open(path, flags), False
    try:
        os.fchmod(fd, PRIVATE_FILE)
        if created:
            fsync_dir(path.parent)
    except OSError:
        os.close(fd)
        raise
    return fd


def remove_temps(folder: Path, recursive: bool = False) -> int:
    """Remove the temporary files a killed writer left in `folder` (never renamed, so never read). Only where no
    writer is at work: a live writer's temporary file must not vanish before its rename."""
    removed = 0
    for pattern in TEMP_GLOBS:
        for tmp in folder.rglob(pattern) if recursive else folder.glob(pattern):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed += 1
    return removed
