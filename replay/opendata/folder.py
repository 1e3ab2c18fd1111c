"""A package folder that appears whole or not at all.

Every file is written into a hidden sibling folder made for this export, fsynced, and the folder is renamed onto the
destination only when complete: a portal or a partner watching the destination never sees half a package, and a
failed export leaves nothing behind. rename(2) replaces a destination that is an empty folder, and refuses one that
holds files, so a folder someone fills while the export runs is never overwritten (see core/atomic.py for the same
guarantees on single files).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from core.atomic import fsync_dir
from replay.errors import ReplayError


@dataclass(frozen=True, slots=True)
class FolderModes:
    """Permissions of the published folder and its files."""

    folder: int
    file: int


PUBLIC = FolderModes(0o755, 0o644)  # open data: published for anyone to read
PRIVATE = FolderModes(0o700, 0o600)  # shared data: for the partner named in the access log only


def check_destination(dest: Path) -> None:
    """A package goes to a new or empty folder: never mixed with, nor written over, other files."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise ReplayError(f"{dest}: exists and is not a folder")
    try:
        if dest.is_dir() and any(dest.iterdir()):
            raise ReplayError(f"{dest}: exists and holds other files (write each package to a new or empty folder)")
    except OSError as exc:
        raise ReplayError(f"{dest}: cannot be read: {exc.strerror or exc}") from None


class StagedFolder:
    """Files written here are published together by `publish()`; leaving the `with` block without it, by an error
    or an interrupt, removes them."""

    def __init__(self, dest: Path, modes: FolderModes):
        check_destination(dest)
        self.dest = dest
        self._modes = modes
        self._published = False
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            # mkdtemp: a new folder of our own (0700), hidden, beside the destination so the rename stays on one disk.
            self.path = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
        except OSError as exc:
            raise ReplayError(f"{dest.parent}: cannot create: {exc.strerror or exc}") from None

    def __enter__(self) -> StagedFolder:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if not self._published:
            shutil.rmtree(self.path, ignore_errors=True)

    def write(self, name: str, data: bytes) -> Path:
        path = self.path / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self._modes.file)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(path, self._modes.file)  # exactly this mode, whatever the umask
        except OSError as exc:
            raise ReplayError(f"{self.dest}: cannot write {name}: {exc.strerror or exc}") from None
        return path

    def publish(self) -> None:
        try:
            os.chmod(self.path, self._modes.folder)
            fsync_dir(self.path)
            os.rename(self.path, self.dest)
            self._published = True
            fsync_dir(self.dest.parent)
        except OSError as exc:
            if not self._published:
                # ENOTEMPTY/EEXIST: someone put files in the destination after the check.
                raise ReplayError(f"{self.dest}: cannot publish: {exc.strerror or exc}") from None
            raise ReplayError(f"{self.dest}: published, but its folder could not be synced: {exc.strerror}") from None
