"""The access log: every read of a clip through vigie's tools leaves one line (who, what, when, why).

French practice for cameras in public space asks that every access to recordings be traceable. The log is
append-only JSON lines, created 0600 in a folder created 0700; a tool that cannot write it refuses to show the clip.
"""

from __future__ import annotations

import getpass
import json
import os
import time
from pathlib import Path

from core.atomic import open_append, private_dir


class AuditError(Exception):
    pass


def record_access(log_path: Path, clip: Path, action: str, reason: str) -> None:
    if not reason.strip():
        raise AuditError("a reason is required to open a clip (--reason)")
    line = json.dumps(
        {
            "ts": round(time.time(), 3),
            "user": getpass.getuser(),
            "action": action,
            "clip": str(clip),
            "reason": reason.strip(),
        },
        ensure_ascii=False,
    )
    try:
        private_dir(log_path.parent)
        fd = open_append(log_path)
    except OSError as exc:
        raise AuditError(f"cannot write the access log {log_path}: {exc.strerror}") from None
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def read_log(log_path: Path) -> list[dict]:
    if not log_path.exists():
        return []
    return [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines() if line.strip()]
