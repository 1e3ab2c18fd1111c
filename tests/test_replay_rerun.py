"""`vigie replay rerun` on the real demo footage with the real model: the daemon's pipeline, replayed frame by frame.

Reruns are cut to a few seconds of footage (--max-frames) so the whole file stays fast on a 2-core machine.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from click.testing import CliRunner, Result

from edge.cli import main

from .conftest import FOOTAGE, temp_files

DATA = Path(__file__).parent / "data" / "replay"
FRAMES = "40"  # 4 s of every camera: enough for events to start and close


def vigie(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def rows_of(folder: Path) -> list[dict]:
    table = ds.dataset(folder, partitioning="hive").to_table()
    return sorted(table.to_pylist(), key=lambda r: r["event_id"])


def narrow_right_zone(data: dict) -> None:
    """The right blind spot reaches 2.5 m out instead of 5.5 m."""
    right = next(c for c in data["cameras"] if c["name"] == "right")
    right["zones"][0]["ground_polygon"] = [[1.0, -1.275], [-8.0, -1.275], [-8.0, -2.5], [1.0, -2.5]]


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The demo config (as written by tests) rerun on the first 4 s of the four demo cameras: (config, events)."""
    from .conftest import demo_data, to_toml

    tmp = tmp_path_factory.mktemp("rerun")
    data = demo_data()
    data["vehicle"]["log"] = str(Path(__file__).parents[1] / data["vehicle"]["log"])
    config = tmp / "bus.toml"
    config.write_text(to_toml(data))
    out = tmp / "base"
    result = vigie("replay", "rerun", "--config", config, "--out", out, "--max-frames", FRAMES)
    assert result.exit_code == 0, result.output
    return config, out


def test_rerun_writes_events_in_the_daemons_layout(baseline) -> None:
    """Events land in `<out>/date=…/bus=…/part-*.parquet`, the layout of events.dir, readable by `list --source`."""
    _, out = baseline
    files = list(out.glob("date=2026-01-05/bus=demo-01/part-*.parquet"))
    assert files and not temp_files(out) and (out.stat().st_mode & 0o777) == 0o700
    assert {(p.name, p.stat().st_mode & 0o777) for p in [*files, out / "_rerun.json"]} == {
        (p.name, 0o600) for p in [*files, out / "_rerun.json"]
    }
    assert ds.dataset(out, partitioning="hive").schema.metadata[b"vigie.schema"].startswith(b"vigie.events/")
    listed = vigie("replay", "list", "--source", out)
    assert listed.exit_code == 0
    assert listed.stdout.strip().endswith(f"{len(rows_of(out))} event(s)")


def test_two_reruns_give_identical_rows(baseline, tmp_path: Path) -> None:
    config, out = baseline
    again = tmp_path / "again"
    result = vigie("replay", "rerun", "--config", config, "--out", again, "--max-frames", FRAMES)
    assert result.exit_code == 0, result.output
    first, second = rows_of(out), rows_of(again)
    assert len(first) >= 5
    assert first == second


def test_rerun_reports_its_speed_against_the_live_rate(baseline, tmp_path: Path) -> None:
    config, _ = baseline
    result = vigie(
        "replay",
        "rerun",
        "rear=" + str(FOOTAGE / "cam_rear.mp4"),
        "--config",
        config,
        "--out",
        tmp_path / "o",
        "--max-frames",
        "10",
    )
    assert result.exit_code == 0, result.output
    assert re.search(
        r"rerun: 10 frames from 1 camera\(s\) in [\d.]+ s \(\d+ fps, [\d.]+x the live 10 fps\)", result.stdout
    )


def test_compare_reports_the_events_a_narrower_zone_removes(baseline, bus_config, tmp_path: Path) -> None:
    """Only the right camera's zone changed: events there disappear, nothing else moves."""
    _, out = baseline
    config = bus_config(narrow_right_zone)
    result = vigie(
        "replay", "rerun", "--config", config, "--out", tmp_path / "narrow", "--max-frames", FRAMES, "--compare", out
    )
    assert result.exit_code == 0, result.output
    before = rows_of(out)
    after = rows_of(tmp_path / "narrow")
    removed = [line for line in result.stdout.splitlines() if line.lstrip().startswith("- removed")]
    assert removed and all("right/blind-spot" in line for line in removed)
    assert len(removed) == len(before) - len(after)
    assert f"compare: 0 added, {len(removed)} removed, 0 shifted" in result.stdout
    assert f"0 level changed, {len(after)} unchanged" in result.stdout


def test_compare_with_the_same_config_finds_no_change(baseline, tmp_path: Path) -> None:
    config, out = baseline
    result = vigie(
        "replay", "rerun", "--config", config, "--out", tmp_path / "same", "--max-frames", FRAMES, "--compare", out
    )
    n = len(rows_of(out))
    assert result.exit_code == 0, result.output
    assert f"0 added, 0 removed, 0 shifted (start moved > 0.5 s), 0 level changed, {n} unchanged" in result.stdout


