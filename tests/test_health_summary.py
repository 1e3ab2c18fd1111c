"""The health summary's files: its Parquet row and schema, the saved day, the writer thread on a real full disk, and
the config digest that names what ran."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from edge.config import load_config
from edge.fleet_health import config_digest
from recorder.health import (
    HEALTH_SCHEMA,
    STATE_NAME,
    CameraDay,
    DayFigures,
    DiskUse,
    HealthSummary,
    Identity,
    SavedDay,
    load_state,
    save_state,
    summary_from_row,
    write_summary,
)
from recorder.health_store import HealthPlaces, HealthStore, HealthWrite

from .conftest import FullDisk, wait_until

ID = Identity("bus-0412", "0.1.0", "person_ssdlite_int8@abc", "ab" * 32, "cd" * 32, "publish")
DAY = dt.date(2026, 11, 20)
NOON = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC).timestamp()
FIGURES = DayFigures(
    operating_s=7200.0,
    runs=2,
    cameras=(
        CameraDay("front", ok_s=7000, degraded_s=100, stalled_s=50, offline_s=40, starting_s=10, stalls=2, outages=1),
        CameraDay("left", ok_s=7200, frames=72_000, dropped=12, reconnects=1),
    ),
    info_alerts=30,
    warning_alerts=4,
    recorder_failures=1,
    clip_failures=2,
    event_store_faults=1,
    events_dropped=3,
    vehicle_stale_s=12.5,
    vehicle_rejected=7,
)
SUMMARY = HealthSummary(
    ID, DAY, 3, False, NOON, FIGURES, written_ts=NOON + 1, events_disk=DiskUse(1000.0, 600.0), clips_disk=None
)


def test_a_summary_reads_back_as_it_was_written(tmp_path: Path) -> None:
    path = write_summary(SUMMARY, tmp_path)
    assert path.parent == tmp_path / "date=2026-11-20" / "bus=bus-0412"
    assert path.name.startswith("summary-r0003-") and path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary file left beside it"
    table = pq.read_table(path)
    assert table.schema.equals(HEALTH_SCHEMA, check_metadata=True) and table.num_rows == 1
    row = table.to_pylist()[0]
    assert summary_from_row(row) == SUMMARY
    assert row["info_per_hour"] == pytest.approx(15.0) and row["warning_per_hour"] == pytest.approx(2.0)
    front = row["cameras"][0]
    assert front["watched_s"] == pytest.approx(7200) and front["uptime_pct"] == pytest.approx(7000 / 72)


def test_the_summary_holds_no_picture_no_person_and_no_place() -> None:
    """Privacy: no binary column, nothing that names a track or a person, no coordinates."""

    def names(fields) -> list[str]:
        out = []
        for f in fields:
            out.append(f.name)
            if pa.types.is_list(f.type):
                out += names(f.type.value_type)
            assert not pa.types.is_binary(f.type) and not pa.types.is_large_binary(f.type), f.name
        return out

    every = names(HEALTH_SCHEMA)
    assert not [n for n in every if any(w in n for w in ("track", "person", "face", "image", "lat", "lon"))]
    assert not {"event_id", "clip", "zone", "zones"} & set(every)


def test_the_saved_day_reads_back_and_a_damaged_one_starts_the_day_afresh(tmp_path: Path) -> None:
    path = tmp_path / "state" / STATE_NAME
    saved = SavedDay(ID, DAY, 2, False, NOON, FIGURES)
    save_state(saved, path)
    assert load_state(path) == saved
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_state(tmp_path / "none.json") is None
    for damaged in ("{", json.dumps({"schema": "vigie.health/0"}), json.dumps({"schema": "vigie.health/1"}), "[]"):
        path.write_text(damaged)
        assert load_state(path) is None, damaged


def test_the_writer_waits_out_a_full_disk_and_writes_everything_in_order(full_disk: FullDisk) -> None:
    places = HealthPlaces(full_disk.root / "health", full_disk.root / "state" / STATE_NAME, full_disk.root, None)
    store = HealthStore(places)
    try:
        first = dataclasses.replace(SUMMARY, revision=1)
        store.submit(HealthWrite(first, SavedDay(ID, DAY, 1, False, NOON, FIGURES)))
        store.submit(HealthWrite(None, SavedDay(ID, DAY, 1, False, NOON + 600, FIGURES)))
        store.submit(HealthWrite(SUMMARY, SavedDay(ID, DAY, 3, False, NOON + 900, FIGURES)))
        wait_until(lambda: store._failing, "the writer to meet the full disk")
        assert store.written == []
        assert not [p for p in full_disk.root.rglob("*") if p.is_file() and p.name != "filler"], "half a file left"
        full_disk.free()
        wait_until(lambda: len(store.written) == 2, "the summaries once space returns", timeout=60)
    finally:
        assert store.close() == 0
    assert [summary_from_row(pq.read_table(p).to_pylist()[0]).revision for p in store.written] == [1, 3]
    saved = load_state(places.state_path)
    assert saved is not None and saved.revision == 3, "only the newest saved day is written"
    disk = summary_from_row(pq.read_table(store.written[0]).to_pylist()[0]).events_disk
    assert disk is not None and 0 < disk.free_mb <= disk.total_mb <= 2.0


def test_the_config_digest_names_the_config_but_not_its_credentials(tmp_path: Path) -> None:
    """A camera's password or token changes nothing in the digest; a zone does."""
    demo = load_config(None)

    def with_source(url: str):
        cams = [demo.cameras[0].model_copy(update={"source": url}), *demo.cameras[1:]]
        return demo.model_copy(update={"cameras": cams})

    plain = config_digest(with_source("rtsp://10.0.12.11:554/stream1"))
    assert config_digest(with_source("rtsp://admin:s3cret@10.0.12.11:554/stream1")) == plain
    assert config_digest(with_source("rtsp://10.0.12.11:554/stream1?user=admin&pwd=s3cret")) == plain
    assert config_digest(with_source("rtsp://10.0.12.12:554/stream1")) != plain
    zone = demo.cameras[0].zones[0]
    moved = zone.model_copy(update={"polygon": [(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)]})
    other = demo.model_copy(
        update={"cameras": [demo.cameras[0].model_copy(update={"zones": [moved]}), *demo.cameras[1:]]}
    )
    assert config_digest(other) != config_digest(demo)
    assert len(plain) == 64 and int(plain, 16) >= 0
