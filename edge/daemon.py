"""`vigie run`: the per-bus daemon.

Threads: one capture reader per camera, the event writer, the `detect` thread (edge/ahead.py: the only one that
touches the detector, a batch ahead), and this main loop, the only one that touches the trackers, the policies and
the alert bus. The loop, top to bottom: take the next detected batch, track it, publish what changed, hand closed
events to the writer, watch camera health, print the status line.
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import zmq

from core.atomic import write_text_atomic
from core.types import Alert, Health, Level, Status, ViewReason
from edge.ahead import DetectAhead
from edge.allocator import limit_arenas
from edge.bus import AlertBus, shown_level
from edge.capture import CameraCounters, CameraReader, FrameHub
from edge.config import Config, operating_root
from edge.detector import PersonDetector
from edge.fleet_health import FleetHealth, read_counters
from edge.pipeline import FrameResult, Pipeline
from edge.policy import ZoneKey
from edge.recorder_link import RecorderLink
from edge.stats import RunStats
from edge.vehicle import STALE_S, StaticVehicle, VehicleLog, VehicleSource, ZmqVehicle
from edge.view import ViewState
from recorder.events import EventSink, EventWriter
from recorder.operating import OperatingLog
from recorder.wal import EventWal

log = logging.getLogger(__name__)

STALL_S = 1.5  # no frame for this long and the camera is reported stalled (the target is within 3 s)
STATUS_EVERY_S = 5.0
HEARTBEAT_S = 2.0  # every camera's status is repeated on `health` this often, changed or not


@dataclass(frozen=True, slots=True)
class RunOptions:
    duration_s: float | None = None
    stats_path: Path | None = None
    echo: Callable[[str], None] = print


def open_vehicle(config: Config, ctx: zmq.Context, t0: float) -> VehicleSource:
    v = config.vehicle
    if v.source == "zmq":
        return ZmqVehicle(ctx, v.endpoint)
    if v.source == "log":
        assert v.log is not None
        return VehicleLog(v.log, t0=t0, loop=v.loop)
    return StaticVehicle()


class CameraWatch:
    """Turns capture counters and each camera's view into health changes: ok → stalled/offline/degraded → ok."""

    def __init__(self, cameras: list[str]):
        self._status = dict.fromkeys(cameras, Status.STARTING)
        self._reasons: dict[str, frozenset[ViewReason]] = dict.fromkeys(cameras, frozenset())
        self._views: Mapping[str, ViewState] = {}
        self._since = time.monotonic()

    def current(self) -> list[Health]:
        """Every camera's present status (for the periodic heartbeat; a display that joins late learns it, and for
        a degraded camera why)."""
        now = time.time()
        return [
            Health(name, status, self._views[name].detail if status == Status.DEGRADED else "heartbeat", now)
            for name, status in self._status.items()
            if status != Status.STARTING
        ]

    def check(self, counters: dict[str, CameraCounters], views: Mapping[str, ViewState]) -> list[Health]:
        now = time.monotonic()
        self._views = views
        changes = []
        for name, c in counters.items():
            silent = now - max(c.last_frame_mono, self._since)
            if c.frames == 0 and silent < STALL_S:
                continue  # still connecting: neither ok nor failed yet
            if silent < STALL_S:
                view = views[name]
                status, detail = (Status.DEGRADED, view.detail) if view.degraded else (Status.OK, "frames arriving")
            elif c.connected:
                status, detail = Status.STALLED, f"no frame for {silent:.1f} s"
            else:
                status, detail = Status.OFFLINE, f"no connection for {silent:.1f} s, reconnecting"
            reasons = views[name].reasons if status == Status.DEGRADED else frozenset()
            # A degraded camera whose reasons change (dark, then dark and frozen) is a change too.
            if status != self._status[name] or reasons != self._reasons[name]:
                self._status[name], self._reasons[name] = status, reasons
                changes.append(Health(name, status, detail, time.time()))
        return changes