def test_labels_are_matched_one_to_one_with_alert_delay(baseline, tmp_path: Path) -> None:
    """Hand labels of the rear camera's first 60 frames; a standing bus (no vehicle log) so every stay alerts."""
    config, _ = baseline
    still = tmp_path / "still.csv"
    still.write_text("t,speed_kmh,indicator,doors_open,reverse\n0,0,off,false,false\n")
    result = vigie(
        "replay",
        "rerun",
        "rear=" + str(FOOTAGE / "cam_rear.mp4"),
        "--config",
        config,
        "--vehicle",
        still,
        "--out",
        tmp_path / "labelled",
        "--max-frames",
        "60",
        "--labels",
        DATA / "rear_labels.csv",
    )
    assert result.exit_code == 0, result.output
    m = re.search(
        r"labels: 3 person-stay\(s\), (\d+) event\(s\): (\d+) matched one-to-one, (\d+) missed", result.stdout
    )
    assert m, result.stdout
    events, matched, missed = int(m[1]), int(m[2]), int(m[3])
    # The man leaving at the edge is seen for too few frames to be confirmed: he cannot be found.
    assert 0 < matched < 3 and matched + missed == 3 and matched <= events
    assert "missed: rear/behind frames 0..4" in result.stdout
    delay = re.search(r"alert delay: mean ([\d.]+) frames \(([\d.]+) s\), median ([\d.]+) frames", result.stdout)
    assert delay, result.stdout
    assert float(delay[2]) == pytest.approx(float(delay[1]) / 10, abs=0.01)  # the footage plays at 10 fps


def test_start_sets_the_time_of_frame_zero(baseline, tmp_path: Path) -> None:
    config, _ = baseline
    out = tmp_path / "june"
    result = vigie(
        "replay",
        "rerun",
        "rear=" + str(FOOTAGE / "cam_rear.mp4"),
        "--config",
        config,
        "--out",
        out,
        "--max-frames",
        "30",
        "--start",
        "2025-06-01T10:00:00",
    )
    assert result.exit_code == 0, result.output
    rows = rows_of(out)
    assert rows and all(r["date"] == "2025-06-01" and r["start_ts"].hour == 10 for r in rows)


def test_an_earlier_rerun_is_kept_unless_forced(baseline, tmp_path: Path) -> None:
    config, _ = baseline
    args = [
        "replay",
        "rerun",
        "rear=" + str(FOOTAGE / "cam_rear.mp4"),
        "--config",
        config,
        "--out",
        tmp_path / "o",
        "--max-frames",
        "30",
    ]
    assert vigie(*args).exit_code == 0
    refused = vigie(*args)
    assert refused.exit_code == 2 and "already holds a rerun's events" in refused.stderr
    assert vigie(*args, "--force").exit_code == 0
    assert len(list((tmp_path / "o").rglob("part-*.parquet"))) == 1


def test_force_never_replaces_a_store_that_no_rerun_wrote(baseline, tmp_path: Path) -> None:
    config, _ = baseline
    store = tmp_path / "var" / "events"
    kept = store / "date=2026-01-05" / "bus=demo-01" / "part-080000-daemon.parquet"
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"the daemon's events")
    result = vigie(
        "replay",
        "rerun",
        "rear=" + str(FOOTAGE / "cam_rear.mp4"),
        "--config",
        config,
        "--out",
        store,
        "--max-frames",
        "5",
        "--force",
    )
    assert result.exit_code == 2 and "holds events that no rerun wrote (no _rerun.json)" in result.stderr
    assert kept.read_bytes() == b"the daemon's events"


@pytest.mark.parametrize(
    ("footage", "message"),
    [
        (["/nowhere/cam.mp4"] * 4, "/nowhere/cam.mp4: footage file not found (camera front)"),
        (["rear=/nowhere/rear.mp4"], "/nowhere/rear.mp4: footage file not found (camera rear)"),
        ([str(FOOTAGE / "cam_rear.mp4")], "FOOTAGE: 1 file(s) for 4 cameras (front, right, rear, left)"),
        (["top=" + str(FOOTAGE / "cam_rear.mp4")], "FOOTAGE top=…: no camera 'top' in the config"),
        (["rear=" + str(FOOTAGE / "cam_rear.mp4"), str(FOOTAGE / "cam_left.mp4")], "FOOTAGE: use either NAME=PATH"),
        ([f"rear={DATA / 'rear_labels.csv'}"], "rear_labels.csv: not a readable video (camera rear)"),
    ],
)
def test_bad_footage_is_named_with_exit_2(baseline, tmp_path: Path, footage: list[str], message: str) -> None:
    config, _ = baseline
    result = vigie("replay", "rerun", *footage, "--config", config, "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--config", "/nowhere/bus.toml"], "/nowhere/bus.toml: file not found"),
        (["--vehicle", "/nowhere/drive.csv"], "/nowhere/drive.csv: vehicle log not found"),
        (["--labels", "/nowhere/labels.csv"], "/nowhere/labels.csv: labels file not found"),
        (["--compare", "/nowhere/events"], "/nowhere/events: not found"),
        (["--start", "yesterday"], "'yesterday': not a date"),
    ],
)
def test_bad_rerun_inputs_are_named_with_exit_2(baseline, tmp_path: Path, extra: list[str], message: str) -> None:
    config, _ = baseline
    args = ["replay", "rerun", "rear=" + str(FOOTAGE / "cam_rear.mp4"), "--out", tmp_path / "o"]
    if "--config" not in extra:
        args += ["--config", str(config)]
    result = vigie(*args, *extra)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output
