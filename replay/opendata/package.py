"""A Frictionless Data Package: the data as CSV and Parquet, a README, and `datapackage.json` describing them.

One description of the columns (`Column`) gives both the Parquet schema and the Table Schema, so the two files and
their description cannot drift apart. Everything is written from bytes computed here, so the same rows give the same
files byte for byte: rows arrive sorted, the metadata holds the method's parameters and never the export's time,
and `datapackage.json` carries each file's size and SHA-256 so anyone can check a published copy with
`frictionless validate`. The Parquet file is deterministic for a given pyarrow (its footer names the writer's
version, `created_by`, which is why the package names it too).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from importlib import metadata

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from replay.opendata.folder import StagedFolder
from replay.opendata.licences import Licence

PARQUET_MEDIATYPE = "application/vnd.apache.parquet"
ZSTD_LEVEL = 9  # fixed: a default that changes with the library would change the bytes


@dataclass(frozen=True, slots=True)
class Column:
    """One column: its Parquet type and its Table Schema field (type, description, unit, constraints)."""

    name: str
    arrow: pa.DataType
    kind: str  # Table Schema type: string, integer, number, date, datetime
    description: str
    unit: str
    required: bool = False
    enum: tuple[str, ...] = ()
    minimum: int | None = None

    def table_schema_field(self) -> dict:
        out: dict = {"name": self.name, "type": self.kind, "description": self.description, "unit": self.unit}
        constraints: dict = {}
        if self.required:
            constraints["required"] = True
        if self.enum:
            constraints["enum"] = list(self.enum)
        if self.minimum is not None:
            constraints["minimum"] = self.minimum
        if constraints:
            out["constraints"] = constraints
        return out


@dataclass(frozen=True, slots=True)
class TableSpec:
    stem: str  # file names: STEM.csv, STEM.parquet
    title: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()

    def arrow_schema(self, meta: dict[str, str]) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow, nullable=not c.required) for c in self.columns], metadata=meta)

    def table_schema(self) -> dict:
        out: dict = {"fields": [c.table_schema_field() for c in self.columns], "missingValues": [""]}
        if self.primary_key:
            out["primaryKey"] = list(self.primary_key)
        return out


@dataclass(frozen=True, slots=True)
class Producer:
    name: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Coverage:
    """What the data covers: days (in `timezone`) and a bounding box of the published locations."""

    start: str  # YYYY-MM-DD
    end: str
    timezone: str
    bbox: tuple[float, float, float, float] | None  # west, south, east, north (degrees, WGS 84)
    location_precision: str

    def as_dict(self) -> tuple[dict, dict]:
        temporal = {"start": self.start, "end": self.end, "timezone": self.timezone}
        spatial: dict = {"crs": "EPSG:4326", "precision": self.location_precision}
        spatial["bbox"] = list(self.bbox) if self.bbox else None
        return temporal, spatial


@dataclass(frozen=True, slots=True)
class PackageSpec:
    name: str
    title: str
    description: str
    licence: Licence
    producer: Producer
    coverage: Coverage
    table: TableSpec
    readme: str
    keywords: tuple[str, ...] = ()
    method: dict = field(default_factory=dict)  # the parameters of the privacy method, under "vigie" in the package


def generator() -> str:
    """What wrote the files: with the same versions, the same rows give the same bytes."""
    return f"vigie {metadata.version('vigie')}, pyarrow {pa.__version__}"


def bbox(table: pa.Table) -> tuple[float, float, float, float] | None:
    lat, lon = table["lat"].drop_null(), table["lon"].drop_null()
    if len(lat) == 0 or len(lon) == 0:
        return None
    return (pc.min(lon).as_py(), pc.min(lat).as_py(), pc.max(lon).as_py(), pc.max(lat).as_py())


def csv_bytes(table: pa.Table) -> bytes:
    """CSV as a spreadsheet or `frictionless` reads it: ISO 8601 times in UTC with a Z, empty cells for nulls."""
    columns = []
    for col, fld in zip(table.columns, table.schema, strict=True):
        if pa.types.is_timestamp(fld.type):
            col = pc.strftime(col.cast(pa.timestamp("s", tz="UTC")), format="%Y-%m-%dT%H:%M:%SZ")
        columns.append(col)
    text = pa.table(columns, names=table.column_names)
    buf = io.BytesIO()
    pacsv.write_csv(text, buf, pacsv.WriteOptions(quoting_style="needed"))
    return buf.getvalue()


def parquet_bytes(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", compression_level=ZSTD_LEVEL)
    return buf.getvalue()


def _file(path: str, data: bytes) -> dict:
    return {"path": path, "bytes": len(data), "hash": f"sha256:{hashlib.sha256(data).hexdigest()}"}


def descriptor(spec: PackageSpec, files: dict[str, bytes]) -> dict:
    """datapackage.json (Data Package v1, read by `frictionless validate`) for the files written."""
    t = spec.table
    csv_name, parquet_name = f"{t.stem}.csv", f"{t.stem}.parquet"
    temporal, spatial = spec.coverage.as_dict()
    licence = {"name": spec.licence.spdx, "title": spec.licence.title}
    if spec.licence.url:
        licence["path"] = spec.licence.url
    contributor: dict = {"title": spec.producer.name, "role": "publisher"}
    if spec.producer.url:
        contributor["path"] = spec.producer.url
    return {
        "profile": "data-package",
        "name": spec.name,
        "title": spec.title,
        "description": spec.description,
        "keywords": list(spec.keywords),
        "licenses": [licence],
        "contributors": [contributor],
        "temporal": temporal,
        "spatial": spatial,
        "vigie": {**spec.method, "generator": generator()},
        "resources": [
            {
                "name": f"{t.stem}-csv",
                "title": t.title,
                "description": t.description,
                "profile": "tabular-data-resource",
                **_file(csv_name, files[csv_name]),
                "format": "csv",
                "mediatype": "text/csv",
                "encoding": "utf-8",
                "schema": t.table_schema(),
            },
            {
                # A plain file to Frictionless: reading Parquet needs its optional plugin (and pandas), and the
                # package must validate with the plain tool. Its size and hash are still checked.
                "name": f"{t.stem}-parquet",
                "title": f"{t.title} (Parquet, same rows)",
                "type": "file",
                **_file(parquet_name, files[parquet_name]),
                "format": "parquet",
                "mediatype": PARQUET_MEDIATYPE,
                "schema": t.table_schema(),
            },
            {
                "name": "readme",
                "title": "README (français, English)",
                "type": "text",
                **_file("README.md", files["README.md"]),
                "format": "md",
                "mediatype": "text/markdown",
                "encoding": "utf-8",
            },
        ],
    }


def write_package(spec: PackageSpec, table: pa.Table, folder: StagedFolder) -> None:
    """The package's four files into `folder` (not yet published); `table` must already be sorted."""
    meta = {"vigie.package": spec.name}
    meta |= {f"vigie.{k}": v if isinstance(v, str) else json.dumps(v) for k, v in spec.method.items()}
    data = table.cast(spec.table.arrow_schema(meta))
    files = {
        f"{spec.table.stem}.csv": csv_bytes(data),
        f"{spec.table.stem}.parquet": parquet_bytes(data),
        "README.md": spec.readme.encode("utf-8"),
    }
    files["datapackage.json"] = (json.dumps(descriptor(spec, files), indent=2, ensure_ascii=False) + "\n").encode()
    for name, content in files.items():
        folder.write(name, content)
