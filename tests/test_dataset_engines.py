"""The event store as the city's data platform reads it: Apache Spark (pyspark, local mode on the machine's Java),
Polars and DuckDB read the raw and the curated tiers with the README's one-line reads, and get the rows and column
types pyarrow reads; Spark prunes on date and bus.

Spark starts a JVM (tens of seconds on a busy 2-core machine): one small session for the module, one core, one
shuffle partition, no UI. Partition type inference is off, as the README's one-line read says, so `date` and `bus`
are text as in pyarrow (a bus id like "0042" must not become 42).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from replay.query import EventQuery, SourceSpec
from replay.source import DATASET_SCHEMA, read_events

from .event_store import FLEET, TOTAL, vigie, write_fleet

# What each pyarrow type of the event dataset is in Spark.
SPARK_TYPES = {
    pa.int16(): "ShortType()",
    pa.int32(): "IntegerType()",
    pa.string(): "StringType()",
    pa.float32(): "FloatType()",
    pa.float64(): "DoubleType()",
    pa.bool_(): "BooleanType()",
    pa.timestamp("ms", tz="UTC"): "TimestampType()",
}


@pytest.fixture(scope="module")
def tiers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The test fleet raw, and compacted: {"raw": …/events, "curated": …/curated/events}."""
    raw = write_fleet(tmp_path_factory.mktemp("store") / "events")
    result = vigie("replay", "compact", "--source", raw)
    assert result.exit_code == 0, result.output
    return {"raw": raw, "curated": raw.parent / "curated" / "events"}


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[1]")
        .appName("vigie-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def pyarrow_table(root: Path) -> pa.Table:
    """The tier read as plain pyarrow reads a hive dataset (not through vigie's reader)."""
    import pyarrow.dataset as ds

    from replay.source import PARTITIONING

    dataset = ds.dataset(root, format="parquet", partitioning=PARTITIONING, schema=DATASET_SCHEMA)
    return dataset.to_table()


@pytest.mark.spark
@pytest.mark.parametrize("tier", ["raw", "curated"])
def test_spark_reads_every_row_with_pyarrows_types(spark, tiers: dict[str, Path], tier: str) -> None:
    frame = spark.read.parquet(str(tiers[tier]))
    expected = pyarrow_table(tiers[tier])
    assert frame.count() == expected.num_rows == TOTAL
    spark_types = {f.name: repr(f.dataType) for f in frame.schema.fields}
    assert spark_types == {f.name: SPARK_TYPES[f.type] for f in expected.schema}


@pytest.mark.spark
@pytest.mark.parametrize("tier", ["raw", "curated"])
def test_spark_prunes_date_and_bus_folders(spark, tiers: dict[str, Path], tier: str, tmp_path: Path) -> None:
    """A broken file in another partition is never opened by a query on one date and bus, and the plan says why."""
    root = tmp_path / tier
    shutil.copytree(tiers[tier], root)
    (root / "date=2026-03-02" / "bus=bus-A" / "part-000000-broken.parquet").write_bytes(b"not parquet at all")
    frame = spark.read.parquet(str(root)).where("date = '2026-03-01' AND bus = 'bus-A'")
    plan = frame._jdf.queryExecution().executedPlan().toString()
    assert "PartitionFilters: [" in plan and "(date#" in plan and "(bus#" in plan
    assert frame.count() == 6 + 2 + 3  # bus-A's 1 March
    with pytest.raises(Exception, match=r"part-000000-broken\.parquet"):
        spark.read.parquet(str(root)).count()


@pytest.mark.spark
def test_spark_rows_match_vigies_reader(spark, tiers: dict[str, Path]) -> None:
    """Same events, same values: the curated tier read by Spark against `vigie replay list`'s reader on raw."""
    ours = read_events(SourceSpec(str(tiers["raw"])), EventQuery(bus="bus-B"))
    rows = spark.read.parquet(str(tiers["curated"])).where("bus = 'bus-B'").orderBy("start_ts", "event_id").collect()
    assert [r["event_id"] for r in rows] == ours["event_id"].to_pylist()
    assert [r["min_distance_m"] for r in rows] == ours["min_distance_m"].to_pylist()
    assert len(rows) == len(FLEET["bus-B"])


@pytest.mark.parametrize("tier", ["raw", "curated"])
def test_polars_reads_the_tiers_as_the_readme_says(tiers: dict[str, Path], tier: str) -> None:
    import polars as pl

    frame = pl.scan_parquet(
        f"{tiers[tier]}/**/*.parquet", hive_partitioning=True, hive_schema={"date": pl.String, "bus": pl.String}
    )
    assert frame.select(pl.len()).collect().item() == TOTAL
    one = frame.filter((pl.col("date") == "2026-03-01") & (pl.col("bus") == "bus-A")).select(pl.len())
    assert one.collect().item() == 6 + 2 + 3
    schema = frame.collect_schema()
    assert schema["start_ts"] == pl.Datetime("ms", "UTC") and schema["info_alerts"] == pl.Int16


@pytest.mark.parametrize("tier", ["raw", "curated"])
def test_duckdb_reads_the_tiers_as_the_readme_says(tiers: dict[str, Path], tier: str) -> None:
    import duckdb

    files = f"{tiers[tier]}/*/*/*.parquet"
    hive = "hive_partitioning = true, hive_types = {'date': VARCHAR, 'bus': VARCHAR}"
    events = duckdb.sql(f"SELECT * FROM read_parquet('{files}', {hive})")
    assert duckdb.sql("SELECT count(*) FROM events").fetchall() == [(TOTAL,)]
    one = duckdb.sql("SELECT count(*) FROM events WHERE date = '2026-03-01' AND bus = 'bus-A'").fetchall()
    assert one == [(6 + 2 + 3,)]
    types = dict(zip(events.columns, map(str, events.types), strict=True))
    assert types["start_ts"] == "TIMESTAMP WITH TIME ZONE" and types["bus"] == "VARCHAR" and len(types) == 25
