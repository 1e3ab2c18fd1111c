"""Several hundred invalid configs (tests/config_fuzz.py) are refused by `check-config` and `run` alike: exit 2, one
line per problem naming its key, no traceback, nothing opened; and the valid edge cases next to them are accepted."""

from __future__ import annotations

import math
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import edge.daemon
from edge.cli import main

from .config_fuzz import Case, base_config, dumps, put, setting
from .config_fuzz_cases import invalid_cases
from .conftest import free_port

CASES = invalid_cases()
# `key.path: message`; a key path is names, [index] and ["quoted odd key"] parts.
KEY_PATH = r'(?:[A-Za-z0-9_-]+|\[\d+\]|\["[^"]*"?\]|\.(?:[A-Za-z0-9_-]+))+'
PROBLEM = re.compile(rf"(?P<key>{KEY_PATH}): \S.*")
# A file refused as a whole (not TOML, too big, too deep) names no key.
WHOLE_FILE = re.compile(r"(not valid TOML|not UTF-8 text|larger than \d+ KiB|\d+ more problems not shown).*")


@dataclass
class Outcome:
    case: Case
    problem: str  # "" when the case was refused as it must be


def write(case: Case, scratch: Path) -> Path:
    scratch.mkdir(parents=True, exist_ok=True)
    content = case.build(base_config(scratch), scratch)
    path = scratch / "bus.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def judge(case: Case, path: Path, exit_code: int, stderr: str, crashed: BaseException | None) -> str:
    """Why this refusal is not clean, or "" if it is."""
    if crashed is not None or "Traceback" in stderr:
        return f"traceback: {type(crashed).__name__ if crashed else ''} {crashed or stderr[-300:]}"
    if exit_code != 2:
        return f"exit {exit_code} (accepted)" if exit_code == 0 else f"exit {exit_code}: {stderr[-200:]}"
    lines = stderr.splitlines()
    if not lines:
        return "exit 2 with nothing on stderr"
    keys = []
    for line in lines:
        rest = line.removeprefix(f"{path}: ")
        if rest == line:
            return f"a line that does not start with the file: {line[:200]!r}"
        if len(line) > 400:
            return f"a line of {len(line)} characters"
        if WHOLE_FILE.fullmatch(rest):
            continue
        match = PROBLEM.fullmatch(rest)
        if match is None:
            return f"a line that names no key: {rest[:200]!r}"
        keys.append(match["key"])
    if not case.key:
        return "" if len(lines) == 1 and not keys else f"a whole-file problem in {len(lines)} lines: {lines[:3]}"
    if not any(k == case.key or k.startswith((f"{case.key}.", f"{case.key}[")) for k in keys):
        return f"{case.key} not named; got {keys[:5]}"
    return ""


def check_in_process(case: Case, scratch: Path, command: list[str]) -> tuple[str, str]:
    path = write(case, scratch)
    result: Result = CliRunner().invoke(
        main, [*command, str(path)] if command[0] == "check-config" else [*command, "--config", str(path)]
    )
    crashed = result.exception if not isinstance(result.exception, SystemExit) else None
    return judge(case, path, result.exit_code, result.stderr, crashed), result.stderr


class _NoDaemon:
    """Stands in for the daemon: `run` must refuse every fuzzed config before it builds one."""

    def __init__(self, *_: object, **__: object) -> None:
        raise AssertionError("run accepted the config and started the daemon")


@pytest.fixture
def no_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(edge.daemon, "Daemon", _NoDaemon)


def test_the_base_config_of_the_fuzz_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "bus.toml"
    path.write_text(dumps(base_config(tmp_path)))
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 0, result.output


def test_every_fuzzed_config_is_refused_cleanly_by_check_config_and_run(
    tmp_path: Path, no_daemon: None, capsys
) -> None:
    """Each invalid config: exit 2, one `key.path: message` line per problem naming the broken key, no traceback; and
    `run` prints exactly what `check-config` prints (one check, one code path)."""
    outcomes, differ = [], []
    for i, case in enumerate(CASES):
        checked, check_err = check_in_process(case, tmp_path / f"c{i}", ["check-config"])
        ran, run_err = check_in_process(case, tmp_path / f"r{i}", ["run"])
        outcomes.append(Outcome(case, checked or (f"run: {ran}" if ran else "")))
        if not checked and not ran and check_err.replace(f"/c{i}/", "/x/") != run_err.replace(f"/r{i}/", "/x/"):
            differ.append(case.name)
    bad = [o for o in outcomes if o.problem]
    tracebacks = sum(o.problem.startswith(("traceback", "run: traceback")) for o in bad)
    with capsys.disabled():
        print(
            f"\nconfig fuzz: {len(CASES)} configs fuzzed, {len(CASES) - len(bad)} rejected cleanly by check-config and "
            f"run, {tracebacks} tracebacks"
        )
    assert len(CASES) >= 400
    assert not bad, f"{len(bad)} of {len(CASES)} not refused cleanly:\n" + "\n".join(
        f"  {o.case.name}: {o.problem}" for o in bad[:40]
    )
    assert not differ, f"run and check-config print different problems for: {differ[:10]}"


