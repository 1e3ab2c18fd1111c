"""What the driver's display shows, folded from the daemon's `alert` and `health` messages.

Pure logic: no sockets, no clock of its own (every call is given the monotonic time), so the rules below are tested
as tables. The one rule behind all of them: a side is shown `clear` only while vigie keeps saying so, for every zone
of every camera on that side, and the camera says it is fine. Anything else — no word yet, a word too old, a camera
stalled, offline or unable to see, the daemon silent or gone — is `unknown`, never `clear`. A person still
seen is shown whatever the camera's health: their level stands until vigie stops saying it.
"""

from __future__ import annotations

import enum
import json
import math
from collections import Counter
from dataclasses import dataclass, field

from core.types import Side
from edge.bus import SCHEMA, TOPIC_ALERT, TOPIC_HEALTH
from edge.config import Config

SILENCE_S = 3.0  # nothing from vigie for this long and the page says so: the daemon restates its state every 1-2 s
CAMERA_FRESH_S = 5.0  # camera statuses come every 2 s (the daemon's heartbeat): two missed and it is unknown
MAX_PAYLOAD = 4096  # a vigie.alert/1 message is about 300 bytes; anything far bigger is refused before parsing
MAX_TRACKS = 256
DETAIL_CHARS = 80  # a status detail shown to the driver is clipped to this
COMPONENTS = ("recorder", "vehicle", "events")
CLIP_FAILED_SHOWN_S = 30.0  # one clip the recorder could not write is news, not a state: shown this long


class DisplayLevel(enum.StrEnum):
    """A side's or a zone's level on the page: the bus's levels and `unknown`, by what it asks of the driver."""

    CLEAR = "clear"
    INFO = "info"
    UNKNOWN = "unknown"  # part of the side cannot be seen: more than "someone is there", less than "about to hit"
    WARNING = "warning"


LEVEL_RANK = {level: rank for rank, level in enumerate(DisplayLevel)}


class CameraStatus(enum.StrEnum):
    """A camera's status as the page shows it, worst last."""

    OK = "ok"
    UNKNOWN = "unknown"  # no status heard lately
    DEGRADED = "degraded"  # connected, but cannot see: dark, blocked, glare, frozen
    STALLED = "stalled"
    OFFLINE = "offline"


STATUS_RANK = {status: rank for rank, status in enumerate(CameraStatus)}


class Connection(enum.StrEnum):
    LIVE = "live"
    LOST = "lost"


class Refusal(enum.StrEnum):
    """Why a message was ignored (counted, shown in the page's diagnostic corner)."""

    MALFORMED = "malformed"  # not two frames, not a JSON object, too big
    SCHEMA = "schema"  # not vigie.alert/1
    OTHER_BUS = "other_bus"
    INVALID = "invalid"  # a field missing, of the wrong kind, or naming what this bus does not have


@dataclass(frozen=True, slots=True)
class CameraInfo:
    name: str
    side: Side
    zones: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DisplaySettings:
    bus_id: str
    cameras: tuple[CameraInfo, ...]
    zone_fresh_s: float  # a zone's level older than this is unknown (it is restated every alerts.repeat_s)
    publishing: bool  # false in stealth mode (alerts.mode = "log"): the daemon tells the driver nothing

    @classmethod
    def from_config(cls, config: Config) -> DisplaySettings:
        cameras = tuple(CameraInfo(c.name, c.side, tuple(z.name for z in c.zones)) for c in config.cameras)
        # Two restatements may be missed (a slow frame, a busy machine) before the page stops trusting a level.
        fresh = max(SILENCE_S, 2.5 * config.alerts.repeat_s)
        return cls(config.bus.id, cameras, fresh, config.alerts.mode == "publish")


@dataclass(frozen=True, slots=True)
class AlertMsg:
    camera: str
    zone: str
    level: DisplayLevel
    track_ids: tuple[int, ...]
    nearest_m: float | None
    sent_ts: float


@dataclass(frozen=True, slots=True)
class HealthMsg:
    component: str  # a camera name, or one of COMPONENTS
    status: str
    detail: str
    sent_ts: float


@dataclass(frozen=True, slots=True)
class Refused:
    reason: Refusal


Message = AlertMsg | HealthMsg | Refused


def _number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def parse(frames: list[bytes], settings: DisplaySettings) -> Message:
    """One multipart message from the bus, checked field by field; what cannot be shown is refused, never guessed."""
    if len(frames) != 2 or frames[0] not in (TOPIC_ALERT, TOPIC_HEALTH) or len(frames[1]) > MAX_PAYLOAD:
        return Refused(Refusal.MALFORMED)
    try:
        msg = json.loads(frames[1], parse_constant=_refuse_constant)  # NaN and Infinity are not JSON
    except ValueError:
        return Refused(Refusal.MALFORMED)
    if not isinstance(msg, dict):
        return Refused(Refusal.MALFORMED)
    if msg.get("schema") != SCHEMA:
        return Refused(Refusal.SCHEMA)
    if msg.get("bus_id") != settings.bus_id:
        return Refused(Refusal.OTHER_BUS)
    if not _number(msg.get("sent_ts")):
        return Refused(Refusal.INVALID)
    parsed = _alert(msg, settings) if frames[0] == TOPIC_ALERT else _health(msg, settings)
    return parsed or Refused(Refusal.INVALID)


