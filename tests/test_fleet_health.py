"""Fleet health end to end with real parts: the daemon on the demo footage writes its day's summary when it stops,
the real uploader sends it to a real S3 server (SeaweedFS), and `replay fleet-status` reads it back from s3://."""

from __future__ import annotations

import importlib.metadata
import json
import tomllib

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from core.models import sha256_of
from edge.cli import main
from edge.config import REPO_ROOT, load_config
from edge.fleet_health import config_digest
from recorder.health import STATE_NAME

from .conftest import free_port
from .services.s3 import S3Server
from .test_daemon import TURNING_RIGHT, run_daemon

SECRET = "s3cret-camera-password"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory):
    with S3Server(tmp_path_factory.mktemp("s3")) as server:
        server.create_bucket("city")
        yield server


@pytest.fixture(scope="module")
def day_run(tmp_path_factory: pytest.TempPathFactory, s3: S3Server):
    """The demo bus turning right for 8 s, its left camera an HTTP camera that refuses connections (and whose URL
    carries a password); then `vigie upload --once` with the spool the bus config implies."""
    from .conftest import demo_data, to_toml

    tmp = tmp_path_factory.mktemp("bus")
    (tmp / "vehicle.csv").write_text(TURNING_RIGHT)
    data = demo_data()
    data["alerts"]["endpoint"] = f"tcp://127.0.0.1:{free_port()}"
    data["events"] = {"dir": str(tmp / "var" / "events"), "flush_s": 5}
    data["recorder"] = {"enabled": False, "state_dir": str(tmp / "var" / "state"), "dir": str(tmp / "var" / "clips")}
    data["vehicle"] = {"source": "log", "log": str(tmp / "vehicle.csv")}
    data["upload"] = {"endpoint_url": s3.endpoint_url, "bucket": "city", "prefix": "fleet"}
    data["upload"]["state_dir"] = str(tmp / "var" / "upload")
    for cam in data["cameras"]:
        cam["source"] = str(REPO_ROOT / cam["source"])
        if cam["name"] == "left":
            cam["source"] = f"http://admin:{SECRET}@127.0.0.1:{free_port()}/mjpeg"
    config = tmp / "bus.toml"
    config.write_text(to_toml(data))
    daemon = run_daemon(config, "--duration", "8", "--stats", str(tmp / "stats.json"))
    assert daemon.returncode == 0, daemon.stderr
    local = sorted((tmp / "var" / "health").rglob("summary-*.parquet"))
    rows = [pq.read_table(p).to_pylist()[0] for p in local]
    uploaded = CliRunner().invoke(main, ["upload", "--config", str(config), "--once"], env=s3.env())
    assert uploaded.exit_code == 0, uploaded.output
    return tmp, config, daemon, rows, local


def fleet_status(s3: S3Server, day: str) -> list[dict]:
    out = CliRunner().invoke(
        main,
        ["replay", "fleet-status", "--source", "s3://city/fleet/events", "--date", day, "--json"],
        env={**s3.env(), "VIGIE_S3_ENDPOINT": s3.endpoint_url},
    )
    assert out.exit_code == 0, out.output
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_the_daemon_writes_its_day_at_stop_and_the_uploader_sends_it(day_run, s3: S3Server) -> None:
    tmp, _, _, rows, local = day_run
    # One partial summary of today (two summaries only if the run crossed midnight UTC: then the first is final).
    assert [r["final"] for r in rows] in ([False], [True, False])
    assert not list((tmp / "var" / "health").rglob("*.parquet")), "sent, then deleted from the bus"
    day, bus_folder = local[-1].parent.parent.name, local[-1].parent.name
    keys = [
        o["Key"]
        for o in s3.client().list_objects_v2(Bucket="city", Prefix=f"fleet/health/{day}/")["Contents"]
        if o["Key"].endswith(".parquet")
    ]
    assert keys == [f"fleet/health/{day}/{bus_folder}/{local[-1].name}"]
    manifest = s3.client().get_object(Bucket="city", Key=f"fleet/manifests/{day}/{bus_folder}/manifest.json")
    assert keys[0] in {o["key"] for o in json.loads(manifest["Body"].read())["objects"]}


def test_fleet_status_reads_the_summary_back_from_the_bucket(day_run, s3: S3Server) -> None:
    tmp, config, _, rows, _ = day_run
    stats = json.loads((tmp / "stats.json").read_text())
    row = rows[-1]
    (bus,) = fleet_status(s3, row["day"].isoformat())
    assert (bus["bus"], bus["reported"], bus["final"], bus["revision"], bus["runs"]) == ("demo-01", True, False, 1, 1)
    if len(rows) == 1:  # unless the run crossed midnight UTC, which splits its figures between two days
        assert bus["operating_h"] * 3600 == pytest.approx(stats["duration_s"], abs=3.0)
        assert (bus["info_alerts"], bus["warning_alerts"]) == (
            stats["driver_alerts"]["info"],
            stats["driver_alerts"]["warning"],
        )
        assert bus["warning_alerts"] > 0, "the bus turned right past people: the driver was warned"
        for cam in bus["cameras"]:
            if cam["camera"] != "left":
                assert cam["frames"] == stats["cameras"][cam["camera"]]["frames"] and cam["uptime_pct"] > 50
    left = next(c for c in bus["cameras"] if c["camera"] == "left")
    assert left["uptime_pct"] == 0 and left["outages"] == 1 and left["frames"] == 0
    assert ("low_uptime", "left") in [(f["kind"], f["subject"]) for f in bus["flags"]]
    assert bus["model_sha256"] == sha256_of(REPO_ROOT / "models" / "person_ssdlite_int8.onnx")
    assert bus["config_sha256"] == config_digest(load_config(config))
    assert bus["vigie_version"] == importlib.metadata.version("vigie")
    assert 0 < bus["disk_free_pct"] < 100


def test_no_credential_is_written_or_logged(day_run) -> None:
    """The camera's password is in the config, and nowhere the daemon writes or prints."""
    tmp, config, daemon, rows, _ = day_run
    assert SECRET in tomllib.loads(config.read_text())["cameras"][3]["source"]
    assert SECRET not in daemon.stdout + daemon.stderr
    state = tmp / "var" / "state" / STATE_NAME
    assert state.is_file() and SECRET not in state.read_text()
    assert rows and all(SECRET not in json.dumps(row, default=str) for row in rows)