@pytest.fixture
def camera_watch() -> Iterator[tuple[str, list[int]]]:
    """An HTTP "camera" that counts connections: a `run` that refuses its config must never connect to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    accepted: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/mjpeg", accepted
    stop.set()
    thread.join()
    server.close()


# Through a real process: what issue 14 found, then every 30th case of the fuzz.
RUN_SAMPLE = [c for c in CASES if c.kind == "issue 14"] + [c for c in CASES if c.kind != "issue 14"][::30]


def test_run_as_a_process_refuses_a_sample_before_opening_any_camera(tmp_path: Path, camera_watch, capsys) -> None:
    """The real entry point (`python -m edge run`), as a user calls it: exit 2, the same lines as check-config, no
    traceback, nothing on stdout (the daemon's first line) and no connection to the camera it would open."""
    url, accepted = camera_watch

    def one(i: int, case: Case) -> str:
        scratch = tmp_path / f"p{i}"
        scratch.mkdir()
        data = base_config(scratch)
        data["cameras"][3]["source"] = url
        data["alerts"]["endpoint"] = f"tcp://127.0.0.1:{free_port()}"  # were it accepted, it would run
        content = case.build(data, scratch)
        path = scratch / "bus.toml"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        proc = subprocess.run(
            [sys.executable, "-m", "edge", "run", "--config", str(path), "--duration", "3"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        problem = judge(case, path, proc.returncode, proc.stderr, None)
        if not problem and proc.stdout:
            problem = f"printed on stdout: {proc.stdout[:200]!r}"
        return f"{case.name}: {problem}" if problem else ""

    with ThreadPoolExecutor(max_workers=4) as pool:
        problems = [p for p in pool.map(one, range(len(RUN_SAMPLE)), RUN_SAMPLE) if p]
    assert len(RUN_SAMPLE) >= 30
    with capsys.disabled():
        print(
            f"\nconfig fuzz: {len(RUN_SAMPLE)} configs through `python -m edge run`, "
            f"{len(RUN_SAMPLE) - len(problems)} refused cleanly before opening a camera"
        )
    assert not problems, "\n".join(problems)
    assert accepted == [], "run connected to a camera of a config it should have refused"


# Valid edge cases: the checks must not refuse what a real bus may well say.


def _circle(n: int) -> list[tuple[float, float]]:
    return [(math.cos(2 * math.pi * k / n), math.sin(2 * math.pi * k / n)) for k in range(n)]


CAL = "cameras[0].calibration"
VALID = {
    "integer for a float": setting("detector.score_threshold", 1, **{"events.flush_s": 10, "cameras[0].fps": 15}),
    "threshold 0 and 1": setting("detector.score_threshold", 1.0, **{"tracking.low_score": 0.0}),
    "polygon closed like GeoJSON": setting(
        "cameras[2].zones[0].polygon", [[0.1, 0.45], [0.9, 0.45], [1.0, 1.0], [0.0, 1.0], [0.1, 0.45]]
    ),
    "concave polygon": setting(
        "cameras[2].zones[0].polygon", [[0, 0], [1, 0], [1, 1], [0.6, 1], [0.6, 0.3], [0.4, 0.3], [0.4, 1], [0, 1]]
    ),
    "a redundant corner on an edge": setting(
        "cameras[2].zones[0].polygon", [[0.1, 0.45], [0.5, 0.45], [0.9, 0.45], [1.0, 1.0], [0.0, 1.0]]
    ),
    "clockwise ground polygon": setting(
        "cameras[0].zones[0].ground_polygon", [[0.0, 1.8], [3.7, 1.8], [3.7, -1.8], [0.0, -1.8]]
    ),
    "whole image": setting("cameras[2].zones[0].polygon", [[0, 0], [1, 0], [1, 1], [0, 1]]),
    "triangle": setting("cameras[2].zones[0].polygon", [[0.0, 0.5], [1.0, 0.5], [1.0, 1.0]]),
    "ground triangle": setting("cameras[1].zones[0].ground_polygon", [[1.0, -1.3], [-8.0, -1.3], [-8.0, -5.5]]),
    "many-sided zone": setting("cameras[2].zones[0].polygon", [[0.5 + 0.4 * c, 0.5 + 0.4 * s] for c, s in _circle(64)]),
    "six calibration points": setting(
        f"{CAL}.image",
        [[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0], [0.5, 1.0], [0.5, 0.0]],
        **{f"{CAL}.ground": [[0.3, 2.0], [0.3, -2.0], [8.0, -5.0], [8.0, 5.0], [0.3, 0.0], [8.0, 0.0]]},
    ),
    "mirrored calibration": setting(f"{CAL}.ground", [[0.3, -2.0], [0.3, 2.0], [8.0, 5.0], [8.0, -5.0]]),
    "calibration far out": setting(f"{CAL}.ground", [[0.3, 2.0], [0.3, -2.0], [99.0, -60.0], [99.0, 60.0]]),
    "alerts on localhost": setting("alerts.endpoint", "tcp://localhost:5560"),
    "alerts on IPv6 loopback": setting("alerts.endpoint", "tcp://[::1]:5560"),
    "alerts on 127.0.0.2": setting("alerts.endpoint", "tcp://127.0.0.2:65535"),
    "alerts over ipc": setting("alerts.endpoint", "ipc:///tmp/vigie-alerts.sock"),
    "alerts in-process": setting("alerts.endpoint", "inproc://alerts"),
    "alerts on every interface": setting("alerts.endpoint", "tcp://*:5560", **{"alerts.allow_remote": True}),
    "alerts on the bus network": setting("alerts.endpoint", "tcp://10.0.12.2:5560", **{"alerts.allow_remote": True}),
    "vehicle gateway by name": setting("vehicle.source", "zmq", **{"vehicle.endpoint": "tcp://gateway.bus.local:5561"}),
    "vehicle gateway over ipc": setting("vehicle.source", "zmq", **{"vehicle.endpoint": "ipc:///run/vigie/v.sock"}),
    "vehicle endpoint unused": setting("vehicle.source", "none", **{"vehicle.endpoint": "tcp://127.0.0.1:5560"}),
    "bus id of 64 characters": setting("bus.id", "b" * 64),
    "bus id with dots and dashes": setting("bus.id", "RATP_bus-0412.A"),
    "zone name in French": setting("cameras[0].zones[0].name", "angle mort côté trottoir"),
    "camera over rtsp with credentials": setting("cameras[0].source", "rtsp://user:pw@10.0.12.11:554/stream1"),
    "camera over http on IPv6": setting("cameras[1].source", "http://[fe80::1]:8080/mjpeg"),
    "camera over https by name": setting("cameras[3].source", "https://cam-left.bus.local/mjpeg"),
    "huge but finite quota": setting("recorder.quota_mb", 1e6, **{"recorder.min_free_mb": 0}),
    "upload without a cap": setting("upload.bandwidth_mbps", 100.0, **{"upload.multipart_threshold_mb": 5}),
    "upload to AWS itself": setting("upload.endpoint_url", "https://s3.eu-west-3.amazonaws.com"),
    "upload prefix with slashes": setting("upload.prefix", "/city/fleet-a/"),
}


def _events_in_new_deep_folder(data: dict, scratch: Path) -> str:
    put(data, "events.dir", str(scratch / "not" / "yet" / "there" / "events"))
    return dumps(data)


def _events_in_existing_folder(data: dict, scratch: Path) -> str:
    (scratch / "var" / "events").mkdir(parents=True)
    return dumps(data)


def _ca_bundle(data: dict, scratch: Path) -> str:
    (scratch / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    put(data, "upload.ca_bundle", str(scratch / "ca.pem"))
    return dumps(data)


def _relative_paths(data: dict, scratch: Path) -> str:
    for key, value in {
        "events.dir": "var/events",
        "recorder.dir": "var/clips",
        "recorder.state_dir": "var/state",
    }.items():
        put(data, key, value)
    return dumps(data)


VALID.update(
    {
        "events folder to be created": _events_in_new_deep_folder,
        "events folder already there": _events_in_existing_folder,
        "a CA bundle": _ca_bundle,
        "relative folders": _relative_paths,
        "saved with a byte-order mark": lambda data, _: "\ufeff" + dumps(data),
    }
)


@pytest.mark.parametrize("label", list(VALID))
def test_valid_edge_case_is_accepted(tmp_path: Path, label: str) -> None:
    path = tmp_path / "bus.toml"
    path.write_text(VALID[label](base_config(tmp_path), tmp_path))
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 0, result.output