def _alert(msg: dict, settings: DisplaySettings) -> AlertMsg | None:
    camera = next((c for c in settings.cameras if c.name == msg.get("camera")), None)
    if camera is None or msg.get("side") != camera.side.value or msg.get("zone") not in camera.zones:
        return None
    if msg.get("level") not in DisplayLevel.__members__.values():
        return None
    tracks, nearest = msg.get("track_ids"), msg.get("nearest_m")
    if not isinstance(tracks, list) or len(tracks) > MAX_TRACKS:
        return None
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in tracks):
        return None
    if nearest is not None and not (_number(nearest) and nearest >= 0):
        return None
    return AlertMsg(camera.name, msg["zone"], DisplayLevel(msg["level"]), tuple(tracks), nearest, float(msg["sent_ts"]))


def _health(msg: dict, settings: DisplaySettings) -> HealthMsg | None:
    name, status, detail = msg.get("camera"), msg.get("status"), msg.get("detail")
    if not isinstance(status, str) or not isinstance(detail, str):
        return None
    is_camera = any(c.name == name for c in settings.cameras)
    if is_camera and status not in {s.value for s in CameraStatus} - {CameraStatus.UNKNOWN.value}:
        return None
    if not is_camera and (name not in COMPONENTS or not status.isidentifier() or len(status) > 32):
        return None
    assert isinstance(name, str)
    text = "".join(ch if ch.isprintable() else " " for ch in detail)
    return HealthMsg(name, status, text[:DETAIL_CHARS], float(msg["sent_ts"]))


@dataclass(frozen=True, slots=True)
class Banner:
    kind: str  # connection, silence, stealth, camera, vehicle, recorder, events
    text: str
    side: Side | None = None
    camera: str | None = None


@dataclass(frozen=True, slots=True)
class CameraView:
    name: str
    status: CameraStatus
    detail: str


