"""The whole daemon on the demo footage: real model, real ZeroMQ, real Parquet."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.dataset as ds
import pytest
import zmq

from .conftest import demo_data, temp_files, wait_until

TURNING_RIGHT = "t,speed_kmh,indicator,doors_open,reverse\n0,15,right,false,false\n"


class Listener:
    """A driver display stand-in: a real SUB socket collecting every message on a background thread."""

    def __init__(self, endpoint: str):
        self.messages: list[tuple[str, dict]] = []
        self._ctx = zmq.Context()
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.SUBSCRIBE, b"")
        self._sock.setsockopt(zmq.RCVTIMEO, 100)
        self._sock.connect(endpoint)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                topic, payload = self._sock.recv_multipart()
            except zmq.Again:
                continue
            self.messages.append((topic.decode(), json.loads(payload)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close(0)
        self._ctx.term()

    def of(self, topic: str) -> list[dict]:
        return [m for t, m in self.messages if t == topic]


def endpoint_of(config: Path) -> str:
    import tomllib

    return tomllib.loads(config.read_text())["alerts"]["endpoint"]


def run_daemon(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edge", "run", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory):
    """One 15 s run of the demo cameras with the bus turning right at 15 km/h, shared by the tests below."""
    from .conftest import free_port, to_toml

    tmp = tmp_path_factory.mktemp("demo")
    (tmp / "vehicle.csv").write_text(TURNING_RIGHT)
    data = demo_data()
    data["alerts"]["endpoint"] = f"tcp://127.0.0.1:{free_port()}"
    data["events"] = {"dir": str(tmp / "var" / "events"), "flush_s": 5}
    data["recorder"] = {"enabled": False, "state_dir": str(tmp / "var" / "state")}
    data["vehicle"] = {"source": "log", "log": str(tmp / "vehicle.csv")}
    from edge.config import REPO_ROOT

    for cam in data["cameras"]:
        cam["source"] = str(REPO_ROOT / cam["source"])
    config = tmp / "bus.toml"
    config.write_text(to_toml(data))
    listener = Listener(data["alerts"]["endpoint"])
    proc = run_daemon(config, "--duration", "15", "--stats", str(tmp / "stats.json"))
    if proc.returncode == 0:
        # The last messages may still be in flight when the daemon exits: wait until every published alert is in.
        budget = json.loads((tmp / "stats.json").read_text())["driver_alerts"]
        wait_until(lambda: rises(listener.of("alert")) >= budget["info"] + budget["warning"], "the last alerts")
    listener.close()
    return proc, listener, tmp


def test_daemon_exits_cleanly_after_its_duration(demo_run) -> None:
    proc, _, _ = demo_run
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "stopped after" in proc.stdout


def test_the_stats_file_is_written_whole_and_private(demo_run) -> None:
    """--stats goes through core.atomic like every file vigie writes: 0600, no temporary file left."""
    _, _, tmp = demo_run
    assert ((tmp / "stats.json").stat().st_mode & 0o777) == 0o600 and not temp_files(tmp)


def test_alerts_reach_the_bus_with_the_documented_fields(demo_run) -> None:
    _, listener, _ = demo_run
    alerts = listener.of("alert")
    assert alerts, "no alert published"
    for msg in alerts:
        assert msg["schema"] == "vigie.alert/1" and msg["bus_id"] == "demo-01"
        assert set(msg) == {
            "schema",
            "bus_id",
            "camera",
            "side",
            "level",
            "zone",
            "track_ids",
            "nearest_m",
            "frame_ts",
            "sent_ts",
        }
        assert msg["sent_ts"] >= msg["frame_ts"]


def test_levels_follow_the_vehicle_state(demo_run) -> None:
    """Turning right at 15 km/h: right warns, left informs, front (above 10 km/h) and rear (driving) stay quiet."""
    _, listener, _ = demo_run
    raised = {(m["camera"], m["level"]) for m in listener.of("alert") if m["level"] != "clear"}
    assert ("right", "warning") in raised
    assert ("left", "info") in raised
    assert not any(cam in ("front", "rear") for cam, _ in raised)
    raised_right = [m for m in listener.of("alert") if m["camera"] == "right" and m["level"] != "clear"]
    assert raised_right and all(isinstance(m["nearest_m"], float) for m in raised_right)


def test_quiet_zones_are_restated_as_clear_for_displays_that_join_late(demo_run) -> None:
    """Front and rear never raise while driving: each is still stated `clear` every repeat_s (1 s), not left silent."""
    _, listener, _ = demo_run
    for camera in ("front", "rear"):
        stated = [m for m in listener.of("alert") if m["camera"] == camera]
        assert len(stated) >= 5, f"{camera}: stated {len(stated)} times in 15 s"
        assert all(m["level"] == "clear" and m["track_ids"] == [] and m["nearest_m"] is None for m in stated)


def test_a_zmq_vehicle_feed_is_restated_on_the_heartbeat(bus_config) -> None:
    """A display that joins after the feed's status changed still learns it: the status rides on the heartbeat."""
    from .conftest import free_port

    def silent_gateway(data: dict) -> None:
        data["vehicle"] = {"source": "zmq", "endpoint": f"tcp://127.0.0.1:{free_port()}"}
        data["recorder"]["enabled"] = False

    config = bus_config(silent_gateway)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(config), "--duration", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    listener = None
    try:
        assert daemon.stdout is not None
        while not (line := daemon.stdout.readline()).startswith("health  vehicle: waiting") and line:
            pass
        assert line, "the daemon never reported the silent feed"
        listener = Listener(endpoint_of(config))  # joins after the change was published
        wait_until(
            lambda: any(m["camera"] == "vehicle" and m["status"] == "waiting" for m in listener.of("health")),
            "the feed's status on the heartbeat",
        )
    finally:
        daemon.send_signal(signal.SIGINT)
        daemon.communicate(timeout=60)
        if listener is not None:
            listener.close()


