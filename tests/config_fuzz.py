"""Deterministic invalid bus configs for the fuzz tests: each breaks at least one rule, and names the key it breaks.

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


def _parts(path: str) -> list[str | int]:
    return [int(p) if p.isdigit() else p for p in path.replace("]", "").replace("[", ".").split(".")]


_DELETE = object()


def put(data: dict, path: str, value: object) -> None:
    """Set `path` (e.g. cameras[1].zones[0].polygon) to `value`, creating tables on the way; _DELETE removes it."""
    *parents, last = _parts(path)
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
    "recorder.pre_roll_s": (0, 30, False),
    "recorder.post_roll_s": (0, 30, False),
    "recorder.retention_days": (0, 30, True),
    "recorder.quota_mb": (0, MAX_MB, True),
    "recorder.min_free_mb": (0, MAX_MB, False),
    "recorder.clip_fps": (0, 60, True),
    "cameras[{cam}].fps": (0, 120, True),
    "cameras[{cam}].open_timeout_s": (0, 60, True),
    "cameras[{cam}].read_timeout_s": (0, 60, True),
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
    "cameras[{cam}].loop",
    "cameras[{cam}].realtime",
]
ENUMS = [
    "alerts.mode",
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


def _scalar_cases(rng: random.Random) -> list[Case]:
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


def _name_cases(rng: random.Random) -> list[Case]:
    cases = []
    for template, values in NAMES.items():
        key = template.format(cam=rng.randrange(4))
        for v in values:
            cases.append(Case("bad name", key, setting(key, v), repr(v)[:40]))
    return cases


# ---------------------------------------------------------------------------------------------------------------------
# Geometry: zones that never fire (or fire in the wrong place) and calibrations that measure nothing.

NAN, INF = float("nan"), float("inf")
IMAGE_ZONE = "cameras[2].zones[0].polygon"  # the rear camera: an image polygon, no calibration
GROUND_ZONE = "cameras[{cam}].zones[0].ground_polygon"  # front, right, left: ground polygons
BAD_IMAGE_POLYGONS = {
    "two points": [[0.1, 0.1], [0.5, 0.5]],
    "empty": [],
    "NaN": [[0.1, 0.45], [NAN, 0.45], [1.0, 1.0], [0.0, 1.0]],
    "infinite": [[0.1, 0.45], [0.9, INF], [1.0, 1.0], [0.0, 1.0]],
    "outside the image": [[0.1, 0.45], [0.9, 0.45], [1.0, 1.5], [0.0, 1.0]],
    "negative": [[-0.1, 0.45], [0.9, 0.45], [1.0, 1.0], [0.0, 1.0]],
    "collinear": [[0.0, 0.0], [0.5, 0.5], [1.0, 1.0]],
    "all one point": [[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]],
    "repeated point": [[0.1, 0.45], [0.9, 0.45], [0.9, 0.45], [0.0, 1.0]],
    "bow-tie": [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]],
    "zero area": [[0.2, 0.2], [0.2, 0.2000001], [0.2000001, 0.2]],
    "tiny": [[0.5, 0.5], [0.501, 0.5], [0.501, 0.501], [0.5, 0.501]],
    "spike": [[0.0, 0.5], [1.0, 0.5], [0.5, 0.5], [0.5, 1.0]],
    "crossing back": [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.5], [1.0, 0.5], [0.0, 1.0]],
    "too many points": [[0.5 + 0.4 * (i % 2), i / 100] for i in range(100)],
    "points of three": [[0.1, 0.45, 0.0], [0.9, 0.45, 0.0], [1.0, 1.0, 0.0]],
    "numbers not points": [0.1, 0.45, 0.9, 0.45, 1.0, 1.0],
    "strings": [["0.1", "0.45"], ["0.9", "0.45"], ["1", "1"]],
    "booleans": [[True, False], [False, True], [True, True]],
    "a table": {"x": [0.1, 0.9, 1.0], "y": [0.45, 0.45, 1.0]},
}
BAD_GROUND_POLYGONS = {
    "two points": [[0.0, 1.8], [3.7, 1.8]],
    "NaN": [[0.0, 1.8], [0.0, -1.8], [3.7, NAN], [3.7, 1.8]],
    "infinite": [[0.0, 1.8], [-INF, -1.8], [3.7, -1.8], [3.7, 1.8]],
    "millimetres": [[0.0, 1800.0], [0.0, -1800.0], [3700.0, -1800.0], [3700.0, 1800.0]],
    "1e300": [[0.0, 1e300], [0.0, -1e300], [1e300, 0.0]],
    "collinear": [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]],
    "zero area": [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]],
    "bow-tie": [[0.0, 1.8], [3.7, -1.8], [3.7, 1.8], [0.0, -1.8]],
    "tiny": [[0.0, 0.0], [0.05, 0.0], [0.05, 0.05], [0.0, 0.05]],
    "repeated point": [[0.0, 1.8], [0.0, -1.8], [0.0, 1.8], [3.7, 1.8]],
}
SQUARE = [[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
FRONT_GROUND = [[0.3, 2.0], [0.3, -2.0], [8.0, -5.0], [8.0, 5.0]]
BAD_CALIBRATIONS = {  # (image, ground)
    "three pairs": (SQUARE[:3], FRONT_GROUND[:3]),
    "counts differ": (SQUARE, [*FRONT_GROUND, [9.0, 0.0]]),
    "identical image points": ([[0.5, 0.5]] * 4, FRONT_GROUND),
    "identical ground points": (SQUARE, [[1.0, 1.0]] * 4),
    "a repeated image point": ([SQUARE[0], SQUARE[0], SQUARE[2], SQUARE[3]], FRONT_GROUND),
    "collinear image points": ([[0.0, 0.0], [0.3, 0.3], [0.6, 0.6], [1.0, 1.0]], FRONT_GROUND),
    "collinear ground points": (SQUARE, [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]),
    "three image points on a line": ([[0.0, 0.0], [0.5, 0.0], [1.0, 0.0], [0.5, 1.0]], FRONT_GROUND),
    "nearly collinear image points": ([[0.0, 0.0], [0.33, 0.33001], [0.66, 0.66], [1.0, 1.0]], FRONT_GROUND),
    "pairs swapped": (SQUARE, [FRONT_GROUND[1], FRONT_GROUND[0], FRONT_GROUND[2], FRONT_GROUND[3]]),
    "NaN ground": (SQUARE, [[0.3, 2.0], [0.3, NAN], [8.0, -5.0], [8.0, 5.0]]),
    "infinite ground": (SQUARE, [[0.3, 2.0], [0.3, -2.0], [INF, -5.0], [8.0, 5.0]]),
    "image outside 0..1": ([[0.0, 1.0], [1.0, 1.0], [1.0, -0.5], [0.0, 0.0]], FRONT_GROUND),
    "ground in millimetres": (SQUARE, [[300.0, 2000.0], [300.0, -2000.0], [8000.0, -5000.0], [8000.0, 5000.0]]),
    "boolean image point": ([[True, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]], FRONT_GROUND),
}


def _geometry_cases(rng: random.Random) -> list[Case]:
    cases = [Case("geometry", IMAGE_ZONE, setting(IMAGE_ZONE, v), k) for k, v in BAD_IMAGE_POLYGONS.items()]
    for label, v in BAD_GROUND_POLYGONS.items():
        key = GROUND_ZONE.format(cam=rng.choice([0, 1, 3]))
        cases.append(Case("geometry", key, setting(key, v), label))
    for label, (image, ground) in BAD_CALIBRATIONS.items():
        cam = rng.choice([0, 1, 3])
        key = f"cameras[{cam}].calibration"
        cases.append(Case("geometry", key, setting(f"{key}.image", image, **{f"{key}.ground": ground}), label))
    both = "cameras[2].zones[0].ground_polygon"
    cases += [
        Case("geometry", "cameras[2].zones[0].polygon", setting(both, [[0.0, 1.8], [0.0, -1.8], [3.7, 0.0]]), "both"),
        Case("geometry", "cameras[2].zones[0].polygon", deleting(IMAGE_ZONE), "neither polygon"),
        Case("geometry", "cameras[1].zones[0].ground_polygon", deleting("cameras[1].calibration"), "no calibration"),
        Case("geometry", "cameras[0].calibration.ground", deleting("cameras[0].calibration.ground"), "no ground"),
    ]
    return cases


# ---------------------------------------------------------------------------------------------------------------------
# Endpoints and camera sources.

BAD_ALERT_ENDPOINTS = [
    "tcp://127.0.0.1",
    "tcp://127.0.0.1:0",
    "tcp://127.0.0.1:65536",
    "tcp://127.0.0.1:99999",
    "tcp://127.0.0.1:http",
    "tcp://127.0.0.1:-1",
    "tcp://:5560",
    "tcp://0.0.0.0:5560",
    "tcp://*:5560",
    "tcp://192.168.1.10:5560",
    "tcp://[::1:5560",
    "tcp://999.1.1.1:5560",
    "tcp://127.0.0.1:5560\n",
    "tcp://127.0.0.1:\uff15\uff15\uff16\uff10",
    "udp://127.0.0.1:5560",
    "http://127.0.0.1:5560",
    "127.0.0.1:5560",
    "",
    "ipc://",
    "ipc:///tmp/" + "s" * 200,
    "inproc://",
    "tcp://127.0.0.1:5560" + " " * 300,
]
BAD_VEHICLE_ENDPOINTS = [
    "tcp://127.0.0.1",
    "tcp://127.0.0.1:0",
    "tcp://gateway:70000",
    "tcp://*:5561",
    "tcp://bad host:5561",
    "inproc://vehicle",
    "can0",
    "ipc://",
    "tcp://[zz::1]:5561",
]
BAD_SOURCES = [
    "ftp://camera/stream",
    "rtsp://",
    "rtsp://:554/stream",
    "rtsp://10.0.0.1:99999/stream",
    "rtsp://10.0.0.1:port/stream",
    "http://[::1/mjpeg",
    "rtsp://bad_host!/stream",
    "rtsp://10.0.0.1/stream\nx",
    "file:///etc/passwd",
]
BAD_UPLOAD_URLS = ["s3.city.example", "https://", "https://host:0", "https://host:abc/", "ftp://host", "https://a b"]


def _own_alerts_as_vehicle_feed(data: dict, _: Path) -> str:
    data["vehicle"].update(source="zmq", endpoint=data["alerts"]["endpoint"])
    return dumps(data)


def _endpoint_cases(rng: random.Random) -> list[Case]:
    cases = [Case("endpoint", "alerts.endpoint", setting("alerts.endpoint", v), repr(v)) for v in BAD_ALERT_ENDPOINTS]
    for v in BAD_VEHICLE_ENDPOINTS:
        cases.append(Case("endpoint", "vehicle.endpoint", setting("vehicle.endpoint", v, **{"vehicle.source": "zmq"})))
    cases.append(Case("endpoint", "vehicle.endpoint", _own_alerts_as_vehicle_feed, "same as alerts"))
    for v in BAD_SOURCES:
        key = f"cameras[{rng.randrange(4)}].source"
        cases.append(Case("endpoint", key, setting(key, v), repr(v)))
    cases += [Case("endpoint", "upload.endpoint_url", setting("upload.endpoint_url", v), v) for v in BAD_UPLOAD_URLS]
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


def _file_as(key: str, sub: str = "") -> Callable[[dict, Path], str]:
    def build(data: dict, scratch: Path) -> str:
        put(data, key, str(_file(scratch) / sub) if sub else str(_file(scratch)))
        return dumps(data)

    return build


def _folder_as(key: str) -> Callable[[dict, Path], str]:
    def build(data: dict, scratch: Path) -> str:
        (scratch / "a-folder").mkdir(exist_ok=True)
        put(data, key, str(scratch / "a-folder"))
        return dumps(data)

    return build


def _log(content: str | bytes) -> Callable[[dict, Path], str]:
    def build(data: dict, scratch: Path) -> str:
        put(data, "vehicle.log", str(_file(scratch, "vehicle.csv", content)))
        return dumps(data)

    return build


def _path_cases(rng: random.Random) -> list[Case]:
    folders = [
        "events.dir",
        "events.operating_dir",
        "recorder.dir",
        "recorder.state_dir",
        "upload.state_dir",
        "upload.spool[0].dir",
        "upload.spool[1].dir",
    ]
    cases = []
    for key in folders:
        cases.append(Case("file as folder", key, _file_as(key), "a file"))
        cases.append(Case("file as folder", key, _file_as(key, "sub/dir"), "under a file"))
        cases.append(Case("bad path", key, setting(key, ""), "empty"))
        cases.append(Case("bad path", key, setting(key, f"/tmp/vigie-\u0000/{key}"), "NUL"))
        cases.append(Case("bad path", key, setting(key, "/tmp/" + "n" * 300 + "/x"), "name too long"))
    cases += [
        Case("file as folder", "recorder.audit_log", _folder_as("recorder.audit_log"), "a folder"),
        Case("file as folder", "recorder.audit_log", _file_as("recorder.audit_log", "audit.log"), "under a file"),
        Case("missing file", "vehicle.log", setting("vehicle.log", "/nonexistent/vehicle.csv")),
        Case("missing file", "vehicle.log", deleting("vehicle.log"), "source = log without one"),
        Case("missing file", "vehicle.log", _folder_as("vehicle.log"), "a folder"),
        Case("missing file", "detector.model", setting("detector.model", "models/nope.onnx")),
        Case("missing file", "detector.model", _folder_as("detector.model"), "a folder"),
        Case("missing file", "cameras[1].source", setting("cameras[1].source", "footage/no-such-file.mp4")),
        Case("missing file", "cameras[2].source", _folder_as("cameras[2].source"), "a folder"),
        Case("missing file", "upload.ca_bundle", setting("upload.ca_bundle", "/nonexistent/ca.pem")),
        Case("shared folder", "recorder.dir", _same("recorder.dir", "events.dir"), "clips among events"),
        Case("shared folder", "recorder.state_dir", _inside("recorder.state_dir", "events.dir"), "state in events"),
        Case("shared folder", "recorder.dir", _inside("events.dir", "recorder.dir"), "events in clips"),
        Case("shared folder", "events.operating_dir", _same("events.operating_dir", "events.dir"), "operating"),
    ]
    cases += [Case("bad vehicle log", "vehicle.log", _log(v), k) for k, v in BAD_LOGS.items()]
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
    for p in _parts(path):
        node = node[p]  # type: ignore[index]
    return str(node)


# ---------------------------------------------------------------------------------------------------------------------
# Keys: unknown, missing, repeated rules across keys.

TABLES = [
    "",
    "bus",
    "detector",
    "tracking",
    "alerts",
    "policy",
    "vehicle",
    "events",
    "recorder",
    "cameras[{cam}]",
    "cameras[{cam}].zones[0]",
    "cameras[0].calibration",
    "upload",
    "upload.spool[0]",
]
ODD_KEYS = ["colour", "line\nbreak", "k" * 300, "", "clé", "score-threshold", "Threads"]
PLAIN_ODD_KEYS = ["colour", "score-threshold", "Threads"]  # at the top level the error's key path is the key itself


def _key_cases(rng: random.Random) -> list[Case]:
    cases = []
    for template in TABLES:
        table = template.format(cam=rng.randrange(4))
        for k in rng.sample(ODD_KEYS if table else PLAIN_ODD_KEYS, 2):
            cases.append(Case("unknown key", table or k, _unknown(table, k), repr(k)[:30]))
    missing = [
        "bus.id",
        "bus",
        "cameras",
        "cameras[{cam}].name",
        "cameras[{cam}].side",
        "cameras[{cam}].source",
        "cameras[{cam}].zones",
        "cameras[{cam}].zones[0].name",
        "cameras[0].calibration.image",
    ]
    for template in missing:
        key = template.format(cam=rng.randrange(4))
        cases.append(Case("missing key", key, deleting(key)))
    cases += [
        Case(
            "cross-field", "tracking.low_score", setting("tracking.low_score", 0.5, **{"detector.score_threshold": 0.4})
        ),
        Case("cross-field", "cameras", setting("cameras[1].name", "front"), "duplicate camera"),
        Case("cross-field", "cameras[0].zones", _dup_zone(0), "duplicate zone"),
        Case("cross-field", "cameras", _cameras(lambda cams: [*cams, *cams, *cams][:9]), "nine cameras"),
        Case("cross-field", "cameras", _cameras(lambda cams: []), "no camera"),
        Case("cross-field", "cameras[1].zones", setting("cameras[1].zones", []), "no zone"),
        Case("cross-field", "cameras[2].zones", _many_zones(2, 17), "seventeen zones"),
        Case("cross-field", "upload.spool", setting("upload.spool[1].name", "events"), "duplicate spool"),
        Case("cross-field", "upload.spool", setting("upload.spool", []), "no spool"),
        Case("wrong type", "cameras", setting("cameras", {"name": "front"}), "a table"),
        Case("wrong type", "bus", setting("bus", "demo-01"), "a string"),
        Case("wrong type", "upload", setting("upload", [1, 2]), "an array"),
    ]
    return cases


def _unknown(table: str, k: str) -> Callable[[dict, Path], str]:
    def build(data: dict, _: Path) -> str:
        put(data, f"{table}.x" if table else "x", 1)  # make sure the table exists, then swap the key
        node: dict = data
        for p in _parts(table) if table else []:
            node = node[p]  # type: ignore[index]
        del node["x"]
        node[k] = 1
        return dumps(data)

    return build


def _dup_zone(cam: int) -> Callable[[dict, Path], str]:
    def build(data: dict, _: Path) -> str:
        zones = data["cameras"][cam]["zones"]
        zones.append(copy.deepcopy(zones[0]))
        return dumps(data)

    return build


def _many_zones(cam: int, n: int) -> Callable[[dict, Path], str]:
    def build(data: dict, _: Path) -> str:
        zone = data["cameras"][cam]["zones"][0]
        data["cameras"][cam]["zones"] = [{**copy.deepcopy(zone), "name": f"z{i}"} for i in range(n)]
        return dumps(data)

    return build


def _cameras(change: Callable[[list], list]) -> Callable[[dict, Path], str]:
    def build(data: dict, _: Path) -> str:
        cams = change(data["cameras"])
        data["cameras"] = [{**copy.deepcopy(c), "name": f"c{i}"} for i, c in enumerate(cams)]
        return dumps(data)

    return build


# ---------------------------------------------------------------------------------------------------------------------
# Files that are not configs: too big, too deep, not UTF-8, not TOML.


def _text(make: Callable[[dict], str | bytes]) -> Callable[[dict, Path], str | bytes]:
    return lambda data, _: make(data)


def _deep(depth: int, opener: str, closer: str, where: str = "bus.extra") -> Callable[[dict, Path], str]:
    def build(data: dict, _: Path) -> str:
        put(data, where, Raw(opener * depth + "1" + closer * depth))
        return dumps(data)

    return build


def _file_cases(rng: random.Random) -> list[Case]:
    huge_comment = "# " + "x" * 100 + "\n"
    cases = [
        Case("deep TOML", "", _deep(100_000, "[", "]"), "100 000 nested arrays"),
        Case("deep TOML", "", _deep(5_000, "[", "]", "cameras[0].zones[0].polygon"), "5 000 nested arrays"),
        Case("deep TOML", "", _deep(2_000, "{a = ", "}"), "2 000 nested inline tables"),
        Case("deep TOML", "", _deep(3_000, "[", "]", "detector.score_threshold"), "3 000 nested arrays"),
        Case("deep TOML", "bus", _deep(100, "[", "]"), "100 nested arrays (parsed, then refused)"),
        Case("huge TOML", "", _text(lambda d: dumps(d) + huge_comment * 11_000), "1.1 MB of comments"),
        Case("huge TOML", "", _text(lambda d: dumps(d) + "x = [" + "1," * 600_000 + "]\n"), "600 000 numbers"),
        Case("huge TOML", "", _text(lambda d: "a = 1\n" * 200_000), "200 000 lines"),
        Case("huge TOML", "bus", _text(lambda d: "\n".join(f"k{i} = {i}" for i in range(5_000))), "5 000 keys"),
        Case("not TOML", "", _text(lambda d: dumps(d).encode() + b"\n# \xff\xfe\n"), "not UTF-8"),
        Case("not TOML", "", _text(lambda d: dumps(d) + "\n[bus]\nid = 'again'\n"), "table twice"),
        Case(
            "not TOML", "", _text(lambda d: dumps(d).replace('id = "demo-01"', 'id = "demo-01"\nid = "x"')), "key twice"
        ),
        Case("not TOML", "", _text(lambda d: "this is = = not toml"), "garbage"),
        Case("not TOML", "", _text(lambda d: dumps(d)[: len(dumps(d)) // 2] + "[[cameras"), "cut off"),
        Case("not TOML", "", _text(lambda d: b"\x00" * 100), "NUL bytes"),
        Case("not TOML", "bus", _text(lambda d: ""), "empty file"),
        Case("not TOML", "", _text(lambda d: json.dumps(d)), "JSON"),
    ]
    return cases


def issue_cases() -> list[Case]:
    """What issue 14 found: configs check-config accepted that crashed `run`, or ran silently wrong."""
    cal, zone = "cameras[1].calibration", "cameras[1].zones[0].ground_polygon"
    return [
        Case("issue 14", "recorder.quota_mb", setting("recorder.quota_mb", float("inf")), "infinite quota"),
        Case("issue 14", cal, setting(f"{cal}.image", [[0.5, 0.5]] * 4), "identical calibration points"),
        Case("issue 14", "vehicle.log", _log("t,speed_kmh\n0,1e308\n"), "bad vehicle log"),
        Case("issue 14", "vehicle.endpoint", setting("vehicle.source", "zmq", **{"vehicle.endpoint": "bogus"})),
        Case("issue 14", cal, setting(f"{cal}.ground", [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]), "collinear"),
        Case("issue 14", zone, setting(zone, BAD_GROUND_POLYGONS["NaN"]), "NaN zone"),
        Case("issue 14", zone, setting(zone, BAD_GROUND_POLYGONS["infinite"]), "infinite zone"),
        Case("issue 14", IMAGE_ZONE, setting(IMAGE_ZONE, BAD_IMAGE_POLYGONS["zero area"]), "zero-area zone"),
        Case("issue 14", "detector.score_threshold", setting("detector.score_threshold", True), "true"),
        Case("issue 14", "bus.id", setting("bus.id", "b" * 300), "300 characters"),
        Case("issue 14", "events.dir", _file_as("events.dir"), "a file"),
        Case("issue 14", "", _deep(100_000, "[", "]"), "deeply nested TOML"),
    ]


def invalid_cases() -> list[Case]:
    """Every invalid config of the fuzz suite, in a fixed order."""
    rng = random.Random(SEED)
    return [
        *issue_cases(),
        *_scalar_cases(rng),
        *_name_cases(rng),
        *_geometry_cases(rng),
        *_endpoint_cases(rng),
        *_path_cases(rng),
        *_key_cases(rng),
        *_file_cases(rng),
    ]
