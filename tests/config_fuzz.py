"""Deterministic invalid bus configs for the fuzz tests: each breaks at least one rule, and names the key it breaks.

This module holds the machinery (a TOML writer that escapes what it writes, the base config, one-key edits), the
scalar cases and the files-and-folders cases; tests/config_fuzz_cases.py holds the rest and `invalid_cases()`.

Every case starts from the demo config (made absolute, folders in a scratch directory) and changes one thing, so only
that change can be the reason it is refused: a value of the wrong kind, NaN or an infinity, a value out of range,
degenerate geometry, a bad endpoint, a file where a folder goes, an unknown or missing key, or a file that is not a
config at all (huge, deeply nested, not UTF-8). Nothing is random at test time: the seed is fixed.
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge.config import REPO_ROOT

from .conftest import demo_data

SEED = 14


@dataclass(frozen=True)
class Raw:
    """A TOML fragment written as is (a datetime, `+nan`, a 400-digit integer, deep nesting)."""

    text: str

    def __repr__(self) -> str:
        return self.text if len(self.text) <= 24 else f"{self.text[:20]}…"


@dataclass(frozen=True)
class Case:
    kind: str
    key: str  # the key path the error must name; "" for a file that is not a config at all
    build: Callable[[dict, Path], str | bytes]  # (a copy of the base config, scratch dir) -> the file's content
    label: str = ""

    @property
    def name(self) -> str:
        return f"{self.kind}: {self.key or '<file>'} {self.label}".strip()


# ---------------------------------------------------------------------------------------------------------------------
# A TOML writer that escapes what it writes (strings with newlines, quotes or control characters, odd keys).

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _key(k: str) -> str:
    return k if _BARE.fullmatch(k) else _string(k)


def _string(s: str) -> str:
    out = json.dumps(s, ensure_ascii=False)
    return out.replace("\x7f", "\\u007f")


def _value(v: object) -> str:
    if isinstance(v, Raw):
        return v.text
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == float("inf") else "-inf" if v == float("-inf") else repr(v))
    if isinstance(v, str | Path):
        return _string(str(v))
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def dumps(data: dict, prefix: str = "") -> str:
    lines, tables = [], []
    for k, v in data.items():
        if isinstance(v, dict) and not isinstance(v, Raw):
            tables.append((k, [v], False))
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            tables.append((k, v, True))
        else:
            lines.append(f"{_key(k)} = {_value(v)}")
    out = "\n".join(lines) + "\n"
    for k, items, is_array in tables:
        name = f"{prefix}.{_key(k)}" if prefix else _key(k)
        for item in items:
            out += f"\n[[{name}]]\n" if is_array else f"\n[{name}]\n"
            out += dumps(item, name)
    return out


# ---------------------------------------------------------------------------------------------------------------------
# The base config and one-key edits.


def base_config(scratch: Path) -> dict:
    """The demo config, valid on its own: absolute inputs, every folder under `scratch`, an [upload] table."""
    data = demo_data()
    for cam in data["cameras"]:
        cam["source"] = str(REPO_ROOT / cam["source"])
    data["vehicle"]["log"] = str(REPO_ROOT / data["vehicle"]["log"])
    data["events"]["dir"] = str(scratch / "var" / "events")
    data["recorder"].update(
        dir=str(scratch / "var" / "clips"),
        state_dir=str(scratch / "var" / "state"),
        audit_log=str(scratch / "var" / "audit.log"),
    )
    data["upload"] = {
        "endpoint_url": "http://127.0.0.1:8333",
        "bucket": "vigie-test",
        "state_dir": str(scratch / "var" / "upload"),
        "spool": [
            {"name": "events", "dir": str(scratch / "var" / "events"), "priority": 0, "kind": "metadata"},
            {"name": "clips", "dir": str(scratch / "var" / "clips"), "priority": 10, "kind": "clip"},
        ],
    }
    return data


def parts(path: str) -> list[str | int]:
    return [int(p) if p.isdigit() else p for p in path.replace("]", "").replace("[", ".").split(".")]


_DELETE = object()


def put(data: dict, path: str, value: object) -> None:
    """Set `path` (e.g. cameras[1].zones[0].polygon) to `value`, creating tables on the way; _DELETE removes it."""
    *parents, last = parts(path)
    node: object = data
    for p in parents:
        if isinstance(p, str) and p not in node:  # type: ignore[operator]
            node[p] = {}  # type: ignore[index]
        node = node[p]  # type: ignore[index]
    if value is _DELETE:
        del node[last]  # type: ignore[attr-defined]
    else:
        node[last] = value  # type: ignore[index]


def setting(path: str, value: object, **more: object) -> Callable[[dict, Path], str]:
    def build(data: dict, _: Path) -> str:
        for k, v in {path: value, **more}.items():
            put(data, k, v if v is _DELETE else copy.deepcopy(v))
        return dumps(data)

    return build


def deleting(path: str) -> Callable[[dict, Path], str]:
    return setting(path, _DELETE)


# ---------------------------------------------------------------------------------------------------------------------
# Scalars: wrong kinds, not finite, out of range.

MAX_MB = 1_000_000_000.0  # 1 PB
FLOATS = {  # key: (lowest, highest, lowest excluded)
    "bus.length_m": (0, 30, True),
    "bus.width_m": (0, 4, True),
    "detector.score_threshold": (0, 1, False),
    "detector.min_height": (0, 1, False),
    "tracking.low_score": (0, 1, False),
    "tracking.confirm_s": (0, 5, False),
    "tracking.lost_s": (0, 30, True),
    "alerts.repeat_s": (0, 60, True),
    "policy.side_max_kmh": (0, 130, False),
    "policy.front_max_kmh": (0, 130, False),
    "policy.moving_off_s": (0, 120, False),
    "events.flush_s": (0, 3600, True),
    "events.stay_gap_s": (0, 60, False),
    "detector.idle_fps": (0, 60, False),
    "detector.low_light.below_luma": (0, 255, True),
    "recorder.pre_roll_s": (0, 30, False),
    "recorder.post_roll_s": (0, 30, False),
    "recorder.retention_days": (0, 30, True),
    "recorder.quota_mb": (0, MAX_MB, True),
    "recorder.min_free_mb": (0, MAX_MB, False),
    "recorder.clip_fps": (0, 60, True),
    "cameras[{cam}].fps": (0, 120, True),
    "cameras[{cam}].open_timeout_s": (0, 60, True),
    "cameras[{cam}].read_timeout_s": (0, 60, True),
    "view.raise_s": (0, 2.5, True),
    "view.clear_s": (0, 60, True),
    "view.dark_luma": (0, 255, False),
    "view.detail_min": (0, 255, False),
    "view.contrast_min": (0, 255, False),
    "view.blocked_area": (0, 1, True),
    "view.glare_area": (0, 1, True),
    "view.frozen_change": (0, 255, False),
    "cameras[{cam}].view.blocked_area": (0, 1, True),
    "upload.spool_quota_mb": (0, MAX_MB, True),
    "upload.bandwidth_mbps": (0, 1_000_000, True),
    "upload.multipart_threshold_mb": (5, 5 * 1024 * 1024, False),
    "upload.part_size_mb": (5, 512, False),
    "upload.connect_timeout_s": (0, 120, True),
    "upload.read_timeout_s": (0, 600, True),
    "upload.backoff_base_s": (0, 60, True),
    "upload.backoff_cap_s": (0, 3600, True),
    "upload.poll_s": (0, 3600, True),
}
INTS = {
    "detector.threads": (1, 16),
    "alerts.enter_frames": (1, 100),
    "alerts.clear_frames": (1, 300),
    "events.location_decimals": (0, 3),
    "recorder.nice": (0, 19),
    "upload.workers": (1, 32),
    "upload.once_attempts": (1, 100),
    "upload.spool[0].priority": (0, 100),
}
BOOLS = [
    "alerts.allow_remote",
    "policy.quiet_when_doors_open",
    "vehicle.loop",
    "recorder.enabled",
    "view.enabled",
    "cameras[{cam}].view.enabled",
    "cameras[{cam}].loop",
    "cameras[{cam}].realtime",
]
ENUMS = [
    "alerts.mode",
    "detector.low_light.mode",
    "vehicle.source",
    "recorder.format",
    "recorder.mode",
    "cameras[{cam}].side",
    "upload.addressing_style",
    "upload.spool[1].kind",
]
HUGE = Raw("9" * 400)
WRONG_FOR_NUMBER = [True, False, "0.5", "", [0.5], {"v": 0.5}, Raw("1979-05-27T07:32:00Z"), Raw("07:32:00")]
NOT_FINITE = [float("nan"), float("inf"), float("-inf"), Raw("+nan"), Raw("-nan"), Raw("+inf")]
WRONG_FOR_INT = [True, 2.0, 2.5, "2", [2], float("nan"), HUGE, Raw("0x10000000000000000000")]
WRONG_FOR_BOOL = [1, 0, "true", "false", "yes", 1.0, [True], {"v": True}, Raw("1979-05-27")]
WRONG_FOR_ENUM = ["", "FRONT", 3, True, ["front"], "x" * 1000, " publish", {"v": "zmq"}]


def scalar_cases(rng: random.Random) -> list[Case]:
    cases = []
    for template, (lo, hi, lo_open) in FLOATS.items():
        key = template.format(cam=rng.randrange(4))
        for v in rng.sample(WRONG_FOR_NUMBER, 3):
            cases.append(Case("wrong type", key, setting(key, v), repr(v)))
        for v in rng.sample(NOT_FINITE, 2):
            cases.append(Case("not finite", key, setting(key, v), repr(v)))
        below = lo if lo_open else lo - rng.choice([1e-9, 0.5, 1.0, 1e6])
        above = hi + rng.choice([1e-6 * max(hi, 1), 1.0, 1e6])
        for v in (below, above, rng.choice([1e308, -1e308, HUGE, Raw("-" + HUGE.text)])):
            cases.append(Case("out of range", key, setting(key, v), repr(v)))
    for key, (lo, hi) in INTS.items():
        for v in rng.sample(WRONG_FOR_INT, 3):
            cases.append(Case("wrong type", key, setting(key, v), repr(v)))
        for v in (lo - 1, hi + 1):
            cases.append(Case("out of range", key, setting(key, v), repr(v)))
    for template in BOOLS:
        key = template.format(cam=rng.randrange(4))
        for v in rng.sample(WRONG_FOR_BOOL, 4):
            cases.append(Case("wrong type", key, setting(key, v), repr(v)))
    for template in ENUMS:
        key = template.format(cam=rng.randrange(4))
        for v in rng.sample(WRONG_FOR_ENUM, 4):
            cases.append(Case("wrong value", key, setting(key, v), repr(v)[:40]))
    return cases


NAMES = {  # key: bad values
    "bus.id": ["", "x" * 65, "x" * 300, "bus/01", "bus 01", "bus\n01", "bus\u00e9", "a\u0000b", 7, ["demo"]],
    "cameras[{cam}].name": ["", "x" * 65, "../etc", "front cam", "a\tb", 1.5],
    "cameras[{cam}].zones[0].name": ["", "z" * 65, "line\nbreak", "nul\u0000", "bell\u0007", 3, True],
    "upload.bucket": ["X", "ab", "Bucket", "b" * 64, "bucket_", "-bucket"],
    "upload.prefix": ["a/../b", "a//b", "./a", "p" * 300, "a\nb"],
    "upload.region": ["", "us east 1", "r" * 65, "eu\n"],
    "upload.spool[0].name": ["", "Events", "-x", "e" * 65, "a/b"],
}


def name_cases(rng: random.Random) -> list[Case]:
    cases = []
    for template, values in NAMES.items():
        key = template.format(cam=rng.randrange(4))
        for v in values:
            cases.append(Case("bad name", key, setting(key, v), repr(v)[:40]))
    return cases


# ---------------------------------------------------------------------------------------------------------------------
# Files and folders: a file where a folder goes, a folder where a file goes, missing inputs, bad vehicle logs.

BAD_LOGS = {
    "speed 999": "t,speed_kmh\n0,999\n",
    "NaN speed": "t,speed_kmh\n0,nan\n",
    "time going back": "t,speed_kmh\n0,5\n1,5\n0.5,5\n",
    "no rows": "t,speed_kmh\n",
    "empty file": "",
    "unknown column": "t,speed_kmh,colour\n0,5,red\n",
    "not UTF-8": b"t,speed_kmh\n0,\xff\xfe\n",
    "binary junk": bytes(range(256)) * 4,
}


def _file(scratch: Path, name: str = "a-file", content: str | bytes = "x") -> Path:
    path = scratch / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def file_as(key: str, sub: str = "") -> Callable[[dict, Path], str]:
    def build(data: dict, scratch: Path) -> str:
        put(data, key, str(_file(scratch) / sub) if sub else str(_file(scratch)))
        return dumps(data)

    return build


def folder_as(key: str) -> Callable[[dict, Path], str]:
    def build(data: dict, scratch: Path) -> str:
        (scratch / "a-folder").mkdir(exist_ok=True)
        put(data, key, str(scratch / "a-folder"))
        return dumps(data)

    return build


def log_file(content: str | bytes) -> Callable[[dict, Path], str]:
    def build(data: dict, scratch: Path) -> str:
        put(data, "vehicle.log", str(_file(scratch, "vehicle.csv", content)))
        return dumps(data)

    return build


def path_cases(rng: random.Random) -> list[Case]:
    folders = [
        "events.dir",
        "events.operating_dir",
        "events.health_dir",
        "recorder.dir",
        "recorder.state_dir",
        "upload.state_dir",
        "upload.spool[0].dir",
        "upload.spool[1].dir",
    ]
    cases = []
    for key in folders:
        cases.append(Case("file as folder", key, file_as(key), "a file"))
        cases.append(Case("file as folder", key, file_as(key, "sub/dir"), "under a file"))
        cases.append(Case("bad path", key, setting(key, ""), "empty"))
        cases.append(Case("bad path", key, setting(key, f"/tmp/vigie-\u0000/{key}"), "NUL"))
        cases.append(Case("bad path", key, setting(key, "/tmp/" + "n" * 300 + "/x"), "name too long"))
    cases += [
        Case("file as folder", "recorder.audit_log", folder_as("recorder.audit_log"), "a folder"),
        Case("file as folder", "recorder.audit_log", file_as("recorder.audit_log", "audit.log"), "under a file"),
        Case("missing file", "vehicle.log", setting("vehicle.log", "/nonexistent/vehicle.csv")),
        Case("missing file", "vehicle.log", deleting("vehicle.log"), "source = log without one"),
        Case("missing file", "vehicle.log", folder_as("vehicle.log"), "a folder"),
        Case("missing file", "detector.model", setting("detector.model", "models/nope.onnx")),
        Case("missing file", "detector.model", folder_as("detector.model"), "a folder"),
        Case("missing file", "cameras[1].source", setting("cameras[1].source", "footage/no-such-file.mp4")),
        Case("missing file", "cameras[2].source", folder_as("cameras[2].source"), "a folder"),
        Case("missing file", "upload.ca_bundle", setting("upload.ca_bundle", "/nonexistent/ca.pem")),
        Case("shared folder", "recorder.dir", _same("recorder.dir", "events.dir"), "clips among events"),
        Case("shared folder", "recorder.state_dir", _inside("recorder.state_dir", "events.dir"), "state in events"),
        Case("shared folder", "recorder.dir", _inside("events.dir", "recorder.dir"), "events in clips"),
        Case("shared folder", "events.operating_dir", _same("events.operating_dir", "events.dir"), "operating"),
        Case("shared folder", "events.health_dir", _same("events.health_dir", "events.dir"), "health"),
    ]
    cases += [Case("bad vehicle log", "vehicle.log", log_file(v), k) for k, v in BAD_LOGS.items()]
    return cases


def _same(key: str, other: str) -> Callable[[dict, Path], str]:
    def build(data: dict, _: Path) -> str:
        put(data, key, _get(data, other))
        return dumps(data)

    return build


def _inside(key: str, other: str) -> Callable[[dict, Path], str]:
    def build(data: dict, _: Path) -> str:
        put(data, key, str(Path(_get(data, other)) / "inner"))
        return dumps(data)

    return build


def _get(data: dict, path: str) -> str:
    node: object = data
    for p in parts(path):
        node = node[p]  # type: ignore[index]
    return str(node)