def test_health_reports_every_camera_ok(demo_run) -> None:
    _, listener, _ = demo_run
    assert {m["camera"] for m in listener.of("health") if m["status"] == "ok"} == {"front", "right", "rear", "left"}


def test_events_are_written_as_a_partitioned_parquet_dataset(demo_run) -> None:
    _, _, tmp = demo_run
    root = tmp / "var" / "events"
    files = list(root.glob("date=*/bus=demo-01/part-*.parquet"))
    assert files and not temp_files(root)
    table = ds.dataset(root, partitioning="hive").to_table()
    rows = table.to_pylist()
    assert rows and {r["camera"] for r in rows} <= {"right", "left", "front", "rear"}
    assert table.schema.metadata[b"vigie.schema"] == b"vigie.events/3"
    for r in rows:
        assert r["end_ts"] >= r["start_ts"] and r["frames"] >= 3
        assert r["speed_kmh_at_start"] == 15.0 and r["indicator_at_start"] == "right"
        assert r["model_id"].startswith("person_ssdlite_int8@")  # the default model
    assert any(r["max_level"] == "warning" and r["camera"] == "right" for r in rows)
    # Nothing that could carry pixels or follow a person from one event to the next.
    assert not {"track_id", "track_ids", "image", "thumbnail", "box"} & set(table.column_names)


def rises(messages: list[dict]) -> int:
    """Alerts as the driver received them: rises of a zone's level, from the messages on the bus."""
    order = {"clear": 0, "info": 1, "warning": 2}
    last: dict[tuple[str, str], int] = {}
    count = 0
    for m in messages:
        key, level = (m["camera"], m["zone"]), order[m["level"]]
        count += level > last.get(key, 0)
        last[key] = level
    return count


def test_the_alert_budget_counts_what_the_driver_received(demo_run) -> None:
    """Stats, the bus and the event rows agree on how many alerts the driver got (not one per event)."""
    _, listener, tmp = demo_run
    budget = json.loads((tmp / "stats.json").read_text())["driver_alerts"]
    received = rises(listener.of("alert"))
    assert received > 0 and budget["info"] + budget["warning"] == received
    assert budget["by_side"]["right"]["warning"] > 0 and budget["per_hour"] > 0
    table = ds.dataset(tmp / "var" / "events", partitioning="hive").to_table()
    attributed = sum(table["info_alerts"].to_pylist()) + sum(table["warning_alerts"].to_pylist())
    assert attributed == received < table.num_rows


def test_report_gives_the_same_alerts_per_operating_hour(demo_run) -> None:
    """The daemon writes how long it operated beside the events; report divides the driver's alerts by it."""
    from click.testing import CliRunner

    from edge.cli import main

    _, listener, tmp = demo_run
    stats = json.loads((tmp / "stats.json").read_text())
    operating = ds.dataset(tmp / "var" / "operating", partitioning="hive").to_table()
    hours = sum(operating["duration_s"].to_pylist()) / 3600
    assert hours * 3600 == pytest.approx(stats["duration_s"], abs=3.0)
    out = CliRunner().invoke(
        main, ["replay", "report", "--source", str(tmp / "var" / "events"), "-o", str(tmp / "report.png")]
    )
    assert out.exit_code == 0, out.output
    received = rises(listener.of("alert"))
    assert f"driver alerts: {received} (" in out.output
    rate = re.search(r"([\d.]+) per operating hour", out.output)
    assert rate and float(rate[1]) == pytest.approx(received / hours, rel=0.01)


