"""`vigie replay render` on clips the real daemon recorded from the demo footage."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from edge.cli import main
from recorder.audit import read_log
from replay.render import SHEET_TILES

from .conftest import REPO_ROOT, FullDisk, demo_data, free_port, temp_files, to_toml, wait_until


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """var/ of a daemon run with the recorder on (whole-person blur: the quickest anonymiser), stopped once an event
    of a few seconds has closed: its clip (finished by the stop) then holds a contact sheet's worth of frames. The
    run ends on what happened in the footage, not after a guessed time."""
    tmp = tmp_path_factory.mktemp("render")
    data = demo_data()
    data["alerts"]["endpoint"] = f"tcp://127.0.0.1:{free_port()}"
    data["vehicle"] = {"source": "none"}
    data["events"] = {"dir": str(tmp / "var" / "events"), "flush_s": 2}
    data["recorder"] = {
        "enabled": True,
        "dir": str(tmp / "var" / "clips"),
        "state_dir": str(tmp / "var" / "state"),
        "pre_roll_s": 2,
        "post_roll_s": 1,
        "mode": "persons",
    }
    for cam in data["cameras"]:
        cam["source"] = str(REPO_ROOT / cam["source"])
    (tmp / "bus.toml").write_text(to_toml(data))
    log = tmp / "daemon.log"
    with open(log, "w") as out:  # a file, not a pipe: nobody drains a pipe while the test runs
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(tmp / "bus.toml")], stdout=out, stderr=out
        )
    try:
        wait_until(lambda: long_event(tmp / "var"), f"an event of {LONG_EVENT_S} s or more with a clip", timeout=120)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
    assert proc.returncode == 0, log.read_text()[-3000:]
    return tmp / "var"


def clip_frames(video: Path) -> int:
    return pq.read_metadata(video.with_name(f"{video.stem}.frames.parquet")).num_rows


def finished_clips(var: Path) -> list[Path]:
    return [v for v in (var / "clips").rglob("*.mp4") if not v.name.startswith(".")]  # not one being written


LONG_EVENT_S = 2 * SHEET_TILES / 5  # at the default clip_fps of 5: twice the frames of a contact sheet


def long_event(var: Path) -> bool:
    """A closed event this long, with a clip, is in the store (event files appear whole: core.atomic)."""
    for part in (var / "events").rglob("part-*.parquet"):
        rows = pq.read_table(part, columns=["duration_s", "clip"]).to_pylist()
        if any(r["duration_s"] >= LONG_EVENT_S and r["clip"] for r in rows):
            return True
    return False


def an_event_with_a_clip(var: Path) -> dict:
    """The event whose clip is longest (the run was stopped once one had a contact sheet's worth of frames)."""
    rows = ds.dataset(var / "events", partitioning="hive").to_table().to_pylist()
    clips = {v.stem: v for v in finished_clips(var)}
    with_clip = [r for r in rows if r["clip"] in clips]
    assert with_clip, "the run left no event with a clip"
    return max(with_clip, key=lambda r: clip_frames(clips[r["clip"]]))


def render(var: Path, event_id: str, output: Path, *extra: str):
    return CliRunner().invoke(
        main,
        [
            "replay",
            "render",
            event_id,
            "-o",
            str(output),
            "--reason",
            "test: incident 42",
            "--source",
            str(var / "events"),
            "--clips",
            str(var / "clips"),
            "--audit-log",
            str(var / "audit.log"),
            *extra,
        ],
    )


def test_render_draws_overlays_on_every_frame_of_the_clip(recorded: Path, tmp_path: Path) -> None:
    event = an_event_with_a_clip(recorded)
    out = tmp_path / "event.mp4"
    result = render(recorded, event["event_id"], out)
    assert result.exit_code == 0, result.output
    (clip,) = (recorded / "clips").rglob(f"{event['clip']}.mp4")
    sidecar = pq.read_table(clip.with_name(f"{event['clip']}.frames.parquet")).to_pylist()
    rendered, source = cv2.VideoCapture(str(out)), cv2.VideoCapture(str(clip))
    assert int(rendered.get(cv2.CAP_PROP_FRAME_COUNT)) == len(sidecar)
    changed_at_boxes = 0
    for row in sidecar:
        (_, drawn), (_, plain) = rendered.read(), source.read()
        for x1, y1, _, y2 in (np.array(b).astype(int) for b in row["boxes"]):
            edge = np.s_[max(y1, 0) : y2, max(x1, 0) : max(x1, 0) + 2]  # the box's left side, where the line is
            changed_at_boxes += int(np.abs(drawn[edge].astype(int) - plain[edge].astype(int)).mean() > 20)
    assert changed_at_boxes > len(sidecar) // 2
    assert (out.stat().st_mode & 0o777) == 0o600  # a render holds the clip's pixels


def test_a_contact_sheet_and_every_render_is_in_the_access_log(recorded: Path, tmp_path: Path) -> None:
    event = an_event_with_a_clip(recorded)
    before = len(read_log(recorded / "audit.log"))
    result = render(recorded, event["event_id"], tmp_path / "sheet.png")
    assert result.exit_code == 0, result.output
    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    assert sheet is not None and sheet.shape[0] > 500 and sheet.std() > 10
    assert ((tmp_path / "sheet.png").stat().st_mode & 0o777) == 0o600
    entries = read_log(recorded / "audit.log")
    assert len(entries) == before + 1
    assert entries[-1]["action"] == "render" and entries[-1]["reason"] == "test: incident 42"
    assert entries[-1]["clip"].endswith(f"{event['clip']}.mp4")


def test_render_without_a_reason_is_refused(recorded: Path, tmp_path: Path) -> None:
    event = an_event_with_a_clip(recorded)
    result = CliRunner().invoke(
        main,
        [
            "replay",
            "render",
            event["event_id"],
            "-o",
            str(tmp_path / "x.mp4"),
            "--source",
            str(recorded / "events"),
            "--clips",
            str(recorded / "clips"),
        ],
    )
    assert result.exit_code == 2 and "--reason" in result.output
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_corrupt_or_missing_clip_is_one_line_exit_2(recorded: Path, tmp_path: Path, damage: str) -> None:
    var = tmp_path / "var"
    shutil.copytree(recorded, var)
    event = an_event_with_a_clip(var)
    (clip,) = (var / "clips").rglob(f"{event['clip']}.mp4")
    if damage == "truncate":
        clip.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    else:
        clip.unlink()
    result = render(var, event["event_id"], tmp_path / "out.mp4")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and event["clip"] in result.stderr
    assert not (tmp_path / "out.mp4").exists() and not temp_files(tmp_path)  # the render raised mid-write


def test_the_sidecar_keeps_each_zone_as_a_typed_struct(recorded: Path) -> None:
    event = an_event_with_a_clip(recorded)
    (clip,) = (recorded / "clips").rglob(f"{event['clip']}.mp4")
    sidecar = pq.read_table(clip.with_name(f"{event['clip']}.frames.parquet"))
    assert sidecar.schema.metadata[b"vigie.schema"] == b"vigie.clip-frames/3"
    struct = sidecar.schema.field("zones").type.value_type
    assert [(f.name, str(f.type).replace("element", "item"), f.nullable) for f in struct] == [
        ("zone", "string", False),
        ("level", "string", False),
        ("track_ids", "list<item: int64>", False),
        ("nearest_m", "float", True),
    ]
    zones = [z for row in sidecar.column("zones").to_pylist() for z in row]
    assert zones and {z["level"] for z in zones} <= {"none", "info", "warning"}
    assert any(z["track_ids"] and z["level"] != "none" for z in zones)


def test_a_clip_recorded_before_the_typed_zones_still_renders(recorded: Path, tmp_path: Path) -> None:
    """Clips kept in the city's bucket from before vigie.clip-frames/3 hold their zones as a JSON string."""
    var = tmp_path / "var"
    shutil.copytree(recorded, var)
    event = an_event_with_a_clip(var)
    (clip,) = (var / "clips").rglob(f"{event['clip']}.mp4")
    path = clip.with_name(f"{event['clip']}.frames.parquet")
    table = pq.read_table(path)
    as_json = pa.array([json.dumps(z) for z in table.column("zones").to_pylist()], pa.string())
    old = table.set_column(table.schema.get_field_index("zones"), "zones", as_json)
    pq.write_table(
        old.replace_schema_metadata({**table.schema.metadata, b"vigie.schema": b"vigie.clip-frames/2"}), path
    )
    result = render(var, event["event_id"], tmp_path / "old.png")
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(tmp_path / "old.png")) is not None


@pytest.mark.parametrize("name", ["out.mp4", "out.png"])
def test_a_render_the_disk_refuses_is_one_line_and_leaves_no_file(
    recorded: Path, full_disk: FullDisk, name: str
) -> None:
    """cv2 reports a failed write by returning False (imwrite) or by writing nothing (VideoWriter): neither may be
    published as a finished render."""
    event = an_event_with_a_clip(recorded)
    result = render(recorded, event["event_id"], full_disk.root / name)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot write" in result.stderr, result.stderr
    assert sorted(p.name for p in full_disk.root.iterdir()) == ["filler"]
