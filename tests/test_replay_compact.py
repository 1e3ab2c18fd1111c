"""`vigie replay compact` and the readers of a store with a curated tier: real Parquet written by the recorder's own
writer, compacted into `curated/events/`, read back by `list`, `show` and the exports, in a folder and in a real S3
server (SeaweedFS)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from click.testing import Result

from core.types import Level
from recorder.events import EventSink, write_events
from replay.compact import curated_sources
from replay.tiers import StoredFile, curated_root, sources_digest

from .event_store import FLEET, MODEL_ID, TOTAL, at, event, vigie, write_fleet

BUS_DAYS = 5  # bus-A on 1, 2 and 3 March, bus-B on 1 and 2 March


def listed(result: Result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    files = (p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


def curated_files(store: Path) -> list[Path]:
    return sorted((store.parent / "curated" / "events").rglob("*.parquet"))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return write_fleet(tmp_path / "events")


def late_upload(store: Path) -> Path:
    """One more raw file for bus-A on 1 March, as a bus that was offline uploads it days later."""
    (path,) = write_events([event("rear", at(1, 21), Level.WARNING)], EventSink(store, "bus-A", MODEL_ID))
    return path


# ---- where the tier is, and what names it ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "curated"),
    [
        ("/srv/var/events", "/srv/var/curated/events"),
        ("city/fleet/events", "city/fleet/curated/events"),  # s3://city/fleet/events, as pyarrow names it
        ("city", None),  # events at the bucket's root: no folder beside them
    ],
)
def test_the_curated_tier_sits_beside_the_raw_one(raw: str, curated: str | None) -> None:
    assert curated_root(raw) == curated


def test_the_digest_changes_with_any_raw_file_and_not_with_their_order() -> None:
    a, b = StoredFile("r/date=d/bus=b/part-1.parquet", 100), StoredFile("r/date=d/bus=b/part-2.parquet", 200)
    assert sources_digest([a, b]) == sources_digest([b, a])
    assert len({sources_digest([a]), sources_digest([a, b]), sources_digest([a, StoredFile(b.path, 201)])}) == 3


# ---- what compact writes ------------------------------------------------------------------------------------------


def test_compact_writes_one_sorted_zstd_file_per_bus_day_and_leaves_raw_untouched(store: Path) -> None:
    before = snapshot(store)
    result = vigie("replay", "compact", "--source", store)
    assert result.exit_code == 0, result.output
    assert f"compact: {BUS_DAYS} bus-day(s): {BUS_DAYS} built ({TOTAL} rows" in result.stdout
    assert snapshot(store) == before
    files = curated_files(store)
    assert [f.parent.relative_to(store.parent / "curated" / "events").as_posix() for f in files] == [
        "date=2026-03-01/bus=bus-A",
        "date=2026-03-01/bus=bus-B",
        "date=2026-03-02/bus=bus-A",
        "date=2026-03-02/bus=bus-B",
        "date=2026-03-03/bus=bus-A",
    ]
    first = pq.ParquetFile(files[0])
    table = first.read()
    starts = table["start_ts"].to_pylist()
    assert table.num_rows == 6 + 2 + 3 and starts == sorted(starts)
    assert {first.metadata.row_group(0).column(i).compression for i in range(table.num_columns)} == {"ZSTD"}
    note = curated_sources(files[0].as_posix(), pafs.LocalFileSystem())
    raw = sorted((store / "date=2026-03-01" / "bus=bus-A").glob("*.parquet"))
    assert note["rows"] == 11 and [s["name"] for s in note["sources"]] == [p.name for p in raw]
    assert [s["size"] for s in note["sources"]] == [p.stat().st_size for p in raw]


def test_compact_twice_changes_nothing(store: Path) -> None:
    assert vigie("replay", "compact", "--source", store).exit_code == 0
    curated = store.parent / "curated"
    before = snapshot(curated)
    result = vigie("replay", "compact", "--source", store)
    assert result.exit_code == 0, result.output
    assert f"0 built (0 rows from 0 raw files), {BUS_DAYS} up to date" in result.stdout
    assert snapshot(curated) == before


def test_a_rebuilt_file_is_byte_identical(store: Path) -> None:
    """Fixed writer settings and no build time inside: the same raw files always give the same curated bytes."""
    vigie("replay", "compact", "--source", store)
    first = {p.name: p.read_bytes() for p in curated_files(store)}
    shutil.rmtree(store.parent / "curated")
    vigie("replay", "compact", "--source", store)
    assert {p.name: p.read_bytes() for p in curated_files(store)} == first


def test_compact_takes_whole_days_in_range(store: Path) -> None:
    result = vigie("replay", "compact", "--source", store, "--from", "2026-03-02T13:00:00", "--to", "2026-03-02")
    assert result.exit_code == 0, result.output
    assert "2 bus-day(s): 2 built (5 rows" in result.stdout
    assert {f.parent.parent.name for f in curated_files(store)} == {"date=2026-03-02"}


# ---- reading both tiers -------------------------------------------------------------------------------------------


def test_list_gives_the_same_rows_before_and_after_compaction(store: Path) -> None:
    before = listed(vigie("replay", "list", "--source", store, "--json"))
    vigie("replay", "compact", "--source", store, "--to", "2026-03-01")  # half compacted: both tiers at once
    half = listed(vigie("replay", "list", "--source", store, "--json"))
    vigie("replay", "compact", "--source", store)
    after = listed(vigie("replay", "list", "--source", store, "--json"))
    assert len(before) == TOTAL and half == before and after == before


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["--from", "2026-03-02"], 1 + 2 + 4),
        (["--from", "2026-03-01T12:00:00", "--to", "2026-03-01T18:00:00"], 3),
        (["--bus", "bus-B"], 9),
        (["--camera", "right", "--level", "warning"], 5),
    ],
)
def test_list_filters_the_curated_tier(store: Path, filters: list[str], expected: int) -> None:
    vigie("replay", "compact", "--source", store)
    assert len(listed(vigie("replay", "list", "--source", store, "--json", *filters))) == expected


def test_a_compacted_bus_day_is_read_from_its_curated_file_only(store: Path) -> None:
    """The raw files of a compacted bus-day are not even opened: garbage of the same size goes unnoticed."""
    vigie("replay", "compact", "--source", store)
    for raw in (store / "date=2026-03-01" / "bus=bus-A").glob("*.parquet"):
        raw.write_bytes(b"x" * raw.stat().st_size)
    rows = listed(vigie("replay", "list", "--source", store, "--json"))
    assert len(rows) == TOTAL


def test_a_late_upload_is_read_raw_until_compact_rebuilds_its_bus_day(store: Path) -> None:
    vigie("replay", "compact", "--source", store)
    late_upload(store)
    result = vigie("replay", "list", "--source", store, "--json")
    assert len(listed(result)) == TOTAL + 1  # the new row, and the day's others once: not from both tiers
    assert result.stderr.startswith("note: 1 bus-day(s) changed since they were compacted (2026-03-01/bus-A)")
    old = curated_files(store)

    result = vigie("replay", "compact", "--source", store)
    assert f"1 built (12 rows from 2 raw files), {BUS_DAYS - 1} up to date, 1 older curated file(s) removed" in (
        result.stdout
    )
    new = curated_files(store)
    assert len(new) == BUS_DAYS and len(set(new) - set(old)) == 1
    result = vigie("replay", "list", "--source", store, "--json")
    assert len(listed(result)) == TOTAL + 1 and result.stderr == ""


def test_show_finds_an_event_in_the_curated_tier(store: Path) -> None:
    vigie("replay", "compact", "--source", store)
    target = FLEET["bus-B"][-1]
    result = vigie("replay", "show", target.event_id, "--source", store)
    assert result.exit_code == 0, result.output
    assert "curated/events/date=2026-03-02/bus=bus-B/events-" in result.stdout
    assert "bus:" in result.stdout and "bus-B" in result.stdout


def test_exports_are_byte_identical_from_raw_and_curated(store: Path, tmp_path: Path) -> None:
    raw = vigie("replay", "export-opendata", "--source", store, "-o", tmp_path / "pkg-raw", "-k", "2")
    assert raw.exit_code == 0, raw.output
    vigie("replay", "compact", "--source", store)
    late = vigie("replay", "export-opendata", "--source", store, "-o", tmp_path / "pkg-curated", "-k", "2")
    assert late.exit_code == 0, late.output
    files = sorted((p.name, p.read_bytes()) for p in (tmp_path / "pkg-raw").iterdir())
    assert files == sorted((p.name, p.read_bytes()) for p in (tmp_path / "pkg-curated").iterdir())


# ---- bad input ----------------------------------------------------------------------------------------------------


def test_a_range_without_raw_events_is_one_line_and_writes_nothing(store: Path) -> None:
    result = vigie("replay", "compact", "--source", store, "--from", "2026-04-01", "--to", "2026-04-30")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "no raw events from 2026-04-01 to 2026-04-30" in result.stderr
    assert not (store.parent / "curated").exists()


def test_compact_refuses_the_curated_tier_as_its_source(store: Path) -> None:
    vigie("replay", "compact", "--source", store)
    result = vigie("replay", "compact", "--source", store.parent / "curated" / "events")
    assert result.exit_code == 2 and "is the curated tier" in result.stderr and result.stderr.count("\n") == 1


def test_an_unreadable_raw_file_is_named_and_its_bus_day_not_written(store: Path) -> None:
    bad = store / "date=2026-03-02" / "bus=bus-B" / "part-000000-foreign.parquet"
    bad.write_bytes(b"not parquet")
    result = vigie("replay", "compact", "--source", store)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert f"{bad}: unreadable Parquet" in result.stderr
    assert not list((store.parent / "curated" / "events").glob("date=2026-03-02/bus=bus-B/*"))
    # Every file there is whole: readable, and nothing hidden left behind.
    for path in (store.parent / "curated").rglob("*"):
        assert path.is_dir() or (not path.name.startswith(".") and pq.read_metadata(path).num_rows > 0)


# ---- the city bucket ----------------------------------------------------------------------------------------------


@pytest.fixture
def bucket(store: Path, tmp_path: Path):
    """A real SeaweedFS server holding the store under s3://city/fleet/events/, uploaded with boto3."""
    from .services.s3 import S3Server

    with S3Server(tmp_path / "s3") as s3:
        s3.create_bucket("city")
        client = s3.client()
        for path in sorted(store.rglob("*.parquet")):
            client.upload_file(str(path), "city", f"fleet/events/{path.relative_to(store).as_posix()}")
        yield s3