def test_stealth_mode_runs_everything_but_tells_the_driver_nothing(bus_config, tmp_path: Path) -> None:
    """alerts.mode = "log": events and counts as usual, not one message on the alert topic."""
    (tmp_path / "vehicle.csv").write_text(TURNING_RIGHT)

    def edit(data: dict) -> None:
        data["alerts"]["mode"] = "log"
        data["recorder"]["enabled"] = False
        data["vehicle"] = {"source": "log", "log": str(tmp_path / "vehicle.csv")}

    config = bus_config(edit)
    listener = Listener(endpoint_of(config))
    out_path = tmp_path / "daemon.out"
    with open(out_path, "w") as out:  # a file, not a pipe: nobody drains a pipe while the test runs
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge", "run", "--config", str(config), "--stats", str(tmp_path / "stats.json")],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # Health goes out (the subscription works) and an alert is counted and logged, not published.
        wait_until(
            lambda: listener.of("health") and "(stealth: not published)" in out_path.read_text(),
            "health on the bus and an alert logged in stealth",
            timeout=90,
        )
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        listener.close()
    output = out_path.read_text()
    assert proc.returncode == 0, output
    assert "stealth mode" in output
    assert listener.of("alert") == []
    budget = json.loads((tmp_path / "stats.json").read_text())["driver_alerts"]
    assert budget["info"] + budget["warning"] > 0


def test_stats_file_has_the_promised_figures(demo_run) -> None:
    _, _, tmp = demo_run
    stats = json.loads((tmp / "stats.json").read_text())
    assert stats["duration_s"] >= 14  # it ran its 15 s (how much longer its stop took depends on the machine)
    for cam in ("front", "right", "rear", "left"):
        c = stats["cameras"][cam]
        assert {"frames", "fps", "dropped", "reconnects"} <= set(c)
        assert c["frames"] >= c["processed"] + c["dropped"]
        # The footage plays at its native 10 fps: never faster (a busy machine may make it slower). At most one
        # frame more than 10 a second since the start, and one more put at the stop without waiting for its moment.
        assert 0 < c["fps"] <= 10 + 2 / stats["duration_s"] + 0.01, (cam, stats)  # + rounding to 2 decimals
    assert stats["inference_ms"]["p50"] > 0 and stats["inference_ms"]["p99"] >= stats["inference_ms"]["p50"]
    assert stats["alert_latency_ms"]["count"] == stats["alerts"] > 0
    for key in ("cpu_percent", "rss_mb", "events"):
        assert stats[key] > 0


def test_ctrl_c_stops_cleanly_with_exit_0(bus_config) -> None:
    config = bus_config()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("health") or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped after" in out and "Traceback" not in err


def test_a_second_daemon_on_the_same_endpoint_fails_with_a_clear_message(bus_config) -> None:
    config = bus_config()
    first = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(config)],  # until stopped below, however slow
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout is not None
        # The first daemon prints its banner once its alert socket is bound.
        while not (line := first.stdout.readline()).startswith("vigie: bus") and line:
            pass
        assert line, "the first daemon exited before binding"
        second = run_daemon(config, "--duration", "5")
        assert second.returncode == 1
        assert "alerts.endpoint: cannot bind" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)


def test_the_reference_client_shows_alerts_as_they_arrive(bus_config) -> None:
    """`vigie alerts --count 2` against a live daemon; the standing bus makes every zone inform."""

    def standing_bus(data: dict) -> None:
        data["vehicle"] = {"source": "none"}

    config = bus_config(standing_bus)
    client = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edge",
            "alerts",
            "--endpoint",
            endpoint_of(config),
            "--count",
            "2",
            "--json",
            "--timeout",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    daemon = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(config)],  # until the client has its alerts
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = client.communicate(timeout=60)
    finally:
        daemon.send_signal(signal.SIGINT)
        daemon.communicate(timeout=30)
    assert client.returncode == 0, err
    alerts = [json.loads(line) for line in out.splitlines() if '"topic": "alert"' in line]
    assert len(alerts) == 2 and all(a["level"] == "info" for a in alerts)


def test_the_reference_client_times_out_with_exit_1() -> None:
    from .conftest import free_port

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge",
            "alerts",
            "--endpoint",
            f"tcp://127.0.0.1:{free_port()}",
            "--count",
            "1",
            "--timeout",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 1 and "timed out after 0 of 1 alerts" in proc.stderr
