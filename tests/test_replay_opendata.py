"""`vigie replay export-opendata` and `export-shared` on a real event store (the recorder's own Parquet writer), the
packages checked by the real `frictionless` tool, as a portal or a partner would check them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from recorder.audit import read_log
from replay.errors import ReplayError
from replay.opendata.folder import PUBLIC, StagedFolder

from .event_store import FLEET, TOTAL, vigie, write_fleet

FRICTIONLESS = Path(sys.executable).with_name("frictionless")
PACKAGE_FILES = {"README.md", "blind-spot-counts.csv", "blind-spot-counts.parquet", "datapackage.json"}
SHARED_FILES = {"README.md", "blind-spot-events.csv", "blind-spot-events.parquet", "datapackage.json"}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_fleet(tmp_path_factory.mktemp("store") / "events")


def export(store: Path, out: Path, *args: str | Path):
    return vigie("replay", "export-opendata", "--source", store, "-o", out, "--producer", "Ville de Lyon", *args)


def share(store: Path, out: Path, *args: str | Path):
    return vigie(
        "replay",
        "export-shared",
        "--source",
        store,
        "-o",
        out,
        "--partner",
        "Laboratoire sécurité routière",
        "--reason",
        "study of right turns at stops",
        "--audit-log",
        out.parent / "audit.log",
        *args,
    )


def validate(package: Path) -> dict:
    """The real `frictionless validate`, as the open-data officer runs it."""
    out = subprocess.run(
        [str(FRICTIONLESS), "validate", "--json", str(package / "datapackage.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(out.stdout)


def read_csv(path: Path) -> list[dict]:
    """The CSV as text for dates: what a portal user's spreadsheet gets."""
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={"date": pa.string()})).to_pylist()


def descriptor(package: Path) -> dict:
    return json.loads((package / "datapackage.json").read_text())