def test_compact_in_the_bucket_writes_the_curated_tier_beside_raw(store: Path, bucket) -> None:
    env = {**bucket.env(), "VIGIE_S3_ENDPOINT": bucket.endpoint_url}
    source = "s3://city/fleet/events"
    client = bucket.client()

    def keys(prefix: str) -> list[str]:
        return sorted(o["Key"] for o in client.list_objects_v2(Bucket="city", Prefix=prefix).get("Contents", []))

    raw_before = keys("fleet/events/")
    result = vigie("replay", "compact", "--source", source, env=env)
    assert result.exit_code == 0, result.output
    assert f"{BUS_DAYS} built ({TOTAL} rows" in result.stdout and "-> s3://city/fleet/curated/events" in result.stdout
    assert keys("fleet/events/") == raw_before
    curated = keys("fleet/curated/events/")
    assert len(curated) == BUS_DAYS and all("/events-" in k for k in curated)

    local = listed(vigie("replay", "list", "--source", store, "--json"))
    assert listed(vigie("replay", "list", "--source", source, "--json", env=env)) == local

    # A late upload straight into the bucket: read raw, then rebuilt by the next compact.
    path = late_upload(store)
    client.upload_file(str(path), "city", f"fleet/events/{path.relative_to(store).as_posix()}")
    late = vigie("replay", "list", "--source", source, "--json", env=env)
    assert len(listed(late)) == TOTAL + 1 and "1 bus-day(s) changed" in late.stderr
    result = vigie("replay", "compact", "--source", source, env=env)
    assert "1 built (12 rows from 2 raw files)" in result.stdout and "1 older curated file(s) removed" in result.stdout
    assert len(keys("fleet/curated/events/")) == BUS_DAYS
    fresh = vigie("replay", "list", "--source", source, "--json", env=env)
    assert len(listed(fresh)) == TOTAL + 1 and fresh.stderr == ""


def test_compact_with_refused_credentials_is_one_line(bucket) -> None:
    env = {**bucket.env(secret_key="not-the-secret"), "VIGIE_S3_ENDPOINT": bucket.endpoint_url}
    result = vigie("replay", "compact", "--source", "s3://city/fleet/events", env=env)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
