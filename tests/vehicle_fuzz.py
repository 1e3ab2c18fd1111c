"""Deterministic malformed vehicle messages for the fuzz tests: each one breaks at least one rule of the schema.

Every variant starts from a random valid message and applies one mutation, so the rest of the message is plausible
and only the mutation can be the reason it is refused. Nothing here is random at test time: the seed is fixed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

NUMBERS = ("speed_kmh", "lat", "lon", "ts")
BOOLS = ("doors_open", "reverse")
NON_NULLABLE = ("speed_kmh", "indicator", "doors_open", "reverse", "ts")
Frames = list[bytes]


def valid_message(rng: random.Random) -> dict[str, object]:
    msg: dict[str, object] = {"speed_kmh": round(rng.uniform(0.0, 200.0), rng.randint(0, 6))}
    if rng.random() < 0.7:
        msg["indicator"] = rng.choice(["off", "left", "right", "hazard"])
    for name in BOOLS:
        if rng.random() < 0.7:
            msg[name] = rng.random() < 0.5
    if rng.random() < 0.6:
        msg["lat"], msg["lon"] = rng.uniform(-90.0, 90.0), rng.uniform(-180.0, 180.0)
    if rng.random() < 0.6:
        msg["ts"] = rng.uniform(1.6e9, 1.9e9)
    return msg


def _frames(payload: bytes | str) -> Frames:
    return [b"vehicle", payload.encode() if isinstance(payload, str) else payload]


def _out_of_range(rng: random.Random, msg: dict) -> Frames:
    name = rng.choice(["speed_kmh", "lat", "lon"])
    limit = {"speed_kmh": (0.0, 200.0), "lat": (-90.0, 90.0), "lon": (-180.0, 180.0)}[name]
    if rng.random() < 0.5:
        value: float = limit[1] + rng.choice([1e-3, 0.5, 1.0, 999.0, 1e6, 1e308])
    else:
        value = limit[0] - rng.choice([1e-3, 0.5, 1.0, 999.0, 1e6, 1e308])
    msg[name] = value
    if name != "speed_kmh":
        msg.setdefault("lat", 0.0)
        msg.setdefault("lon", 0.0)
    return _frames(json.dumps(msg))


def _huge_integer(rng: random.Random, msg: dict) -> Frames:
    digits = rng.choice([21, 60, 309, 401, 1000, 3900])
    text = json.dumps({**msg, "speed_kmh": 0}).replace('"speed_kmh": 0', f'"speed_kmh": {"9" * digits}', 1)
    return _frames(text)


def _not_finite(rng: random.Random, msg: dict) -> Frames:
    name = rng.choice(NUMBERS)
    literal = rng.choice(["NaN", "Infinity", "-Infinity", "1e400", "-1e999"])
    base = {**msg, name: 0.0}
    if name in ("lat", "lon"):
        base.setdefault("lat", 0.0)
        base.setdefault("lon", 0.0)
    text = json.dumps(base).replace(f'"{name}": 0.0', f'"{name}": {literal}', 1)
    return _frames(text)


def _wrong_type(rng: random.Random, msg: dict) -> Frames:
    name = rng.choice([*NUMBERS, *BOOLS, "indicator"])
    if name in NUMBERS:
        value: object = rng.choice(["5", "\uff15", "\u0665", "5 km/h", "", True, False, [5], {"v": 5}])
    elif name in BOOLS:
        value = rng.choice([0, 1, 1.0, "true", "false", "yes", "", [True], {"v": True}])
    else:
        value = rng.choice([0, 1, True, ["left"], {"v": "left"}, 3.5])
    if name in ("lat", "lon"):
        msg.setdefault("lat", 0.0)
        msg.setdefault("lon", 0.0)
    msg[name] = value
    return _frames(json.dumps(msg))


def _null(rng: random.Random, msg: dict) -> Frames:
    msg[rng.choice(NON_NULLABLE)] = None
    return _frames(json.dumps(msg))


def _unknown_indicator(rng: random.Random, msg: dict) -> Frames:
    known = rng.choice(["off", "left", "right", "hazard"])
    msg["indicator"] = rng.choice(
        [known.upper(), known.title(), f" {known}", f"{known} ", f"{known}\u200b", known[:-1], "up", "both", "\uff4c"]
    )
    return _frames(json.dumps(msg))


def _unknown_field(rng: random.Random, msg: dict) -> Frames:
    name = rng.choice(["t", "gear", "doorsOpen", "speed", "Speed_kmh", "speed_kmh ", "x" * rng.randint(1, 3000)])
    msg[name] = rng.choice([0, 1.5, True, "x", None])
    return _frames(json.dumps(msg))


def _missing_speed(rng: random.Random, msg: dict) -> Frames:
    del msg["speed_kmh"]
    return _frames(json.dumps(msg))


def _half_a_position(rng: random.Random, msg: dict) -> Frames:
    keep = rng.choice(["lat", "lon"])
    msg.pop("lat", None)
    msg.pop("lon", None)
    msg[keep] = 10.0
    return _frames(json.dumps(msg))


def _duplicate_key(rng: random.Random, msg: dict) -> Frames:
    text = json.dumps(msg)
    return _frames(text[:-1] + f', "speed_kmh": {rng.choice([0, 5, 300])}' + "}")


def _truncated(rng: random.Random, msg: dict) -> Frames:
    text = json.dumps(msg).encode()
    return _frames(text[: rng.randint(0, len(text) - 1)])


def _not_an_object(rng: random.Random, msg: dict) -> Frames:
    return _frames(json.dumps(rng.choice([[msg], list(msg.values()), "speed_kmh", 5, None, True, []])))


def _deep(rng: random.Random, msg: dict) -> Frames:
    depth = rng.choice([3, 10, 200, 1000, 1500, 100_000])
    opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
    inner = json.dumps(msg)
    return _frames(opener * depth + inner + closer * depth)


def _oversize(rng: random.Random, msg: dict) -> Frames:
    padding = rng.choice([4097, 20_000, 1_000_000])
    if rng.random() < 0.5:
        return _frames(json.dumps(msg) + " " * padding)  # valid JSON, but no real message is this big
    return _frames(json.dumps({**msg, "indicator": "x" * padding}))


def _invalid_utf8(rng: random.Random, msg: dict) -> Frames:
    text = json.dumps(msg).encode()  # ASCII: any single byte >= 0x80 in it is invalid UTF-8
    at = rng.randint(0, len(text))
    return _frames(text[:at] + bytes([rng.randint(0x80, 0xFF)]) + text[at:])


def _wrong_frames(rng: random.Random, msg: dict) -> Frames:
    payload = json.dumps(msg).encode()
    return rng.choice(
        [
            [b"vehicle", payload, b""],
            [b"vehicle", b"v2", payload],
            [payload, b"vehicle"],
            [b"x" * rng.choice([257, 10_000]), payload],
            [b""],
            [b"vehicle", b""],
        ]
    )


MUTATIONS: dict[str, Callable[[random.Random, dict], Frames]] = {
    "out of range": _out_of_range,
    "huge integer": _huge_integer,
    "not finite": _not_finite,
    "wrong type": _wrong_type,
    "null": _null,
    "unknown indicator": _unknown_indicator,
    "unknown field": _unknown_field,
    "missing speed": _missing_speed,
    "half a position": _half_a_position,
    "duplicate key": _duplicate_key,
    "truncated": _truncated,
    "not an object": _not_an_object,
    "deep": _deep,
    "oversize": _oversize,
    "invalid utf-8": _invalid_utf8,
    "wrong frames": _wrong_frames,
}


def malformed(count: int, seed: int = 14) -> list[tuple[str, Frames]]:
    """`count` malformed messages as (kind, frames), every kind in turn, the same list on every run."""
    rng = random.Random(seed)
    kinds = list(MUTATIONS)
    return [(kinds[i % len(kinds)], MUTATIONS[kinds[i % len(kinds)]](rng, valid_message(rng))) for i in range(count)]
