"""Recorded vehicle logs (CSV, Parquet): played back like the feed, checked by its schema, refused in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from core.types import Indicator
from edge.cli import main
from edge.vehicle import VehicleLog
from edge.vehicle_log import VehicleLogError, read_log

HEADER = "t,speed_kmh,indicator,doors_open,reverse,lat,lon\n"


def test_log_playback_loops_and_knows_when_the_bus_last_stood_still(tmp_path: Path) -> None:
    log = tmp_path / "v.csv"
    log.write_text(
        "t,speed_kmh,indicator,doors_open,reverse\n0,0,off,true,false\n2,6,off,false,false\n4,30,right,false,false\n"
    )
    v = VehicleLog(log, t0=100.0, loop=True)
    assert v.state_at(100.5).doors_open and v.state_at(100.5).stopped_s_ago == 0.0
    moving_off = v.state_at(103.0)
    assert moving_off.speed_kmh == 6 and moving_off.stopped_s_ago == pytest.approx(3.0)
    assert v.state_at(105.0).indicator == Indicator.RIGHT
    assert v.state_at(106.5).doors_open  # the 6 s log has looped


def test_empty_cells_a_byte_order_mark_and_the_bundled_demo_log_are_read(tmp_path: Path) -> None:
    log = tmp_path / "v.csv"
    log.write_text(HEADER + "0,0,,TRUE,0,,\n1.5,12,left,false,1,45.76,4.83\n")
    times, states = read_log(log)
    assert times == (0.0, 1.5)
    assert (states[0].indicator, states[0].doors_open, states[0].reverse, states[0].lat) == (
        Indicator.OFF,
        True,
        False,
        None,
    )
    assert (states[1].speed_kmh, states[1].reverse, states[1].lat, states[1].lon) == (12.0, True, 45.76, 4.83)
    log.write_bytes(b"\xef\xbb\xbf" + log.read_bytes())  # as a spreadsheet saves it
    assert read_log(log)[0] == (0.0, 1.5)
    from edge.config import REPO_ROOT

    assert len(read_log(REPO_ROOT / "configs" / "demo_vehicle.csv")[0]) > 100


# (the CSV after its header, the start of the one-line error after the file name)
BAD_ROWS = [
    ("0,10,off,false,false,,\n1,ten,off,false,false,,\n", ":3: speed_kmh: expected a number, got 'ten'"),
    ("0,\uff15,off,false,false,,\n", ":2: speed_kmh: expected a number, got '\uff15'"),
    ("0,nan,off,false,false,,\n", ":2: speed_kmh: expected a number, got 'nan'"),
    ("0,1e308,off,false,false,,\n", ":2: speed_kmh: must be <= 200"),
    ("0,5,off,false,false,999,4.8\n", ":2: lat: must be <= 90"),
    ("0,5,off,false,false,45.1,\n", ":2: lon: missing while lat is given"),
    ("0,5,up,false,false,,\n", ":2: indicator: expected one of off/left/right/hazard, got 'up'"),
    ("0,5,off,maybe,false,,\n", ":2: doors_open: expected true or false, got 'maybe'"),
    ("0,5,off,yes,false,,\n", ":2: doors_open: expected true or false, got 'yes'"),
    (",5,off,false,false,,\n", ":2: t: missing"),
    ("-1,5,off,false,false,,\n", ":2: t: must be >= 0"),
    ("0,5,off,false,false,,\n0,6,off,false,false,,\n", ":3: t: must increase, got 0.0 after 0.0"),
    ("0,5,off,false,false,,,extra\n", ":2: row has more cells than the header"),
    ("0,5,off,false,false,,\0\n", ":2: lon: expected a number, got '\\x00'"),
    ("0,5," + "x" * 200_000 + ",false,false,,\n", ": not a readable CSV file: field larger than field limit"),
    ("0,5," + "x" * 100_000 + ",false,false,,\n", ":2: indicator: expected one of off/left/right/hazard, got 'xxx"),
    ("", ": no rows"),
]


@pytest.mark.parametrize(("rows", "error"), BAD_ROWS, ids=[e[:60] for _, e in BAD_ROWS])
def test_a_bad_log_row_names_file_line_and_field(tmp_path: Path, rows: str, error: str) -> None:
    log = tmp_path / "v.csv"
    log.write_text(HEADER + rows, encoding="utf-8")
    with pytest.raises(VehicleLogError) as caught:
        VehicleLog(log, t0=0.0)
    assert str(caught.value).startswith(f"{log}{error}")
    assert "\n" not in str(caught.value) and len(str(caught.value)) < len(str(log)) + 220


def test_an_unknown_column_and_a_non_utf8_log_are_refused(tmp_path: Path) -> None:
    log = tmp_path / "v.csv"
    log.write_text("t,speed_kmh,gear\n0,5,3\n")
    with pytest.raises(VehicleLogError, match=r"v.csv:2: gear: unknown field"):
        read_log(log)
    log.write_bytes(b"t,speed_kmh,indicator\n0,5,l\xe9ft\n")
    with pytest.raises(VehicleLogError, match=r"v.csv: not UTF-8 text"):
        read_log(log)


def test_a_parquet_log_goes_through_the_same_schema(tmp_path: Path) -> None:
    good = tmp_path / "drive.parquet"
    pq.write_table(
        pa.table(
            {
                "t": [0.0, 1.0],
                "speed_kmh": [0.0, 25.0],
                "indicator": ["off", "right"],
                "doors_open": [True, False],
                "lat": [None, 45.7],
                "lon": [None, 4.8],
            }
        ),
        good,
    )
    states = read_log(good)[1]
    assert (states[1].speed_kmh, states[1].indicator, states[1].lat) == (25.0, Indicator.RIGHT, 45.7)
    assert states[0].doors_open and states[0].lat is None

    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"t": [0.0, 1.0], "speed_kmh": [5.0, float("inf")]}), bad)
    with pytest.raises(VehicleLogError, match=r"bad.parquet: row 2: speed_kmh: expected a finite number, got inf"):
        read_log(bad)
    text_speed = tmp_path / "text.parquet"
    pq.write_table(pa.table({"t": [0.0], "speed_kmh": ["5"]}), text_speed)
    with pytest.raises(VehicleLogError, match=r"text.parquet: row 1: speed_kmh: expected a number, got '5'"):
        read_log(text_speed)
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(VehicleLogError, match=r"broken.parquet: not a readable Parquet file"):
        read_log(broken)


@pytest.fixture
def bad_log_config(bus_config, tmp_path: Path) -> Path:
    bad = tmp_path / "drive.csv"
    bad.write_text(HEADER + "0,5,off,false,false,,\n1,\uff15,off,false,false,,\n", encoding="utf-8")

    def use_bad_log(data: dict) -> None:
        data["vehicle"] = {"source": "log", "log": str(bad)}

    return bus_config(use_bad_log)


def test_check_config_refuses_a_bad_vehicle_log_in_one_line(bad_log_config: Path) -> None:
    result = CliRunner().invoke(main, ["check-config", str(bad_log_config)])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"{bad_log_config}: vehicle.log: {bad_log_config.parent / 'drive.csv'}:3: speed_kmh: expected a number, "
        "got '\uff15'"
    ]


def test_run_refuses_a_bad_vehicle_log_at_start_with_exit_2(bad_log_config: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--config", str(bad_log_config), "--duration", "5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "drive.csv:3: speed_kmh: expected a number" in proc.stderr
