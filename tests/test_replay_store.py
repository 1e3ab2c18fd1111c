"""`vigie replay list/show/report` on a real event store: Parquet files written by the recorder's own
writer into a local folder, and the same files in a real S3 server (SeaweedFS)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import Result

from recorder.events import EventSink, event_row

from .conftest import temp_files
from .event_store import FLEET, MODEL_ID, TOTAL, at, event, vigie, write_fleet


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fleet(tmp_path_factory.mktemp("store") / "events")


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
    # No clips folder to check it against (not the repository's own var/clips, which a demo run may have filled).
    clips = tmp_path / "no-clips-here"
    result = vigie("replay", "show", ev.event_id, "--source", tmp_path / "events", "--clips", clips)
    assert result.exit_code == 0, result.output
    assert "clip:" in result.stdout and "bus-A-20260304-100500-right" in result.stdout
    assert f"vigie replay render {ev.event_id}" in result.stdout


# ---- report -------------------------------------------------------------------------------------------------------


def test_report_draws_a_readable_figure_with_the_data(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.png"
    result = vigie("replay", "report", "--source", store, "-o", out)
    assert result.exit_code == 0, result.output
    image = cv2.imread(str(out))
    assert image is not None and image.shape == (800, 1200, 3)
    assert (out.stat().st_mode & 0o777) == 0o600 and not temp_files(tmp_path)  # core.atomic, like every output
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


def test_the_bucket_exports_the_same_open_data_package_as_the_folder(store: Path, bucket, tmp_path: Path) -> None:
    """Byte for byte: a published package can be checked against the city's bucket as well as a copy of it."""
    env = {**bucket.env(), "VIGIE_S3_ENDPOINT": bucket.endpoint_url}
    for name, source in (("local", str(store)), ("bucket", "s3://city/fleet/events")):
        result = vigie("replay", "export-opendata", "--source", source, "-o", tmp_path / name, "-k", "2", env=env)
        assert result.exit_code == 0, result.output
    local = sorted((p.name, p.read_bytes()) for p in (tmp_path / "local").iterdir())
    assert local == sorted((p.name, p.read_bytes()) for p in (tmp_path / "bucket").iterdir()) and len(local) == 4


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