@pytest.fixture(scope="module")
def package(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("open") / "vigie-2026-03"
    result = export(store, out)
    assert result.exit_code == 0, result.output
    return out


# ---- the open-data package ----------------------------------------------------------------------------------------


def test_the_package_passes_frictionless_validate(package: Path) -> None:
    report = validate(package)
    assert report["valid"], report["errors"] or [t["errors"] for t in report["tasks"]]
    assert {t["name"] for t in report["tasks"]} == {"blind-spot-counts-csv", "blind-spot-counts-parquet", "readme"}


def test_a_changed_count_fails_validation(package: Path, tmp_path: Path) -> None:
    """The published hashes and the k constraint are real checks: a count lowered under k and the hash redone to
    match is still refused, by the Table Schema's minimum."""
    copy = tmp_path / "copy"
    shutil.copytree(package, copy)
    csv = copy / "blind-spot-counts.csv"
    csv.write_text(csv.read_text().replace(",11\n", ",2\n"))
    assert not validate(copy)["valid"]  # the hash no longer matches
    meta = descriptor(copy)
    for res in meta["resources"]:
        if res["path"] == csv.name:
            del res["hash"], res["bytes"]
    (copy / "datapackage.json").write_text(json.dumps(meta))
    errors = [e["type"] for t in validate(copy)["tasks"] for e in t["errors"]]
    assert errors == ["constraint-error"]


def test_cells_of_at_least_k_events_are_kept_and_the_rest_dropped(package: Path) -> None:
    rows = read_csv(package / "blind-spot-counts.csv")
    # Right side at the stop, 1 March 06-10: 6 (bus-A) + 5 (bus-B) = 11. Every other cell has fewer than 5.
    assert rows == [
        {"date": "2026-03-01", "hour_band": "06-10", "side": "right", "lat": 45.76, "lon": 4.84, "events": 11}
    ]
    parquet = pq.read_table(package / "blind-spot-counts.parquet").to_pylist()
    assert [{**r, "date": r["date"].isoformat()} for r in parquet] == rows
    assert sorted(p.name for p in package.iterdir()) == sorted(PACKAGE_FILES)


def test_the_command_tells_the_analyst_what_it_removed(store: Path, tmp_path: Path) -> None:
    result = export(store, tmp_path / "o")
    kept = "export-opendata: 1 cell(s) kept, 5 suppressed"
    assert result.stdout == f"{kept} (fewer than 5 events, {TOTAL - 11} events) -> {tmp_path / 'o'}\n"


def test_a_smaller_k_and_a_local_time_zone(store: Path, tmp_path: Path) -> None:
    """Paris is UTC+1 in March: the 22:05 UTC events of 2 March fall on 2 March 23:05, the 20-24 band."""
    result = export(store, tmp_path / "o", "-k", "3", "--tz", "Europe/Paris")
    assert result.exit_code == 0, result.output
    cells = {
        (r["date"], r["hour_band"], r["side"]): r["events"] for r in read_csv(tmp_path / "o" / "blind-spot-counts.csv")
    }
    assert cells == {
        ("2026-03-01", "06-10", "right"): 11,
        ("2026-03-01", "16-20", "front"): 3,
        ("2026-03-02", "20-24", "left"): 4,
    }
    meta = descriptor(tmp_path / "o")
    assert meta["vigie"]["k"] == 3 and meta["temporal"] == {
        "start": "2026-03-01",
        "end": "2026-03-03",
        "timezone": "Europe/Paris",
    }


def test_every_field_has_a_type_a_description_and_a_unit(package: Path) -> None:
    meta = descriptor(package)
    csv_res, parquet_res, readme = meta["resources"]
    schema = csv_res["schema"]
    assert [f["name"] for f in schema["fields"]] == ["date", "hour_band", "side", "lat", "lon", "events"]
    for fld in schema["fields"]:
        assert fld["type"] and len(fld["description"]) > 20 and fld["unit"], fld
    assert schema["primaryKey"] == ["date", "hour_band", "side", "lat", "lon"]
    events = next(f for f in schema["fields"] if f["name"] == "events")
    assert events["constraints"]["minimum"] == 5
    # The Parquet file holds the columns its description gives, typed as described.
    arrow = pq.read_schema(package / parquet_res["path"])
    assert parquet_res["schema"] == schema and arrow.names == [f["name"] for f in schema["fields"]]
    assert [str(arrow.field(n).type) for n in arrow.names] == [
        "date32[day]",
        "string",
        "string",
        "double",
        "double",
        "int64",
    ]
    assert readme["path"] == "README.md" and readme["mediatype"] == "text/markdown"


def test_licence_producer_and_coverage_are_stated(package: Path) -> None:
    meta = descriptor(package)
    assert meta["licenses"] == [
        {
            "name": "etalab-2.0",
            "title": "Licence Ouverte / Open Licence version 2.0",
            "path": "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
        }
    ]
    assert meta["contributors"] == [{"title": "Ville de Lyon", "role": "publisher"}]
    assert meta["temporal"] == {"start": "2026-03-01", "end": "2026-03-03", "timezone": "UTC"}
    # The box of what is published (one cell at the stop), not of the suppressed cells: they must not show.
    assert meta["spatial"]["bbox"] == [4.84, 45.76, 4.84, 45.76] and meta["spatial"]["crs"] == "EPSG:4326"


def test_the_range_asked_for_is_the_coverage(store: Path, tmp_path: Path) -> None:
    result = export(store, tmp_path / "o", "--from", "2026-02-25", "--to", "2026-03-31", "-k", "2")
    assert result.exit_code == 0, result.output
    assert descriptor(tmp_path / "o")["temporal"] == {"start": "2026-02-25", "end": "2026-03-31", "timezone": "UTC"}


@pytest.mark.parametrize(
    ("given", "spdx"),
    [("lov2", "etalab-2.0"), ("odbl-1.0", "ODbL-1.0"), ("odc-odbl", "ODbL-1.0"), ("CC0-1.0", "CC0-1.0")],
)
def test_a_licence_by_its_spdx_or_etalab_id(store: Path, tmp_path: Path, given: str, spdx: str) -> None:
    result = export(store, tmp_path / "o", "--licence", given)
    assert result.exit_code == 0, result.output
    assert descriptor(tmp_path / "o")["licenses"][0]["name"] == spdx


def test_the_readme_explains_the_method_in_french_and_english(store: Path, tmp_path: Path) -> None:
    export(store, tmp_path / "o", "-k", "7", "--tz", "Europe/Paris")
    text = (tmp_path / "o" / "README.md").read_text()
    assert "## Français" in text and "## English" in text
    assert "moins de 7 événements" in text and "fewer than 7 events" in text
    assert "0,01 degré" in text and "0.01 degree" in text
    assert "00-06, 06-10, 10-16, 16-20, 20-24" in text and "Europe/Paris" in text
    assert "What the data cannot say" in text and "Ce que ces données ne peuvent pas dire" in text
    assert "Licence Ouverte / Open Licence version 2.0" in text and "Ville de Lyon" in text


def test_nothing_in_the_package_names_a_bus_or_an_event(package: Path) -> None:
    ids = [ev.event_id for evs in FLEET.values() for ev in evs] + list(FLEET)
    for path in package.iterdir():
        data = path.read_bytes()
        assert not [i for i in ids if i.encode() in data], path.name


def test_a_re_export_is_byte_identical_whatever_the_files_of_the_store(store: Path, tmp_path: Path) -> None:
    """Same events, written as other files in another order: the same package, byte for byte."""
    other = tmp_path / "events"
    for bus, events in reversed(FLEET.items()):
        for ev in reversed(events):
            write_fleet(other, {bus: [ev]})
    export(store, tmp_path / "a", "--tz", "Europe/Paris", "-k", "2")
    export(other, tmp_path / "b", "--tz", "Europe/Paris", "-k", "2")
    for name in PACKAGE_FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_a_published_package_is_readable_by_anyone_an_empty_folder_can_be_used(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert export(store, out).exit_code == 0
    assert out.stat().st_mode & 0o777 == 0o755
    assert {p.stat().st_mode & 0o777 for p in out.iterdir()} == {0o644}


# ---- bad input ----------------------------------------------------------------------------------------------------


def _occupied(tmp: Path) -> Path:
    (tmp / "o").mkdir()
    (tmp / "o" / "notes.txt").write_text("mine")
    return tmp / "o"


def _a_file(tmp: Path) -> Path:
    (tmp / "o").write_text("mine")
    return tmp / "o"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-04-01"], "no events from 2026-04-01 00:00 UTC to the last (end excluded): nothing to export"),
        (["--from", "2026-02-01", "--to", "2026-02-28"], "no events from 2026-02-01 00:00 UTC to 2026-03-01 00:00 UTC"),
        (["--from", "2026-03-02", "--to", "2026-03-01"], "--to 2026-03-01: is not after --from 2026-03-02"),
        (["-k", "1"], "-k 1: must be at least 2"),
        (["-k", "-3"], "-k -3: must be at least 2"),
        (["--licence", "GPL-3.0-only"], "--licence GPL-3.0-only: not a known SPDX or Etalab licence id"),
        (["--licence", ""], "--licence : not a known SPDX or Etalab licence id"),
        (["--tz", "Mars/Olympus"], "--tz Mars/Olympus: unknown time zone"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(store: Path, tmp_path: Path, args: list, message: str) -> None:
    result = export(store, tmp_path / "o", *args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1 and result.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("make", "message"),
    [(_occupied, "exists and holds other files"), (_a_file, "exists and is not a folder")],
)
def test_an_output_that_holds_other_files_is_refused_and_left_alone(store: Path, tmp_path: Path, make, message) -> None:
    out = make(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = export(store, out)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"vigie: {out}: {message}") and result.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_a_package_inside_the_store_is_refused(store: Path) -> None:
    """Its Parquet file would be read back as events by the next export."""
    result = export(store, store / "open")
    assert result.exit_code == 2 and "inside the event store" in result.stderr
    assert not (store / "open").exists()


def test_without_a_producer_the_package_says_so(store: Path, tmp_path: Path) -> None:
    result = vigie("replay", "export-opendata", "--source", store, "-o", tmp_path / "o", env={"VIGIE_PRODUCER": ""})
    assert result.exit_code == 0 and "note: no --producer" in result.stdout
    assert descriptor(tmp_path / "o")["contributors"][0]["title"].startswith("[producteur à nommer")
    named = vigie("replay", "export-opendata", "--source", store, "-o", tmp_path / "p", env={"VIGIE_PRODUCER": "Lyon"})
    assert descriptor(tmp_path / "p")["contributors"][0]["title"] == "Lyon" and "note" not in named.stdout


# ---- shared data --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shared") / "lab-2026-03"
    result = share(store, out, "--agreement", "CONV-2026-014")
    assert result.exit_code == 0, result.output
    return out


def test_the_shared_package_passes_frictionless_validate(shared: Path) -> None:
    report = validate(shared)
    assert report["valid"], [t["errors"] for t in report["tasks"]]
    assert sorted(p.name for p in shared.iterdir()) == sorted(SHARED_FILES)


def test_shared_rows_are_events_generalised_with_nothing_that_links_them(shared: Path) -> None:
    table = pq.read_table(shared / "blind-spot-events.parquet")
    assert table.column_names == ["start_minute", "lat", "lon", "side", "level", "distance_band", "speed_band"]
    rows = table.to_pylist()
    assert len(rows) == TOTAL
    assert all(r["start_minute"].second == 0 for r in rows)
    assert {(r["lat"], r["lon"]) for r in rows} == {(45.76, 4.84), (45.74, 4.88)}
    # The first right-side event of bus-A: 08:05:00 UTC, 8 km/h, 0.5 m from the bus.
    first = {k: v for k, v in rows[0].items() if k != "start_minute"} | {"t": rows[0]["start_minute"].isoformat()}
    assert first == {
        "t": "2026-03-01T08:05:00+00:00",
        "lat": 45.76,
        "lon": 4.84,
        "side": "left",
        "level": "info",
        "distance_band": "0.5-1",
        "speed_band": "1-10",
    }
    assert [r["start_minute"] for r in rows] == sorted(r["start_minute"] for r in rows)
    assert (shared / "blind-spot-events.csv").read_text().splitlines()[1].startswith('"2026-03-01T08:05:00Z",45.76')


def test_the_shared_package_states_the_agreement_and_the_privacy_method(shared: Path) -> None:
    text = (shared / "README.md").read_text()
    assert "Laboratoire sécurité routière" in text and "CONV-2026-014" in text
    assert "to be completed before sending" in text and "Privacy method" in text and "confidentialité" in text
    meta = descriptor(shared)
    assert "not an open licence" in meta["licenses"][0]["title"] and "path" not in meta["licenses"][0]
    assert shared.stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in shared.iterdir()} == {0o600}
    ids = [ev.event_id for evs in FLEET.values() for ev in evs] + list(FLEET)
    for path in shared.iterdir():
        assert not [i for i in ids if i.encode() in path.read_bytes()], path.name


def test_every_shared_export_is_in_the_access_log(shared: Path) -> None:
    entries = [e for e in read_log(shared.parent / "audit.log") if e["action"] == "export-shared"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["export"] == str(shared) and entry["rows"] == TOTAL and entry["user"]
    assert entry["partner"] == "Laboratoire sécurité routière" and entry["reason"] == "study of right turns at stops"
    assert entry["agreement"] == "CONV-2026-014"


def test_a_shared_re_export_is_byte_identical(store: Path, shared: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert share(store, again, "--agreement", "CONV-2026-014").exit_code == 0
    for name in SHARED_FILES:
        assert (again / name).read_bytes() == (shared / name).read_bytes(), name


def test_an_export_the_access_log_cannot_record_is_not_written(store: Path, tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    result = vigie(
        "replay",
        "export-shared",
        "--source",
        store,
        "-o",
        tmp_path / "out",
        "--partner",
        "lab",
        "--reason",
        "study",
        "--audit-log",
        tmp_path / "not-a-folder" / "audit.log",
    )
    assert result.exit_code == 2 and "cannot write the access log" in result.stderr
    assert result.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-a-folder"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--partner", " ", "--reason", "x"], "--partner: name who receives the data"),
        (["--partner", "lab", "--reason", " "], "--reason: say why the data is shared"),
    ],
)
def test_shared_bad_input_is_one_line(store: Path, tmp_path: Path, args: list, message: str) -> None:
    result = vigie("replay", "export-shared", "--source", store, "-o", tmp_path / "o", *args)
    assert result.exit_code == 2 and message in result.stderr and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


# ---- a package appears whole or not at all ------------------------------------------------------------------------


def test_a_package_interrupted_while_written_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), StagedFolder(tmp_path / "pkg", PUBLIC) as folder:
        folder.write("blind-spot-counts.csv", b"date\n")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_a_destination_filled_while_the_export_runs_is_not_overwritten(tmp_path: Path) -> None:
    dest = tmp_path / "pkg"
    with StagedFolder(dest, PUBLIC) as folder:
        folder.write("blind-spot-counts.csv", b"date\n")
        dest.mkdir()
        (dest / "theirs.txt").write_text("theirs")
        with pytest.raises(ReplayError, match="cannot publish"):
            folder.publish()
    assert [p.name for p in tmp_path.iterdir()] == ["pkg"]
    assert [p.name for p in dest.iterdir()] == ["theirs.txt"]