def format_alert(alert: Alert) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(alert.frame_ts))
    dist = f"nearest {alert.nearest_m:.1f} m" if alert.nearest_m is not None else "distance unknown"
    who = f"{len(alert.track_ids)} person(s)" if alert.track_ids else "zone clear"
    who = "camera cannot see" if alert.unknown else who
    return f"{when}  ALERT {shown_level(alert):7s} {alert.side.value:5s} {alert.camera}/{alert.zone}  {who}, {dist}"


def format_status(stats: RunStats, counters: dict[str, CameraCounters]) -> str:
    elapsed = stats.elapsed()
    cams = "  ".join(f"{n} {c.frames / elapsed:4.1f}fps d{c.dropped}" for n, c in counters.items())
    recent = list(itertools.islice(reversed(stats.inference_ms), 50))
    infer = sum(recent) / len(recent) if recent else 0.0
    return f"status  {cams}  | infer {infer:5.1f} ms | alerts {stats.alerts} | events {stats.events}"


@dataclass(frozen=True, slots=True)
class Stages:
    """What the main loop drives, built once by `Daemon.run`."""

    hub: FrameHub
    ahead: DetectAhead  # the detector, a batch ahead of the trackers, on its own thread
    pipeline: Pipeline
    bus: AlertBus
    writer: EventWriter
    watch: CameraWatch
    recorder: RecorderLink | None
    fleet: FleetHealth


