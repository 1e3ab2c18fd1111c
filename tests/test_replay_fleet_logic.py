"""The pure logic of `vigie replay rerun-fleet`: clip ids, the recorded vehicle state, which old events belong to
which clip, the per-bus sums, and the model a worker receives."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pyarrow as pa
import pytest

from core.types import Indicator

from .conftest import FOOTAGE


def test_a_clip_id_names_its_camera_and_start_even_with_underscores_in_the_bus() -> None:
    from replay.fleet_plan import parse_clip_id

    camera, start = parse_clip_id("line_4_rear_20260301T080502123", "line_4") or ("", 0.0)
    assert camera == "rear" and start == pytest.approx(1772352302.123)
    assert parse_clip_id("other_rear_20260301T080502123", "line_4") is None
    assert parse_clip_id("line_4_rear_2026", "line_4") is None


def test_the_sidecar_vehicle_knows_stops_only_within_the_clip() -> None:
    from replay.clip_replay import RecordedClip, SidecarVehicle

    clip = RecordedClip("c", "b", "front", (10.0, 10.3, 10.5, 10.8), (8.0, 0.0, 3.0, 3.0), (Indicator.OFF,) * 4)
    vehicle = SidecarVehicle(clip)
    assert vehicle.state_at(10.1).stopped_s_ago is None  # moving since before the clip
    assert vehicle.state_at(10.4).stopped_s_ago == 0.0
    assert vehicle.state_at(10.9).stopped_s_ago == pytest.approx(0.6)
    assert vehicle.state_at(9.0).speed_kmh == 8.0  # before the first frame: the first frame's state


def test_old_events_go_to_the_clip_they_overlap_on_their_own_camera() -> None:
    import datetime as dt

    from replay.clip_replay import ClipRun
    from replay.fleet_compare import old_by_clip

    def run(clip: str, camera: str, start: float, end: float) -> ClipRun:
        return ClipRun(clip, "b", camera, start, end, 10, 10, (), (), 0.1)

    def ts(s: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(s, dt.UTC)

    runs = (run("r1", "right", 100, 110), run("r2", "right", 200, 215), run("l1", "left", 100, 110))
    table = pa.Table.from_pylist(
        [
            {"bus": "b", "camera": "right", "start_ts": ts(105), "end_ts": ts(108)},  # in r1
            {"bus": "b", "camera": "right", "start_ts": ts(150), "end_ts": ts(160)},  # between clips: none
            {"bus": "b", "camera": "right", "start_ts": ts(195), "end_ts": ts(201)},  # reaches into r2
            {"bus": "b", "camera": "left", "start_ts": ts(109), "end_ts": ts(112)},  # l1, not r1
            {"bus": "x", "camera": "right", "start_ts": ts(105), "end_ts": ts(108)},  # another bus
        ]
    )
    assert old_by_clip(table, runs) == {"r1": [0], "r2": [2], "l1": [3]}


def test_a_shipped_model_is_checked_and_kept_under_its_own_name(tmp_path: Path, monkeypatch) -> None:

    from core.models import ModelError
    from replay.fleet_task import Shipment, materialise
    from replay.query import SourceSpec

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    data = (FOOTAGE.parent / "models" / "person_ssdlite_int8.onnx").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    ship = Shipment("", "x.toml", "person_ssdlite_int8.onnx", digest, data, 0.38, SourceSpec("s3://city/clips"))
    path = materialise(ship)
    assert path.name == "person_ssdlite_int8.onnx" and path.read_bytes() == data
    assert path.stat().st_mode & 0o077 == 0 and path.parent.parent.stat().st_mode & 0o077 == 0
    with pytest.raises(ModelError, match="arrived altered"):
        materialise(Shipment("", "x.toml", "m.onnx", digest, data[:-1], 0.38, SourceSpec("s3://city/clips")))


def test_clips_are_compared_one_by_one_and_summed_per_bus() -> None:
    """A clip without old events (everything added) and one whose event is unchanged; alerts over operating hours."""
    from pathlib import Path as P

    from core.types import Event, Level, Side, VehicleState
    from recorder.events import EVENT_SCHEMA, EventSink, event_row
    from replay.clip_replay import ClipRun
    from replay.fleet_compare import Alerts, compare_fleet, summary_lines

    def table(events: list[Event], clip: str | None) -> pa.Table:
        sink = EventSink(P("."), "b", "m@0", 2)
        found = [{**event_row(e, sink), "clip": clip or e.clip, "bus": "b"} for e in events]
        schema = EVENT_SCHEMA.append(pa.field("bus", pa.string()))
        return pa.Table.from_pylist(found, schema=schema)

    def ev(eid: str, start: float, clip: str, warnings: int = 0) -> Event:
        return Event(eid, "right", Side.RIGHT, "z", start, start + 2, Level.INFO, None, 5, 0.9, VehicleState(),
                     clip, 1 - warnings, warnings)  # fmt: skip

    runs = (
        ClipRun("c1", "b", "right", 100.0, 110.0, 40, 40, (), (), 0.1),
        ClipRun("c2", "b", "right", 200.0, 210.0, 40, 40, (), (), 0.1),
    )
    old = table([ev("o1", 101.0, "c1")], None)
    new = table([ev("n1", 101.2, "c1"), ev("n2", 203.0, "c2", warnings=1)], None)
    change = compare_fleet(old, new, runs, {"b": 2.0}, 0.5)
    bus = change.buses["b"]
    assert (bus.clips, bus.old, bus.new, bus.added, bus.removed, bus.unchanged) == (2, 1, 2, 1, 0, 1)
    assert bus.before == Alerts(1, 0) and bus.after == Alerts(1, 1) and bus.hours == 2.0
    lines = list(summary_lines(change, "the events the buses recorded"))
    assert "per operating hour 0.5/h -> 1.0/h over 2.00 h" in lines[1]
