"""`vigie replay list/show/report/export-opendata` on a real event store: Parquet files written by the recorder's own
writer into a local folder, and the same files in a real S3 server (SeaweedFS)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from core.types import Event, Level, Side, VehicleState
from edge.cli import main
from recorder.events import EventSink, event_row, write_events

MODEL_ID = "person_ssdlite@02430c0ad569"
STOP = (45.7640, 4.8357)  # a stop in Lyon; stored rounded to 45.76, 4.84
DEPOT = (45.7412, 4.8801)


def vigie(*args: str | Path, env: dict | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


def event(camera: str, start: dt.datetime, level: Level = Level.INFO, where: tuple = STOP, n: int = 0) -> Event:
    side = Side(camera)
    ts = start.timestamp() + n * 7.0  # spread a burst over a few minutes, still in the same hour
    return Event(
        event_id=f"{camera}-{int(ts)}-{n}".ljust(32, "0")[:32],
        camera=camera,
        side=side,
        zone="blind-spot",
        start_ts=ts,
        end_ts=ts + 4.0,
        max_level=level,
        min_distance_m=round(0.5 + (n % 6) * 0.4, 2),
        frames=40,
        max_score=0.9,
        vehicle_at_start=VehicleState(speed_kmh=8.0, lat=where[0], lon=where[1]),
    )


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 3, day, hour, 5, tzinfo=dt.UTC)


FLEET = {
    # bus-A, 1 March, 08:05 UTC (band 06-10): 6 right-side events at the stop (a publishable cell) and 2 on the left
    # (too few: suppressed); at 17:05 three warnings at the depot; 2 March, one event; 3 March, two.
    "bus-A": [event("right", at(1, 8), n=i) for i in range(6)]
    + [event("left", at(1, 8), n=i) for i in range(2)]
    + [event("front", at(1, 17), Level.WARNING, DEPOT, n=i) for i in range(3)]
    + [event("rear", at(2, 12))]
    + [event("right", at(3, 9), n=i) for i in range(2)],
    "bus-B": [event("right", at(1, 8), Level.WARNING, n=i) for i in range(5)]
    + [event("left", at(2, 22), Level.NONE, n=i) for i in range(4)],
}
TOTAL = sum(len(v) for v in FLEET.values())


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("store") / "events"
    for bus, events in FLEET.items():
        write_events(events, EventSink(root, bus, MODEL_ID))
    return root


def read_csv(path: Path) -> list[dict]:
    """The CSV as text for dates: what a portal user's spreadsheet gets."""
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={"date": pa.string()})).to_pylist()


def listed(result: Result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


# ---- list ---------------------------------------------------------------------------------------------------------


def test_list_prints_a_table_of_every_event_oldest_first(store: Path) -> None:
    result = vigie("replay", "list", "--source", store)
    lines = result.stdout.splitlines()
    assert result.exit_code == 0
    assert lines[0].startswith("start (UTC)") and "event id" in lines[0]
    assert lines[-1] == f"{TOTAL} event(s)"
    starts = [line[:19] for line in lines[1:-1]]
    assert starts == sorted(starts) and starts[0] == "2026-03-01 08:05:00"


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([], TOTAL),
        (["--from", "2026-03-02"], 1 + 2 + 4),
        (["--to", "2026-03-01"], 6 + 2 + 3 + 5),
        (["--from", "2026-03-02", "--to", "2026-03-02"], 1 + 4),
        (["--from", "2026-03-01T12:00:00", "--to", "2026-03-01T18:00:00"], 3),
        (["--bus", "bus-B"], 9),
        (["--bus", "bus-C"], 0),
        (["--camera", "right"], 6 + 2 + 5),
        (["--level", "warning"], 3 + 5),
        (["--bus", "bus-A", "--camera", "right", "--from", "2026-03-03"], 2),
    ],
)
def test_list_filters(store: Path, filters: list[str], expected: int) -> None:
    rows = listed(vigie("replay", "list", "--source", store, "--json", *filters))
    assert len(rows) == expected


def test_list_json_lines_carry_every_column_and_the_partition_keys(store: Path) -> None:
    row = listed(vigie("replay", "list", "--source", store, "--json", "--bus", "bus-B", "--level", "warning"))[0]
    assert row["bus"] == row["bus_id"] == "bus-B" and row["date"] == "2026-03-01"
    assert row["start_ts"] == "2026-03-01T08:05:00.000Z" and row["lat"] == 45.76 and row["lon"] == 4.84
    assert {"event_id", "camera", "side", "zone", "max_level", "min_distance_m", "speed_kmh_at_start"} <= set(row)