@dataclass(frozen=True, slots=True)
class SideView:
    side: Side
    level: DisplayLevel
    health: CameraStatus | None  # None: no camera watches this side
    people: int
    nearest_m: float | None
    cameras: tuple[CameraView, ...]
    banners: tuple[Banner, ...]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the page shows at one moment; `sent_ts` is the daemon message that caused it (latency trace)."""

    bus_id: str
    connection: Connection
    silent_s: float | None
    sides: tuple[SideView, ...]
    banners: tuple[Banner, ...]
    ignored: dict[str, int]
    sent_ts: float | None = None

    def to_json(self, seq: int, theme: str, pushed_ts: float | None = None) -> dict:
        def banner(b: Banner) -> dict:
            return {"kind": b.kind, "text": b.text, "side": b.side, "camera": b.camera}

        return {
            "schema": "vigie.display/1",
            "seq": seq,
            "bus_id": self.bus_id,
            "connection": self.connection.value,
            "silent_s": None if self.silent_s is None else round(self.silent_s, 1),
            "theme": theme,
            "sides": [
                {
                    "side": s.side.value,
                    "level": s.level.value,
                    "health": s.health.value if s.health else "none",
                    "people": s.people,
                    "nearest_m": s.nearest_m,
                    "cameras": [{"name": c.name, "status": c.status.value, "detail": c.detail} for c in s.cameras],
                    "banners": [banner(b) for b in s.banners],
                }
                for s in self.sides
            ],
            "banners": [banner(b) for b in self.banners],
            "ignored": self.ignored,
            "sent_ts": self.sent_ts,
            "pushed_ts": pushed_ts,  # when the bridge sent this picture (epoch s): splits the latency in two
        }


@dataclass(frozen=True, slots=True)
class _HeardAlert:
    at: float  # monotonic, when the bridge received it
    msg: AlertMsg


@dataclass(frozen=True, slots=True)
class _HeardHealth:
    at: float
    msg: HealthMsg


CAMERA_WORDS = {
    CameraStatus.OFFLINE: "camera offline",
    CameraStatus.STALLED: "camera frozen: no new picture",
    CameraStatus.UNKNOWN: "no word from this camera",
}


@dataclass
class DisplayState:
    settings: DisplaySettings
    _zones: dict[tuple[str, str], _HeardAlert] = field(default_factory=dict)
    _health: dict[str, _HeardHealth] = field(default_factory=dict)
    _last_heard: float | None = None
    ignored: Counter[str] = field(default_factory=Counter)

    def receive(self, msg: Message, now: float) -> None:
        if isinstance(msg, Refused):
            self.ignored[msg.reason.value] += 1
            return
        self._last_heard = now
        if isinstance(msg, AlertMsg):
            self._zones[(msg.camera, msg.zone)] = _HeardAlert(now, msg)
        else:
            self._health[msg.component] = _HeardHealth(now, msg)

    def forget(self) -> None:
        """The daemon went away: what it said no longer holds (a new run restates everything within seconds)."""
        self._zones.clear()
        self._health.clear()
        self._last_heard = None

    def snapshot(self, now: float, connected: bool, sent_ts: float | None = None) -> Snapshot:
        silent = None if self._last_heard is None else now - self._last_heard
        live = connected and silent is not None and silent < SILENCE_S
        sides = tuple(self._side(side, now, live) for side in Side)
        banners = []
        if not connected:
            banners.append(Banner("connection", "No connection to vigie: blind-spot alerts unavailable"))
        elif not live:
            waited = "any message" if silent is None else f"a message for {silent:.0f} s"
            banners.append(Banner("silence", f"No word from vigie: waiting for {waited}"))
        if not self.settings.publishing:
            banners.append(Banner("stealth", "vigie is in test mode (alerts.mode = log): no alerts are shown"))
        if live:
            banners += self._component_banners(now)
        ignored = {reason.value: self.ignored[reason.value] for reason in Refusal}
        return Snapshot(
            self.settings.bus_id,
            Connection.LIVE if live else Connection.LOST,
            silent,
            sides,
            tuple(banners),
            ignored,
            sent_ts,
        )

    def _camera(self, name: str, now: float, live: bool) -> CameraView:
        heard = self._health.get(name)
        if not live or heard is None or now - heard.at > CAMERA_FRESH_S:
            return CameraView(name, CameraStatus.UNKNOWN, "")
        return CameraView(name, CameraStatus(heard.msg.status), heard.msg.detail)

    def _zone(self, camera: CameraView, zone: str, now: float) -> AlertMsg | None:
        """The zone's word if it can be trusted now: fresh, and `clear` only from a camera that says it sees (a
        person seen by a camera that is losing its view is still there: that word stands)."""
        heard = self._zones.get((camera.name, zone))
        if heard is None or now - heard.at > self.settings.zone_fresh_s:
            return None
        if heard.msg.level == DisplayLevel.CLEAR and camera.status != CameraStatus.OK:
            return None
        return heard.msg

    def _side(self, side: Side, now: float, live: bool) -> SideView:
        infos = [c for c in self.settings.cameras if c.side == side]
        if not infos:
            return SideView(side, DisplayLevel.UNKNOWN, None, 0, None, (), ())
        cameras = tuple(self._camera(c.name, now, live) for c in infos)
        levels, people, distances = [], set(), []
        for info, camera in zip(infos, cameras, strict=True):
            for zone in info.zones:
                word = self._zone(camera, zone, now) if live else None  # lost: nothing on screen outlives it
                levels.append(word.level if word else DisplayLevel.UNKNOWN)
                if word and word.level in (DisplayLevel.INFO, DisplayLevel.WARNING):
                    people |= {(camera.name, t) for t in word.track_ids}
                    if word.nearest_m is not None:
                        distances.append(word.nearest_m)
        level = max(levels, key=LEVEL_RANK.__getitem__)
        health = max((c.status for c in cameras), key=STATUS_RANK.__getitem__)
        banners = tuple(self._camera_banner(side, c, len(cameras) > 1) for c in cameras if c.status != "ok")
        nearest = min(distances) if distances else None
        return SideView(side, level, health, len(people), nearest, cameras, banners if live else ())

    @staticmethod
    def _camera_banner(side: Side, camera: CameraView, named: bool) -> Banner:
        if camera.status == CameraStatus.DEGRADED:
            words = f"camera cannot see: {camera.detail or 'view degraded'}"
        else:
            words = CAMERA_WORDS[camera.status]
        return Banner("camera", f"{camera.name} {words}" if named else words, side, camera.name)

    def _component_banners(self, now: float) -> list[Banner]:
        out = []
        for name in COMPONENTS:
            heard = self._health.get(name)
            if heard is None or heard.msg.status == "ok":
                continue
            if heard.msg.status == "clip_failed" and now - heard.at > CLIP_FAILED_SHOWN_S:
                continue
            h = heard.msg
            if name == "vehicle":
                state = "no vehicle state yet" if h.status == "waiting" else f"vehicle state {h.status}"
                text = f"{state}: zones inform as if the bus stood still"
            else:
                what = "recorder" if name == "recorder" else "event store"
                text = f"{what} {h.status.replace('_', ' ')}" + (f": {h.detail}" if h.detail else "")
            out.append(Banner(name, text))
        return out
