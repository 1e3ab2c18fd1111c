"""The structural cases of the config fuzz: geometry, endpoints, keys, and files that are not configs at all, plus
what issue 14 found; `invalid_cases()` gathers every case of both modules in a fixed order."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from pathlib import Path

from .config_fuzz import (
    SEED,
    Case,
    Raw,
    deleting,
    dumps,
    file_as,
    log_file,
    name_cases,
    parts,
    path_cases,
    put,
    scalar_cases,
    setting,
)

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
# Keys: unknown, missing, repeated rules across keys.

TABLES = [
    "",
    "bus",
    "detector",
    "detector.low_light",
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
        for p in parts(table) if table else []:
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
        Case("issue 14", "vehicle.log", log_file("t,speed_kmh\n0,1e308\n"), "bad vehicle log"),
        Case("issue 14", "vehicle.endpoint", setting("vehicle.source", "zmq", **{"vehicle.endpoint": "bogus"})),
        Case("issue 14", cal, setting(f"{cal}.ground", [[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]]), "collinear"),
        Case("issue 14", zone, setting(zone, BAD_GROUND_POLYGONS["NaN"]), "NaN zone"),
        Case("issue 14", zone, setting(zone, BAD_GROUND_POLYGONS["infinite"]), "infinite zone"),
        Case("issue 14", IMAGE_ZONE, setting(IMAGE_ZONE, BAD_IMAGE_POLYGONS["zero area"]), "zero-area zone"),
        Case("issue 14", "detector.score_threshold", setting("detector.score_threshold", True), "true"),
        Case("issue 14", "bus.id", setting("bus.id", "b" * 300), "300 characters"),
        Case("issue 14", "events.dir", file_as("events.dir"), "a file"),
        Case("issue 14", "", _deep(100_000, "[", "]"), "deeply nested TOML"),
    ]


def invalid_cases() -> list[Case]:
    """Every invalid config of the fuzz suite, in a fixed order."""
    rng = random.Random(SEED)
    return [
        *issue_cases(),
        *scalar_cases(rng),
        *name_cases(rng),
        *_geometry_cases(rng),
        *_endpoint_cases(rng),
        *path_cases(rng),
        *_key_cases(rng),
        *_file_cases(rng),
    ]
