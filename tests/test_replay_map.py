"""`vigie replay report --map`: where encounters happen, drawn from a real event store and its operating time."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.types import Level
from recorder.operating import OperatingLog
from replay.query import EventQuery, SourceSpec
from replay.report_map import SIDES, map_bins
from replay.source import read_events

from .event_store import FLEET, TOTAL, at, event, vigie, write_fleet

INFO_BGR, WARNING_BGR = (65, 165, 242), (61, 38, 215)  # report.LEVEL_COLOURS, as OpenCV reads them
OPERATED = (dt.datetime(2026, 3, 1, 6, 0, tzinfo=dt.UTC), dt.datetime(2026, 3, 1, 18, 0, tzinfo=dt.UTC))


def with_alerts(ev):
    """Each alerting event raised its zone once: the driver's alert count (schema 3) the rates are made of."""
    return dataclasses.replace(
        ev, info_alerts=int(ev.max_level == Level.INFO), warning_alerts=int(ev.max_level == Level.WARNING)
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fleet's events with their driver alerts, and 12 h of operating time per bus beside them."""
    root = tmp_path_factory.mktemp("store")
    write_fleet(root / "events", {bus: [with_alerts(ev) for ev in evs] for bus, evs in FLEET.items()})
    for bus in FLEET:
        OperatingLog(root / "operating", bus, 4, "publish", since=OPERATED[0].timestamp()).flush(
            OPERATED[1].timestamp()
        )
    return root / "events"


def colour_pixels(image: np.ndarray, bgr: tuple[int, int, int]) -> int:
    return int((np.abs(image.astype(int) - bgr).sum(axis=2) < 30).sum())


def test_alerting_events_are_counted_per_square_side_and_level(store: Path) -> None:
    bins = map_bins(read_events(SourceSpec(str(store)), EventQuery()))
    squares = {(round(a, 2), round(b, 2)): i for i, (a, b) in enumerate(zip(bins.lat, bins.lon, strict=True))}
    assert set(squares) == {(45.76, 4.84), (45.74, 4.88)} and bins.unlocated == 0
    right, left, rear, front = (SIDES.index(s) for s in ("right", "left", "rear", "front"))
    stop, depot = bins.counts[squares[(45.76, 4.84)]], bins.counts[squares[(45.74, 4.88)]]
    # At the stop: bus-A's 6 + 2 right info, bus-B's 5 right warnings, 2 left and 1 rear info. bus-B's 4 quiet
    # events on the left (level none) are not alerts and are not drawn.
    assert stop[right].tolist() == [8, 5] and stop[left].tolist() == [2, 0] and stop[rear].tolist() == [1, 0]
    assert depot[front].tolist() == [0, 3] and depot.sum() == 3
    assert bins.totals().sum() == 19


def test_an_event_without_a_position_is_counted_apart(tmp_path: Path) -> None:
    write_fleet(tmp_path / "events", {"bus-C": [event("right", at(5, 9)), event("left", at(5, 9), where=(None, None))]})
    bins = map_bins(read_events(SourceSpec(str(tmp_path / "events")), EventQuery()))
    assert len(bins.lat) == 1 and bins.unlocated == 1


def test_report_map_draws_the_squares_and_the_rates(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "map.png"
    result = vigie("replay", "report", "--map", "--source", store, "-o", out)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"report: {TOTAL} event(s), 2 square(s) of about 1 km -> {out}"
    assert lines[1] == "driver alerts: 19 (11 info, 8 warning), 0.8 per operating hour over 24.0 h"
    image = cv2.imread(str(out))
    assert image is not None and image.shape == (800, 1200, 3)
    # Info and warning markers on the side maps and bars, in their own colours: the data is on the page.
    assert colour_pixels(image, INFO_BGR) > 500 and colour_pixels(image, WARNING_BGR) > 500


def test_the_map_fetches_nothing_from_the_network(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No map tiles: a drawing that tried to open a connection would fail here."""

    def refuse(*args, **kwargs):
        raise AssertionError("the map tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    result = vigie("replay", "report", "--map", "--source", store, "-o", tmp_path / "map.png")
    assert result.exit_code == 0, result.output


def test_a_map_without_any_position_still_reads(tmp_path: Path) -> None:
    write_fleet(tmp_path / "events", {"bus-C": [event("right", at(5, 9), where=(None, None))]})
    result = vigie("replay", "report", "--map", "--source", tmp_path / "events", "-o", tmp_path / "map.png")
    assert result.exit_code == 0, result.output
    assert "0 square(s)" in result.stdout and cv2.imread(str(tmp_path / "map.png")) is not None
