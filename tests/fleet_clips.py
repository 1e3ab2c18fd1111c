"""Real clips for the fleet rerun's tests and benchmark: a short real daemon run with the recorder on, and copies of
that recording under other bus ids (clips, sidecars, events and operating time renamed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from .conftest import FOOTAGE, demo_data, free_port, to_toml

BUS = "demo-01"  # the demo config's bus


def recording_config(tmp: Path, store: Path) -> Path:
    """The demo bus recording clips: events, clips and operating time under `store` as a bus lays them out."""
    data = demo_data()
    data["alerts"]["endpoint"] = f"tcp://127.0.0.1:{free_port()}"
    data["events"].update(dir=str(store / "events"), flush_s=2)
    data.setdefault("recorder", {}).update(
        enabled=True,
        dir=str(store / "clips"),
        state_dir=str(tmp / "state"),
        audit_log=str(tmp / "audit.log"),
        pre_roll_s=2,
        post_roll_s=1,
    )
    for cam in data["cameras"]:
        cam["source"] = str(FOOTAGE / Path(cam["source"]).name)
    data["vehicle"]["log"] = str(FOOTAGE.parent / data["vehicle"]["log"])
    path = tmp / "bus.toml"
    path.write_text(to_toml(data))
    return path


def record_store(tmp: Path, seconds: float) -> Path:
    """A real daemon run of `seconds` with the recorder on; returns the store (…/events, …/clips, …/operating)."""
    store = tmp / "store"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "run",
            "--config",
            str(recording_config(tmp, store)),
            "--duration",
            str(seconds),
        ],
        capture_output=True,
        text=True,
        timeout=120 + 3 * seconds,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"the daemon failed: {proc.stderr}")
    return store


def narrow_right_zone(data: dict) -> None:
    """A new config to try: the right blind spot reaches 2.5 m out instead of 5.5 m."""
    right = next(c for c in data["cameras"] if c["name"] == "right")
    right["zones"][0]["ground_polygon"] = [[1.0, -1.275], [-8.0, -1.275], [-8.0, -2.5], [1.0, -2.5]]


def copy_as_bus(store: Path, bus: str) -> None:
    """The recording of BUS again as `bus`: clip files renamed, sidecars, events and operating rows re-labelled."""
    for folder in [p for p in store.rglob(f"bus={BUS}") if p.is_dir()]:
        target = folder.with_name(f"bus={bus}")
        target.mkdir()
        for path in folder.iterdir():
            dest = target / path.name.replace(f"{BUS}_", f"{bus}_", 1)
            if path.suffix == ".mp4":
                shutil.copy(path, dest)
                continue
            table = pq.read_table(path)
            meta = dict(table.schema.metadata or {})
            if b"vigie.clip" in meta:
                meta[b"vigie.clip"] = meta[b"vigie.clip"].replace(BUS.encode(), bus.encode())
            for name in ("bus_id", "clip"):
                if name in table.column_names:
                    renamed = pc.replace_substring(table[name], BUS, bus)
                    table = table.set_column(table.column_names.index(name), name, renamed.cast(table[name].type))
            pq.write_table(table.replace_schema_metadata(meta), dest)
