"""Vehicle state as it comes in: one schema for the live feed's JSON messages and for the recorded log's rows.

Why strict: the vehicle state decides whether a zone warns or stays quiet. A guessed value (a full-width "5" read
as 5, 1 read as true, 1e308 km/h) can silence zones; a rejected message cannot, because a feed with nothing valid goes
stale and the policy falls back to a bus standing with its doors closed (every zone informs). So a message is applied
whole or not at all, and every rejection names its field in one short line.

Unknown fields are rejected, as in configs: a gateway that writes `doorsOpen` would otherwise be read as "doors
closed" forever without a word; rejected, it shows on `health` as soon as it starts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.types import Indicator, VehicleState

# A real message is under 250 bytes; 4 KiB leaves room for pretty-printing and still bounds the parse, and it is
# below the 4300 digits at which Python's int() refuses a number.
MAX_MESSAGE_BYTES = 4096
MAX_TOPIC_BYTES = 256
# The schema is one flat object (depth 1); one more level lets a wrong type such as `[5]` be named precisely.
# Anything deeper is refused before the parser sees it, so deep nesting can never reach Python's recursion limit.
MAX_DEPTH = 2
MAX_SPEED_KMH = 200.0
LINE_CHARS = 200  # a rejection is logged in one line of at most this many characters, whatever the input
_VALUE_CHARS = 40  # how much of a bad value or field name is quoted
_FIELD_NAME = re.compile(r"[A-Za-z0-9_]{1,40}")


def clip(text: str, limit: int) -> str:
    """`text` on one line and at most `limit` characters (an ellipsis marks the cut)."""
    one_line = text.replace("\r", "\\r").replace("\n", "\\n")
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def _quote(value: object) -> str:
    """A bad value as it can safely be shown: repr, on one line, clipped."""
    try:
        shown = repr(value)
    except Exception:  # repr of a hostile value may fail; its type is still worth showing
        shown = f"<{type(value).__name__}>"
    return clip(shown, _VALUE_CHARS)


def _field(name: object) -> str:
    return str(name) if isinstance(name, str) and _FIELD_NAME.fullmatch(name) else _quote(name)


class VehicleInputError(ValueError):
    """One bad message or log row. `field` names what is wrong ("message" for the whole), `reason` says how."""

    def __init__(self, field: str, reason: str):
        self.field = _field(field)
        self.reason = clip(reason, LINE_CHARS - len(self.field) - 2)
        super().__init__(f"{self.field}: {self.reason}")


class VehicleMessage(BaseModel):
    """One update from the bus's gateway. Strict: numbers are JSON numbers, booleans JSON true/false."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    speed_kmh: Annotated[float, Field(ge=0.0, le=MAX_SPEED_KMH)]
    # Not strict only so that the value strings are accepted (strict would want an Indicator object); anything but
    # exactly "off", "left", "right" or "hazard" is still refused.
    indicator: Annotated[Indicator, Field(strict=False)] = Indicator.OFF
    doors_open: bool = False
    reverse: bool = False
    lat: Annotated[float, Field(ge=-90.0, le=90.0)] | None = None
    lon: Annotated[float, Field(ge=-180.0, le=180.0)] | None = None
    ts: float = 0.0

    @model_validator(mode="after")
    def _both_coordinates(self) -> VehicleMessage:
        if (self.lat is None) != (self.lon is None):
            missing = "lon" if self.lon is None else "lat"
            raise ValueError(f"{missing}: missing while {'lat' if missing == 'lon' else 'lon'} is given")
        return self

    def state(self) -> VehicleState:
        return VehicleState(
            speed_kmh=self.speed_kmh,
            indicator=self.indicator,
            doors_open=self.doors_open,
            reverse=self.reverse,
            lat=self.lat,
            lon=self.lon,
            ts=self.ts,
        )


class VehicleLogRow(VehicleMessage):
    """A row of a recorded log: a message plus `t`, seconds from the start of the log."""

    t: Annotated[float, Field(ge=0.0)]


