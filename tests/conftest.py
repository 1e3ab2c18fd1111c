"""Shared fixtures: the real bundled model, real footage, and bus configs written for each test."""

from __future__ import annotations

import errno
import os
import platform
import socket
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from core.atomic import TEMP_GLOBS
from edge.config import DEMO_CONFIG, REPO_ROOT

FOOTAGE = REPO_ROOT / "footage"
IMAGES = FOOTAGE / "images"


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` s (generous: the machine may be busy)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def temp_files(root: Path, suffix: str = "") -> list[Path]:
    """Files being written under `root` (core.atomic's hidden temporary names), or left behind by a failed write;
    with `suffix`, only those that will become such a file (".mp4": a clip being written)."""
    found = {p for pattern in TEMP_GLOBS for p in root.rglob(pattern) if p.is_file()}
    return sorted(p for p in found if p.name.endswith(suffix))


@dataclass(frozen=True)
class FullDisk:
    root: Path
    filler: Path

    def fill(self) -> None:
        with open(self.filler, "ab", buffering=0) as fh:
            try:
                while fh.write(b"\0" * 4096):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        assert os.statvfs(self.root).f_bavail == 0

    def free(self) -> None:
        self.filler.unlink()


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[FullDisk]:
    """A 2 MB tmpfs filled to the last page by one file. tmpfs keeps no blocks back for root, so full means full."""
    root = tmp_path / "full"
    root.mkdir()
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "vigie-test-full", str(root)], capture_output=True, text=True
    )
    if mount.returncode != 0:
        pytest.skip(f"a real full disk needs `mount -t tmpfs` (root): {mount.stderr.strip()}")
    try:
        disk = FullDisk(root, root / "filler")
        disk.fill()
        yield disk
    finally:
        subprocess.run(["umount", "--lazy", str(root)], check=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str | Path):
        return f'"{v}"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return repr(v)


def to_toml(data: dict, prefix: str = "") -> str:
    """Just enough TOML writing for tests (tables, arrays of tables, scalars, arrays)."""
    lines, subtables = [], []
    for k, v in data.items():
        if isinstance(v, dict):
            subtables.append((k, [v], False))
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            subtables.append((k, v, True))
        else:
            lines.append(f"{k} = {toml_value(v)}")
    out = "\n".join(lines) + "\n"
    for k, items, is_array in subtables:
        name = f"{prefix}.{k}" if prefix else k
        for item in items:
            out += f"\n[[{name}]]\n" if is_array else f"\n[{name}]\n"
            out += to_toml(item, name)
    return out


def demo_data() -> dict:
    return tomllib.loads(DEMO_CONFIG.read_text())


@pytest.fixture
def bus_config(tmp_path: Path):
    """Write a config (the demo's, changed by `edit`) into tmp_path, with its own alert port and event folder."""

    def write(edit=None, name: str = "bus.toml") -> Path:
        data = demo_data()
        data["alerts"]["endpoint"] = f"tcp://127.0.0.1:{free_port()}"
        data["events"]["dir"] = str(tmp_path / "var" / "events")
        data.setdefault("recorder", {}).update(
            dir=str(tmp_path / "var" / "clips"),
            state_dir=str(tmp_path / "var" / "state"),
            audit_log=str(tmp_path / "var" / "audit.log"),
        )
        for cam in data["cameras"]:
            cam["source"] = str(REPO_ROOT / cam["source"]) if "://" not in cam["source"] else cam["source"]
        data["vehicle"]["log"] = str(REPO_ROOT / data["vehicle"]["log"])
        if edit is not None:
            edit(data)
        path = tmp_path / name
        path.write_text(to_toml(data))
        return path

    return write


def assert_every_alert_has_its_event(alerts: list[dict], rows: list[dict]) -> None:
    """Each published alert is backed by an event row on its camera and zone that started no later than it."""
    for alert in alerts:
        assert any(
            r["camera"] == alert["camera"]
            and r["zone"] == alert["zone"]
            and r["start_ts"].timestamp() <= alert["frame_ts"] + 0.01
            for r in rows
        ), alert


# OpenVINO publishes wheels for these machines: there the `openvino` extra is installed by `make test` and its tests
# must run (a missing install fails them, naming the extra). On any other machine they are skipped, saying why.
OPENVINO_MACHINES = {"x86_64", "AMD64", "aarch64", "arm64"}
needs_openvino_wheel = pytest.mark.skipif(
    platform.machine() not in OPENVINO_MACHINES,
    reason=f"OpenVINO publishes no wheel for this machine ({platform.machine()}): the `openvino` extra cannot install",
)