def test_a_date_filter_never_opens_files_of_other_days(store: Path, tmp_path: Path) -> None:
    """Partition pruning: a broken file on 2 March does not matter to a query about 1 March, and is named otherwise."""
    import shutil

    root = tmp_path / "events"
    shutil.copytree(store, root)
    bad = root / "date=2026-03-02" / "bus=bus-A" / "part-000000-broken.parquet"
    bad.write_bytes(b"not parquet at all")
    assert len(listed(vigie("replay", "list", "--source", root, "--json", "--to", "2026-03-01"))) == 16
    result = vigie("replay", "list", "--source", root)
    assert result.exit_code == 2
    assert f"{bad}: unreadable Parquet" in result.stderr and result.stderr.count("\n") == 1


# ---- show ---------------------------------------------------------------------------------------------------------


def test_show_prints_every_field_of_one_event(store: Path) -> None:
    target = FLEET["bus-A"][8]  # the first warning at the depot
    result = vigie("replay", "show", target.event_id, "--source", store)
    assert result.exit_code == 0, result.output
    fields = dict(line.split(":", 1) for line in result.stdout.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    assert fields["event_id"] == target.event_id and fields["max_level"] == "warning"
    assert fields["camera"] == "front" and fields["bus_id"] == "bus-A" and fields["lat"] == "45.74"
    assert fields["start_ts"] == "2026-03-01T17:05:00.000Z"
    assert fields["file"].endswith(".parquet") and "date=2026-03-01/bus=bus-A" in fields["file"]


def test_show_prints_the_clip_when_the_row_has_one(tmp_path: Path) -> None:
    """Rows written once the recorder keeps clips carry a `clip` column; show prints it and how to render it."""
    ev = event("right", at(4, 10))
    row = {**event_row(ev, EventSink(tmp_path, "bus-A", MODEL_ID)), "clip": "bus-A-20260304-100500-right"}
    folder = tmp_path / "events" / "date=2026-03-04" / "bus=bus-A"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([row]), folder / "part-100500-clip.parquet")
    result = vigie("replay", "show", ev.event_id, "--source", tmp_path / "events")
    assert result.exit_code == 0, result.output
    assert "clip:" in result.stdout and "bus-A-20260304-100500-right" in result.stdout
    assert f"vigie replay render {ev.event_id}" in result.stdout


# ---- export-opendata ----------------------------------------------------------------------------------------------


def test_export_keeps_cells_of_at_least_k_events_and_drops_the_rest(store: Path, tmp_path: Path) -> None:
    result = vigie("replay", "export-opendata", "--source", store, "-o", tmp_path / "open" / "vigie-2026-03")
    assert result.exit_code == 0, result.output
    csv_path, parquet_path = tmp_path / "open" / "vigie-2026-03.csv", tmp_path / "open" / "vigie-2026-03.parquet"
    from_csv = read_csv(csv_path)
    from_parquet = pq.read_table(parquet_path).to_pylist()
    assert from_csv == from_parquet
    # Right side at the stop, 1 March 06-10: 6 (bus-A) + 5 (bus-B) = 11. Every other cell has fewer than 5.
    assert from_csv == [
        {"date": "2026-03-01", "hour_band": "06-10", "side": "right", "lat": 45.76, "lon": 4.84, "events": 11}
    ]
    assert "1 cell(s) kept, 5 suppressed" in result.stdout and f"{TOTAL - 11} events" in result.stdout
    assert pq.read_schema(parquet_path).metadata[b"k"] == b"5"


def test_export_with_a_smaller_k_and_a_local_time_zone(store: Path, tmp_path: Path) -> None:
    """Paris is UTC+1 in March: the 22:05 UTC events of 2 March fall on 2 March 23:05, the 20-24 band."""
    result = vigie(
        "replay", "export-opendata", "--source", store, "-o", tmp_path / "o.csv", "-k", "3", "--tz", "Europe/Paris"
    )
    assert result.exit_code == 0, result.output
    cells = {(r["date"], r["hour_band"], r["side"]): r["events"] for r in read_csv(tmp_path / "o.csv")}
    assert cells == {
        ("2026-03-01", "06-10", "right"): 11,
        ("2026-03-01", "16-20", "front"): 3,
        ("2026-03-02", "20-24", "left"): 4,
    }


# ---- report -------------------------------------------------------------------------------------------------------