def _problem(err: Mapping[str, Any]) -> VehicleInputError:
    """Our one-line wording for a pydantic error (the first one: a message is refused whole)."""
    loc = err["loc"]
    field = loc[0] if loc else "message"
    got = _quote(err.get("input"))
    ctx = err.get("ctx") or {}
    kind = err["type"]
    if kind in ("model_type", "dict_type"):
        return VehicleInputError("message", f"expected a JSON object, got {type(err.get('input')).__name__}")
    if kind == "value_error":  # our cross-field check names its own field first ("lon: ...")
        sub, _, reason = str(ctx.get("error", err["msg"])).partition(": ")
        return VehicleInputError(sub, reason)
    reasons = {
        "missing": "missing",
        "extra_forbidden": "unknown field",
        "float_type": f"expected a number, got {got}",
        "bool_type": f"expected true or false, got {got}",
        "enum": f"expected one of {'/'.join(i.value for i in Indicator)}, got {got}",
        "finite_number": f"expected a finite number, got {got}",
        "greater_than_equal": f"must be >= {ctx.get('ge')}, got {got}",
        "less_than_equal": f"must be <= {ctx.get('le')}, got {got}",
    }
    return VehicleInputError(field, reasons.get(kind, f"{err['msg']}, got {got}"))


Model = TypeVar("Model", bound=VehicleMessage)


def validate(model: type[Model], fields: object) -> Model:
    """`fields` through the schema; raises VehicleInputError naming the first bad field."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise _problem(exc.errors()[0]) from None


def _too_deep(payload: bytes) -> bool:
    """Whether brackets outside strings nest deeper than MAX_DEPTH (one pass, stops at the first excess)."""
    depth = 0
    in_string = escaped = False
    for byte in payload:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object that names a field twice is ambiguous (parsers disagree on which wins): refuse it."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise VehicleInputError(key, "given twice")
        out[key] = value
    return out


def _integer(text: str) -> int | float:
    # Long integers become floats, so that a 400-digit speed is refused by its range with its field named.
    return int(text) if len(text) <= 18 else float(text)


def decode_message(frames: Sequence[bytes]) -> VehicleState:
    """The state in one ZeroMQ message, `[json]` or `[topic, json]`; raises VehicleInputError for anything else.

    The limits come before the JSON parser: size, then nesting depth, then UTF-8.
    """
    if len(frames) not in (1, 2):
        raise VehicleInputError("message", f"expected 1 or 2 frames ([json] or [topic, json]), got {len(frames)}")
    if len(frames) == 2 and len(frames[0]) > MAX_TOPIC_BYTES:
        raise VehicleInputError("message", f"topic frame of {len(frames[0])} bytes, more than {MAX_TOPIC_BYTES}")
    payload = frames[-1]
    if len(payload) > MAX_MESSAGE_BYTES:
        raise VehicleInputError("message", f"{len(payload)} bytes, more than {MAX_MESSAGE_BYTES}")
    if not payload.strip():
        raise VehicleInputError("message", "empty")
    if _too_deep(payload):
        raise VehicleInputError("message", f"nested deeper than {MAX_DEPTH} levels")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise VehicleInputError("message", f"not UTF-8 (byte {exc.start})") from None
    try:
        fields = json.loads(text, object_pairs_hook=_object, parse_int=_integer)
    except json.JSONDecodeError as exc:
        raise VehicleInputError("message", f"not JSON: {exc.msg} at character {exc.pos}") from None
    return validate(VehicleMessage, fields).state()


_NUMBER_FIELDS = frozenset({"speed_kmh", "lat", "lon", "ts", "t"})
_BOOL_FIELDS = frozenset({"doors_open", "reverse"})
# ASCII digits only: Python's float() reads full-width or Arabic-Indic digits ("\uff15", "\u0665") as 5.
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOL_TEXT = {"true": True, "false": False, "1": True, "0": False}


def typed_cells(row: Mapping[str, str | None]) -> dict[str, object]:
    """A CSV row's text as the values the schema checks. An empty cell is an absent field; text that is not a plain
    ASCII number (or true/false/1/0 for a boolean) is passed on as text, for the schema to refuse by name."""
    out: dict[str, object] = {}
    for key, cell in row.items():
        text = (cell or "").strip()
        if not text:
            continue
        if key in _NUMBER_FIELDS and _NUMBER_TEXT.fullmatch(text):
            out[key] = float(text)
        elif key in _BOOL_FIELDS and text.lower() in _BOOL_TEXT:
            out[key] = _BOOL_TEXT[text.lower()]
        else:
            out[key] = text
    return out


def row_state(fields: Mapping[str, object]) -> tuple[float, VehicleState]:
    """(t, state) for one log row of typed values; raises VehicleInputError naming the bad field."""
    row = validate(VehicleLogRow, dict(fields))
    return row.t, row.state()
