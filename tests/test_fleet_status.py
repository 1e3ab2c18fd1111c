"""`vigie replay fleet-status` on a generated fleet: real Parquet summaries (written by the daemon's own writer) and
real event files, laid out as the uploader sends them; every flag shows, and only where it should."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.types import Event, Level, Side, VehicleState
from edge.cli import main
from recorder.events import EventSink, write_events
from recorder.health import CameraDay, DayFigures, HealthSummary, Identity, write_summary

DAY = dt.date(2026, 11, 20)
CAMERAS = ("front", "right", "rear", "left")
# Normal buses: ten hours each, 3.6-4.4 info and 0.8-1.2 warning alerts an hour, every camera up 99.5 %.
NORMAL = {f"bus-{i:02d}": (36 + i, 8 + i % 5) for i in range(9)}


def summary(bus: str, day: dt.date = DAY, **kw) -> HealthSummary:
    hours, info, warning = kw.pop("hours", 10.0), kw.pop("info", 40), kw.pop("warning", 10)
    uptime = {"front": 99.5, "right": 99.5, "rear": 99.5, "left": 99.5} | kw.pop("uptime", {})
    seconds = hours * 3600
    cams = tuple(
        CameraDay(
            c, ok_s=seconds * uptime[c] / 100, offline_s=seconds * (1 - uptime[c] / 100), frames=int(seconds * 10)
        )
        for c in CAMERAS
    )
    figures = DayFigures(operating_s=seconds, runs=1, cameras=cams, info_alerts=info, warning_alerts=warning)
    identity = Identity(bus, "0.1.0", "person_ssdlite_int8@fcd83ae95e83", "f" * 64, "c" * 64, "publish")
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), dt.UTC).timestamp()
    written = kw.pop("written", end + 1)
    return HealthSummary(identity, day, kw.pop("revision", 1), kw.pop("final", True), end, figures, written, **kw)


def write_events_of(root: Path, bus: str, day: dt.date) -> None:
    start = dt.datetime.combine(day, dt.time(9), dt.UTC).timestamp()
    ev = Event("e" * 32, "right", Side.RIGHT, "blind-spot", start, start + 2, Level.INFO, 1.0, 20, 0.8, VehicleState())
    write_events([ev], EventSink(root, bus, "person_ssdlite_int8@test"))


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bucket") / "city"
    health, events = root / "health", root / "events"
    for bus, (info, warning) in NORMAL.items():
        write_events_of(events, bus, DAY)
        write_summary(summary(bus, info=info, warning=warning), health)
    # bus-00 also sent partial summaries earlier that day; the final one (highest revision) supersedes them.
    write_summary(summary("bus-00", hours=2, info=500, final=False, written=1.0, revision=1), health)
    write_summary(summary("bus-00", hours=3, info=600, final=False, written=2.0, revision=1), health)
    write_summary(summary("bus-00", info=36, warning=8, revision=2), health)
    write_summary(summary("bus-cam", uptime={"left": 90.0}), health)  # one camera often offline
    write_summary(summary("bus-loud", info=400), health)  # ten times the fleet's info rate
    write_summary(summary("bus-quiet", info=2, warning=9), health)  # almost no info alert in ten hours
    # 12 info/h, three times the median, and no warning: over a quarter of an hour, chance explains both.
    write_summary(summary("bus-short", hours=0.25, info=3, warning=0), health)
    write_summary(summary("bus-down", DAY - dt.timedelta(days=2)), health)  # reported two days ago, not today
    write_events_of(events, "bus-ev", DAY - dt.timedelta(days=3))  # events three days ago, never a summary
    write_events_of(events, "bus-old", DAY - dt.timedelta(days=10))  # outside the week: not in the fleet
    return events


def status(*args: str) -> tuple[int, list[str], str]:
    out = CliRunner().invoke(main, ["replay", "fleet-status", *args])
    return out.exit_code, out.stdout.splitlines(), out.stderr


def by_bus(source: Path, *args: str) -> dict[str, dict]:
    code, lines, err = status("--source", str(source), "--date", DAY.isoformat(), "--json", *args)
    assert code == 0, err
    rows = [json.loads(line) for line in lines]
    return {r["bus"]: r for r in rows}


def flags(row: dict) -> list[tuple[str, str]]:
    return [(f["kind"], f["subject"]) for f in row["flags"]]


def test_every_flag_shows_where_it_should_and_nowhere_else(fleet: Path) -> None:
    rows = by_bus(fleet)
    assert {bus: flags(r) for bus, r in rows.items() if r["flags"]} == {
        "bus-cam": [("low_uptime", "left")],
        "bus-loud": [("alert_rate", "info")],
        "bus-quiet": [("alert_rate", "info")],
        "bus-down": [("no_report", "")],
        "bus-ev": [("no_report", "")],
    }
    assert "bus-old" not in rows, "last seen ten days ago: not in this week's fleet"
    assert rows["bus-down"]["last_seen"] == "2026-11-18" and rows["bus-ev"]["last_seen"] == "2026-11-17"
    assert rows["bus-short"]["info_per_hour"] == pytest.approx(12.0), "3x, but a quarter of an hour proves nothing"
    assert rows["bus-cam"]["cameras"][3] | {"frames": 0} == {
        "camera": "left",
        "uptime_pct": 90.0,
        "stalls": 0,
        "outages": 0,
        "degradations": 0,
        "reconnects": 0,
        "frames": 0,
        "dropped": 0,
    }


def test_the_latest_revision_of_a_day_supersedes_the_partial_ones(fleet: Path) -> None:
    row = by_bus(fleet)["bus-00"]
    assert (row["revision"], row["final"], row["info_alerts"], row["operating_h"]) == (2, True, 36, 10.0)


def test_a_longer_window_brings_older_buses_into_the_fleet(fleet: Path) -> None:
    rows = by_bus(fleet, "--fleet-days", "14")
    assert flags(rows["bus-old"]) == [("no_report", "")] and rows["bus-old"]["last_seen"] == "2026-11-10"


def test_the_text_report_is_one_line_per_bus_after_a_header(fleet: Path) -> None:
    code, lines, _ = status("--source", str(fleet), "--date", DAY.isoformat())
    assert code == 0
    header, *buses = lines
    assert header.startswith("fleet-status 2026-11-20: 15 bus(es) seen in the 7 days to 2026-11-20, 13 reported")
    assert "5 flagged" in header and "over 12 bus(es): info 4.00, warning 1.00" in header
    assert len(buses) == 15 and [b.split()[0] for b in buses] == sorted(b.split()[0] for b in buses)
    loud = next(b for b in buses if b.startswith("bus-loud "))
    assert "final r1" in loud and "info 40.00/h" in loud and "!! info 40.00/h = 10.0x the fleet median 4.00/h" in loud
    assert next(b for b in buses if b.startswith("bus-down ")).startswith("bus-down     NO REPORT  !! no health")


def test_a_fleet_too_small_for_a_median_compares_no_rate(tmp_path: Path) -> None:
    for bus, info in (("a", 40), ("b", 400)):
        write_events_of(tmp_path / "events", bus, DAY)
        write_summary(summary(bus, info=info), tmp_path / "health")
    rows = by_bus(tmp_path / "events")
    assert rows["a"]["flags"] == rows["b"]["flags"] == []
    code, lines, _ = status("--source", str(tmp_path / "events"), "--date", DAY.isoformat())
    assert code == 0 and "alert rates not compared: 2 bus(es) operated 1 h or more, fewer than 3" in lines[0]


def test_a_fleet_with_no_warning_at_all_compares_only_info(tmp_path: Path) -> None:
    for i in range(4):
        write_summary(summary(f"b{i}", info=40, warning=0 if i else 30), tmp_path / "health")
    (tmp_path / "events").mkdir()
    rows = by_bus(tmp_path / "events")
    assert all(r["flags"] == [] for r in rows.values())


def test_bad_input_is_one_line_and_exit_2(fleet: Path, tmp_path: Path) -> None:
    (tmp_path / "city" / "events").mkdir(parents=True)
    folder = tmp_path / "city" / "health" / "date=2026-11-20" / "bus=bus-x"
    folder.mkdir(parents=True)
    broken = folder / "summary-r0001-0.parquet"
    broken.write_bytes(b"PAR1 not parquet at all")
    for args, expected in [
        (["--source", str(fleet), "--date", "2026-13-01"], "--date '2026-13-01': not a date (YYYY-MM-DD)"),
        (["--source", str(tmp_path / "nowhere")], "not found"),
        (["--source", str(tmp_path / "city" / "events"), "--date", "2026-11-20"], f"{broken}: not a health summary"),
    ]:
        code, lines, err = status(*args)
        assert code == 2 and lines == [], (args, lines)
        assert err.count("\n") == 1 and expected in err, err
    code, _, err = status("--source", str(fleet), "--fleet-days", "0")
    assert code == 2 and "Traceback" not in err


def test_supersession_is_by_revision_then_written_time() -> None:
    from replay.fleet_status import latest

    a = summary("a", revision=3, written=10.0)
    assert latest([a, dataclasses.replace(a, revision=2, written_ts=99.0)])["a"] is a
    later = dataclasses.replace(a, written_ts=11.0)
    assert latest([a, later])["a"] is later