class Daemon:
    def __init__(self, config: Config, options: RunOptions):
        self.config = config
        self.options = options
        self.stop_event = threading.Event()
        self.stats = RunStats()
        self._last_sent: dict[ZoneKey, float] = {}
        self._zones = {c.name: [ZoneKey(c.name, c.side, z.name) for z in c.zones] for c in config.cameras}
        self._next_recorder_check = 0.0
        self._vehicle_status = Status.OK
        self._vehicle_rejected = 0  # rejected vehicle messages already reported on `health`
        self._next_rejection_report = 0.0

    def request_stop(self, *_: object) -> None:
        self.stop_event.set()

    def run(self) -> dict:
        cfg = self.config
        limit_arenas()  # before any thread of ours allocates (edge/allocator.py)
        detector = PersonDetector(cfg.detector)  # loads, checks sha256, warms up: fail before opening anything
        ctx = zmq.Context()
        bus = AlertBus(ctx, cfg.alerts.endpoint, cfg.bus.id)
        sink = EventSink(cfg.events.dir, cfg.bus.id, detector.info.model_id, cfg.events.location_decimals)
        wal = EventWal(cfg.recorder.state_dir, cfg.events.location_decimals)
        operating = OperatingLog(operating_root(cfg.events), cfg.bus.id, len(cfg.cameras), cfg.alerts.mode)
        writer = EventWriter(sink, cfg.events.flush_s, wal, operating)
        recorder = RecorderLink(cfg) if cfg.recorder.enabled else None
        hub = FrameHub([c.name for c in cfg.cameras])
        readers = [CameraReader(c, hub) for c in cfg.cameras]
        vehicle = open_vehicle(cfg, ctx, time.time())
        pipeline = Pipeline(cfg, detector, vehicle)
        ahead = DetectAhead(hub, pipeline)
        watch = CameraWatch([c.name for c in cfg.cameras])
        self.stats = RunStats()
        # The day's health summary counts from the daemon's own counters; read only at midnight, checkpoints and stop.
        fleet = FleetHealth(cfg, detector.info, lambda: read_counters(hub, self.stats, writer, vehicle), time.time())
        # Everything built so far (modules, the model, configs: ~75,000 objects) lives as long as the process; frozen,
        # the collector stops walking it. Its full passes took 50 ms (10 ms frozen), holding the GIL from every
        # camera reader, which then delivered two frames at once, and the hub dropped one of each (e2e.py).
        gc.collect()  # what is garbage now is collected once, not frozen with the rest
        gc.freeze()
        for r in readers:
            r.start()
        ahead.start()
        if cfg.alerts.mode == "log":
            self.options.echo(
                f"vigie: bus {cfg.bus.id}, {len(readers)} cameras, stealth mode: alerts counted and logged, "
                f"none published (health still on {cfg.alerts.endpoint})"
            )
        else:
            self.options.echo(f"vigie: bus {cfg.bus.id}, {len(readers)} cameras, alerts on {cfg.alerts.endpoint}")
        try:
            self._loop(Stages(hub, ahead, pipeline, bus, writer, watch, recorder, fleet))
        finally:
            hub.close()  # frames that arrive now were never going to be processed: not drops
            ahead.stop()
            for r in readers:
                r.stop()
            for ev in pipeline.flush(time.time()):
                writer.add(recorder.with_clip(ev) if recorder else ev)
                self.stats.events += 1
            if recorder is not None:
                recorder.close()
            writer.close()
            self.stats.event_store = writer.counts
            vehicle.close()
            if isinstance(vehicle, ZmqVehicle):
                self.stats.vehicle = vehicle.counts()
            summary = self.stats.summary(hub.counters)  # before the waits below: they are not part of the run
            fleet.stop(time.time())  # after the writer: its final counts (events dropped) are in the summary
            # A reader still inside an FFmpeg open or read (a hung camera) when the interpreter finalises crashes
            # the process (SIGSEGV or abort as its thread unwinds through OpenCV): wait for each to leave, which
            # its open/read timeouts bound. They were all stopped above, so they wind down together.
            for r in readers:
                r.join(timeout=r.stop_within_s)
                if r.is_alive():
                    log.error("camera %s: reader did not stop within %.1f s; exiting anyway", r.name, r.stop_within_s)
            bus.close()
            ctx.term()
        if self.options.stats_path is not None:
            self.options.stats_path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.options.stats_path, json.dumps(summary, indent=2) + "\n")
        return summary

    def _loop(self, st: Stages) -> None:
        deadline = None if self.options.duration_s is None else time.monotonic() + self.options.duration_s
        next_status = time.monotonic() + STATUS_EVERY_S
        next_heartbeat = time.monotonic() + HEARTBEAT_S
        while not self.stop_event.is_set() and (deadline is None or time.monotonic() < deadline):
            detected = st.ahead.next(timeout=0.1)
            if detected:
                batch = st.pipeline.track(detected)
                self.stats.record_inference(batch.inference_ms, len(batch.results), batch.skipped)
                for result in batch.results:
                    for ev in result.opened:  # logged before its alert goes out: a crash cannot lose it
                        st.writer.opened(ev)
                    self._publish(result, st.bus)
                    self.stats.record_frame_done(result.frame.t_capture, time.time())
                    self._record(st, result)
                    for ev in result.closed:
                        st.writer.add(st.recorder.with_clip(ev) if st.recorder else ev)
                        self.stats.events += 1
            health = (
                st.watch.check(st.hub.counters, st.pipeline.views())
                + self._recorder_health(st)
                + self._vehicle_health(st.pipeline.vehicle)
            )
            health += self._vehicle_rejections(st.pipeline.vehicle) + st.writer.health()
            st.fleet.step(time.time(), health)
            for h in health:
                st.bus.health(h)
                self.options.echo(f"health  {h.camera}: {h.status} ({h.detail})")
            if time.monotonic() >= next_heartbeat:
                next_heartbeat = time.monotonic() + HEARTBEAT_S
                for h in st.watch.current() + st.writer.current_health() + self._vehicle_now(st.pipeline.vehicle):
                    st.bus.health(h)
            if time.monotonic() >= next_status:
                next_status += STATUS_EVERY_S
                self.options.echo(format_status(self.stats, st.hub.counters))
        st.ahead.check()  # a detector failure as the run was ending is still a failure

    def _record(self, st: Stages, result: FrameResult) -> None:
        """Hand the frame to the recorder. Whatever goes wrong there, alerting goes on; the link reports the failure
        on `health` and restarts the recorder, with backoff."""
        if st.recorder is None:
            return
        try:
            st.recorder.submit(result)
        except Exception as exc:  # any failure of the recorder must stay out of the alert path
            st.recorder.failed(exc)

    def _vehicle_health(self, vehicle: VehicleSource) -> list[Health]:
        status = vehicle.feed_status() if isinstance(vehicle, ZmqVehicle) else Status.OK
        if status == self._vehicle_status:
            return []
        self._vehicle_status = status
        detail = {
            Status.OK: "vehicle state arriving",
            Status.STALE: f"no vehicle state for more than {STALE_S:.0f} s: zones inform as if the bus stood still",
            Status.WAITING: "no vehicle state yet: zones inform as if the bus stood still",
        }[status]
        return [Health("vehicle", status, detail, time.time())]

    def _vehicle_now(self, vehicle: VehicleSource) -> list[Health]:
        """The live feed's present status, for the heartbeat: a display that joins late learns it is stale."""
        if not isinstance(vehicle, ZmqVehicle):
            return []
        return [Health("vehicle", self._vehicle_status, "heartbeat", time.time())]

    def _vehicle_rejections(self, vehicle: VehicleSource) -> list[Health]:
        """Newly rejected vehicle messages, on `health` at most every HEARTBEAT_S: a gateway that sends only bad
        messages must be seen (the feed then looks merely silent), but must not flood the bus."""
        if not isinstance(vehicle, ZmqVehicle) or time.monotonic() < self._next_rejection_report:
            return []
        counts = vehicle.counts()
        if counts.rejected == self._vehicle_rejected:
            return []
        self._next_rejection_report = time.monotonic() + HEARTBEAT_S
        new, self._vehicle_rejected = counts.rejected - self._vehicle_rejected, counts.rejected
        detail = f"{new} message(s) rejected ({counts.rejected} since start), last: {counts.last_rejection}"
        return [Health("vehicle", vehicle.feed_status(), detail, time.time())]

    def _recorder_health(self, st: Stages) -> list[Health]:
        if st.recorder is None:
            return []
        if time.monotonic() < self._next_recorder_check:
            return []
        self._next_recorder_check = time.monotonic() + 0.5  # waitpid and a queue poll: not on every frame
        return st.recorder.health()

    def _publish(self, result: FrameResult, bus: AlertBus) -> None:
        """Every zone of the frame's camera: a change at once, an unchanged state (`clear` included, for quiet zones)
        every `repeat_s`, so a display that (re)connects shows a zone clear only because vigie said so."""
        now = time.monotonic()
        stealth = self.config.alerts.mode == "log"
        for alert in result.changed:
            self.stats.tally.add(alert)
        raised = {ZoneKey(a.camera, a.side, a.zone): a for a in result.alerts}
        ts = result.frame.t_capture
        for key in self._zones[result.frame.camera]:
            alert = raised.get(key) or Alert(key.camera, key.side, key.zone, Level.NONE, (), None, ts)
            changed = alert in result.changed
            if stealth:  # counted above and logged here; the driver is told nothing
                if changed:
                    self.options.echo(format_alert(alert) + "  (stealth: not published)")
                continue
            if not changed and now - self._last_sent.get(key, 0.0) < self.config.alerts.repeat_s:
                continue
            sent = bus.alert(alert)
            self._last_sent[key] = now
            if changed:
                self.stats.record_alert(alert.frame_ts, sent.sent_ts)
                self.options.echo(format_alert(alert))


def install_signal_handlers(daemon: Daemon) -> None:
    signal.signal(signal.SIGINT, daemon.request_stop)
    signal.signal(signal.SIGTERM, daemon.request_stop)