def test_report_draws_a_readable_figure_with_the_data(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.png"
    result = vigie("replay", "report", "--source", store, "-o", out)
    assert result.exit_code == 0, result.output
    image = cv2.imread(str(out))
    assert image is not None and image.shape == (800, 1200, 3)
    assert (image < 240).any(axis=2).mean() > 0.05  # not a blank page
    # The info and warning bars are drawn in their own colours (BGR): the data is on the page, not just the axes.
    for colour in ((65, 165, 242), (61, 38, 215)):
        assert (np.abs(image.astype(int) - colour).sum(axis=2) < 30).sum() > 500


def test_report_without_matplotlib_says_how_to_get_it(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an install without the `report` extra looks like
    result = vigie("replay", "report", "--source", store, "-o", tmp_path / "r.png")
    assert result.exit_code == 2
    assert result.stderr == "vigie: report needs matplotlib: pip install 'vigie[report]'\n"


# ---- bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "0123456789abcdef0123456789abcdef"], "event 0123456789abcdef0123456789abcdef: not found in"),
        (["list", "--from", "March"], "'March': not a date"),
        (["list", "--from", "2026-03-02", "--to", "2026-03-01"], "--to 2026-03-01: is not after --from 2026-03-02"),
        (["report", "-o", "r.png", "--tz", "Mars/Olympus"], "--tz Mars/Olympus: unknown time zone"),
        (["list", "--source", "ftp://host/events"], "ftp://host/events: unsupported source"),
    ],
)
def test_bad_input_is_one_named_line_with_exit_2(store: Path, args: list[str], message: str) -> None:
    if "--source" not in args:
        args = [*args, "--source", str(store)]
    result = vigie("replay", *args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_a_missing_source_folder_is_named(tmp_path: Path) -> None:
    result = vigie("replay", "list", "--source", tmp_path / "nowhere")
    assert result.exit_code == 2 and result.stderr == f"vigie: {tmp_path / 'nowhere'}: not found\n"


# ---- the city bucket ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bucket(store: Path, tmp_path_factory: pytest.TempPathFactory):
    """A real SeaweedFS S3 server holding the store under s3://city/fleet/events/, uploaded with boto3."""
    from .services.s3 import S3Server

    with S3Server(tmp_path_factory.mktemp("s3")) as s3:
        s3.create_bucket("city")
        client = s3.client()
        for path in sorted(store.rglob("*.parquet")):
            client.upload_file(str(path), "city", f"fleet/events/{path.relative_to(store).as_posix()}")
        yield s3


def test_list_reads_the_bucket_with_a_date_filter(bucket) -> None:
    rows = listed(
        vigie(
            "replay",
            "list",
            "--source",
            "s3://city/fleet/events",
            "--endpoint-url",
            bucket.endpoint_url,
            "--from",
            "2026-03-02",
            "--to",
            "2026-03-02",
            "--json",
            env=bucket.env(),
        )
    )
    assert sorted((r["bus"], r["camera"]) for r in rows) == [("bus-A", "rear")] + [("bus-B", "left")] * 4
    assert {r["date"] for r in rows} == {"2026-03-02"}


def test_the_bucket_lists_like_the_folder(store: Path, bucket) -> None:
    """Same rows from S3 (endpoint from VIGIE_S3_ENDPOINT) as from the local folder they were uploaded from."""
    env = {**bucket.env(), "VIGIE_S3_ENDPOINT": bucket.endpoint_url}
    remote = listed(vigie("replay", "list", "--source", "s3://city/fleet/events", "--bus", "bus-A", "--json", env=env))
    local = listed(vigie("replay", "list", "--source", store, "--bus", "bus-A", "--json"))
    assert remote == local and len(remote) == len(FLEET["bus-A"])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://no-such-bucket/events", "s3://no-such-bucket/events: not found (no such bucket)"),
        ("s3://", "s3://: no bucket in the URL"),
    ],
)
def test_a_wrong_bucket_is_named_with_exit_2(bucket, url: str, message: str) -> None:
    result = vigie("replay", "list", "--source", url, "--endpoint-url", bucket.endpoint_url, env=bucket.env())
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_wrong_credentials_are_one_line_with_exit_2(bucket) -> None:
    result = vigie(
        "replay",
        "list",
        "--source",
        "s3://city/fleet/events",
        "--endpoint-url",
        bucket.endpoint_url,
        env=bucket.env(secret_key="not-the-secret"),
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("vigie: s3://city/fleet/events: ") and result.stderr.count("\n") == 1


def test_show_finds_one_event_in_the_bucket(bucket) -> None:
    target = FLEET["bus-B"][-1]
    result = vigie(
        "replay",
        "show",
        target.event_id,
        "--source",
        "s3://city/fleet/events",
        "--endpoint-url",
        bucket.endpoint_url,
        "--from",
        "2026-03-02",
        env=bucket.env(),
    )
    assert result.exit_code == 0, result.output
    assert f"event_id:            {target.event_id}" in result.stdout
    assert "file:                city/fleet/events/date=2026-03-02/bus=bus-B/part-" in result.stdout
