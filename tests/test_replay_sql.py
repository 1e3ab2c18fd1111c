"""`vigie replay sql`: DuckDB over a real event store (the recorder's own Parquet, raw and compacted), locally and in
a real S3 server; answers checked against pyarrow, the lockdown checked by trying to get out."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import pyarrow.compute as pc
import pytest

from replay.query import EventQuery, SourceSpec
from replay.source import read_events

from .event_store import FLEET, TOTAL, vigie, write_fleet

PER_BUS = "SELECT bus, count(*) AS n, min(start_ts) AS first FROM events GROUP BY bus ORDER BY bus"


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return write_fleet(tmp_path / "events")


def sql(store: Path | str, query: str, *flags: str, env: dict | None = None):
    return vigie("replay", "sql", query, "--source", store, *flags, env=env)


def test_a_table_answers_like_pyarrow(store: Path) -> None:
    result = sql(store, PER_BUS)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["bus", "n", "first"] and set(lines[1]) == {"-", " "}
    assert lines[2].split() == ["bus-A", str(len(FLEET["bus-A"])), "2026-03-01T08:05:00.000Z"]
    assert lines[3].split()[:2] == ["bus-B", str(len(FLEET["bus-B"]))] and lines[-1] == "2 row(s)"


def test_csv_and_json_carry_the_same_rows(store: Path) -> None:
    rows = list(csv.DictReader(io.StringIO(sql(store, PER_BUS, "--csv").stdout)))
    objects = [json.loads(line) for line in sql(store, PER_BUS, "--json").stdout.splitlines()]
    assert [(r["bus"], int(r["n"]), r["first"]) for r in rows] == [(o["bus"], o["n"], o["first"]) for o in objects]
    assert sum(o["n"] for o in objects) == TOTAL


def test_every_column_is_there_with_date_and_bus(store: Path) -> None:
    described = [json.loads(line) for line in sql(store, "DESCRIBE events", "--json").stdout.splitlines()]
    columns = {d["column_name"]: d["column_type"] for d in described}
    assert columns["start_ts"] == "TIMESTAMP WITH TIME ZONE" and columns["date"] == columns["bus"] == "VARCHAR"
    assert columns["info_alerts"] == "SMALLINT" and len(columns) == 23 + 2


def test_the_same_answer_from_raw_half_compacted_and_compacted(store: Path) -> None:
    query = "SELECT date, bus, camera, max_level, count(*) AS n FROM events GROUP BY ALL ORDER BY ALL"
    raw = sql(store, query, "--json").stdout
    vigie("replay", "compact", "--source", store, "--to", "2026-03-01")
    assert sql(store, query, "--json").stdout == raw
    vigie("replay", "compact", "--source", store)
    assert sql(store, query, "--json").stdout == raw
    expected = read_events(SourceSpec(str(store)), EventQuery(level="warning")).num_rows
    warnings = sql(store, "SELECT count(*) AS n FROM events WHERE max_level = 'warning'", "--json").stdout
    assert json.loads(warnings) == {"n": expected} and expected == 3 + 5


def test_a_partition_filter_opens_only_its_folders(store: Path) -> None:
    """A broken file on 2 March does not matter to a query about 1 March (pruned), and is named otherwise."""
    bad = store / "date=2026-03-02" / "bus=bus-A" / "part-000000-broken.parquet"
    bad.write_bytes(b"not parquet at all")
    one_day = sql(store, "SELECT count(*) AS n FROM events WHERE date = '2026-03-01' AND bus = 'bus-A'", "--json")
    assert one_day.exit_code == 0, one_day.output
    assert json.loads(one_day.stdout) == {"n": 11}
    everything = sql(store, "SELECT count(*) FROM events")
    assert everything.exit_code == 2 and str(bad) in everything.stderr and everything.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELEC count(*) FROM events", 'syntax error at or near "SELEC"'),
        ("SELECT nope FROM events", 'column "nope" not found'),
        ("SELECT * FROM trips", "Table with name trips does not exist"),
        ("SELECT 1; SELECT 2", "one SELECT statement"),
        ("CREATE TABLE copy AS SELECT * FROM events", "one SELECT statement"),
    ],
)
def test_bad_sql_is_one_line_with_exit_2(store: Path, query: str, message: str) -> None:
    result = sql(store, query)
    assert result.exit_code == 2 and result.stdout == ""
    assert message in result.stderr and result.stderr.startswith("vigie: SQL: ") and result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM read_csv('{secret}')",
        "SELECT * FROM read_parquet('{raw}')",
        "SELECT * FROM glob('{dir}/*')",
        "COPY (SELECT * FROM events) TO '{out}'",
        "ATTACH '{out}' AS other",
        "SET enable_external_access = true",
        "INSTALL httpfs",
        "SELECT * FROM read_text('http://127.0.0.1:9/')",
    ],
)
def test_a_query_cannot_reach_files_urls_or_settings(store: Path, tmp_path: Path, query: str) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    raw = next(store.rglob("*.parquet"))
    out = tmp_path / "written.csv"
    result = sql(store, query.format(secret=secret, raw=raw, dir=tmp_path, out=out))
    assert result.exit_code == 2 and result.stdout == "" and result.stderr.count("\n") == 1
    assert not out.exists()


@pytest.mark.parametrize(
    "statement",
    [
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "SET temp_directory = '{dir}'",
        "COPY (SELECT 1) TO '{dir}/out.csv'",
        "ATTACH '{dir}/other.db' AS other",
        "INSTALL httpfs",
    ],
)
def test_the_connection_itself_refuses_what_the_cli_never_sends(tmp_path: Path, statement: str) -> None:
    """Below the one-SELECT rule: settings are locked and no file can be written, whatever statement gets there."""
    import duckdb
    import pyarrow as pa

    from replay.sql import locked_connection

    con = locked_connection(duckdb, pa.table({"a": [1]}))
    with pytest.raises((duckdb.PermissionException, duckdb.InvalidInputException)):
        con.execute(statement.format(dir=tmp_path))
    assert con.execute("SELECT sum(a) FROM events").fetchall() == [(1,)]
    assert list(tmp_path.iterdir()) == []


def test_without_duckdb_it_says_how_to_get_it(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)  # an install without the `sql` extra
    result = sql(store, PER_BUS)
    assert result.exit_code == 2 and result.stderr == "vigie: sql needs duckdb: pip install 'vigie[sql]'\n"


def test_the_bucket_answers_like_the_folder(store: Path, tmp_path: Path) -> None:
    from .services.s3 import S3Server

    vigie("replay", "compact", "--source", store, "--to", "2026-03-01")
    with S3Server(tmp_path / "s3") as s3:
        s3.create_bucket("city")
        client = s3.client()
        for path in sorted(store.parent.rglob("*.parquet")):
            client.upload_file(str(path), "city", f"fleet/{path.relative_to(store.parent).as_posix()}")
        env = {**s3.env(), "VIGIE_S3_ENDPOINT": s3.endpoint_url}
        query = "SELECT bus, date, count(*) AS n, sum(frames) AS frames FROM events GROUP BY ALL ORDER BY ALL"
        remote = sql("s3://city/fleet/events", query, "--json", env=env)
        assert remote.exit_code == 0, remote.output
        assert remote.stdout == sql(store, query, "--json").stdout
        total = sum(json.loads(line)["n"] for line in remote.stdout.splitlines())
        assert total == TOTAL == pc.sum(read_events(SourceSpec(str(store)), EventQuery())["frames"]).as_py() // 40
