"""The uploader against a real S3 server (SeaweedFS on 127.0.0.1): nothing lost, nothing duplicated."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
from click.testing import CliRunner

from core.types import Event, Level, Side, VehicleState
from edge.cli import main
from edge.config import REPO_ROOT
from recorder.events import EventSink, write_events
from uploader import transfer
from uploader.config import SpoolRoot, UploadConfig
from uploader.engine import Uploader, backoff_s
from uploader.spool import enforce_quota
from uploader.state import Journal, StatusFile
from uploader.transfer import TokenBucket, read_range

from .conftest import to_toml, wait_until
from .services.s3 import REGION, S3Server

DAY = "2026-11-20"
BUS = "bus-0412"
MIB = 1024 * 1024


# -- fixtures and helpers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """One server for the tests that do not stop or pause it; each test gets its own bucket."""
    with S3Server(tmp_path_factory.mktemp("s3")) as server:
        yield server


@pytest.fixture
def bucket(s3) -> str:
    return s3.create_bucket(f"city-{uuid.uuid4().hex[:10]}")


def event(i: int, day: str = DAY) -> Event:
    start = dt.datetime.fromisoformat(f"{day}T08:00:00+00:00").timestamp() + 37 * i
    vehicle = VehicleState(speed_kmh=12.0, lat=48.8566123, lon=2.3522456, ts=start)
    return Event(
        event_id=uuid.uuid4().hex,
        camera="right",
        side=Side.RIGHT,
        zone="blind-spot",
        start_ts=start,
        end_ts=start + 2.5,
        max_level=Level.WARNING,
        min_distance_m=1.2,
        frames=25,
        max_score=0.8,
        vehicle_at_start=vehicle,
    )


def write_day(events_dir: Path, files: int = 6, per_file: int = 20, day: str = DAY) -> dict[Path, bytes]:
    """A day of real event Parquet as the recorder writes it; returns each file's bytes."""
    sink = EventSink(root=events_dir, bus_id=BUS, model_id="person_ssdlite@test")
    written = {}
    for f in range(files):
        for path in write_events([event(f * per_file + i, day) for i in range(per_file)], sink):
            written[path] = path.read_bytes()
    return written


def config(tmp_path: Path, s3: S3Server, bucket: str, **kw) -> UploadConfig:
    base = {
        "endpoint_url": s3.endpoint_url,
        "bucket": bucket,
        "prefix": "fleet",
        "state_dir": tmp_path / "state",
        "spool": (
            SpoolRoot(name="events", dir=tmp_path / "events"),
            SpoolRoot(name="clips", dir=tmp_path / "clips", priority=10, kind="clip"),
        ),
        "connect_timeout_s": 1.0,
        "read_timeout_s": 2.0,
        "backoff_base_s": 0.1,
        "backoff_cap_s": 0.5,
        "poll_s": 0.2,
        "multipart_threshold_mb": 5.0,
        "part_size_mb": 5.0,
        "workers": 2,
    }
    return UploadConfig(**{**base, **kw})


def config_file(tmp_path: Path, cfg: UploadConfig, name: str = "bus.toml") -> Path:
    table = json.loads(cfg.model_dump_json(exclude_none=True))
    path = tmp_path / name
    path.write_text(to_toml({"upload": table}))
    return path


def key_of(cfg: UploadConfig, events_dir: Path, path: Path) -> str:
    return f"{cfg.key_prefix()}events/{path.relative_to(events_dir).as_posix()}"


def sha_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def run_cli(args: list[str], env: dict[str, str]):
    return CliRunner().invoke(main, ["upload", *args], env=env, catch_exceptions=False)


def run_loop(cfg: UploadConfig, **kw) -> tuple[threading.Thread, threading.Event, Uploader]:
    """The uploader's forever loop on a thread, as `vigie upload` runs it."""
    uploader = Uploader(cfg, **kw)
    stop = threading.Event()
    thread = threading.Thread(target=uploader.run, args=(stop,), daemon=True)
    thread.start()
    return thread, stop, uploader


def use_env(monkeypatch, env: dict[str, str]) -> None:
    """Credentials for an in-process uploader, undone after the test."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def wait_for(predicate, timeout_s: float, what: str) -> None:
    """conftest's wait_until, with at least its generous default: the machine may be busy."""
    wait_until(predicate, what, timeout=max(timeout_s, 30.0))


def spool_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")]


def assert_all_stored_once(s3: S3Server, cfg: UploadConfig, originals: dict[Path, bytes]) -> None:
    client = s3.client()
    listed = client.list_objects_v2(Bucket=cfg.bucket, Prefix=f"{cfg.key_prefix()}events/")
    keys = sorted(o["Key"] for o in listed.get("Contents", []))
    expected = {key_of(cfg, cfg.spool[0].dir, p): data for p, data in originals.items()}
    assert keys == sorted(expected)
    for key, data in expected.items():
        head = client.head_object(Bucket=cfg.bucket, Key=key, ChecksumMode="ENABLED")
        assert head["ChecksumSHA256"] == sha_b64(data), key
    stored = [r["key"] for r in Journal(cfg.state_dir).records() if r["op"] == "stored"]
    assert sorted(stored) == sorted(expected), "each file journaled exactly once"


# -- config and usage ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"bucket": "city-data", "colour": "blue"}, "upload.colour: unknown key"),
        (
            {"bucket": "city-data", "endpoint_url": "s3.city.example"},
            "upload.endpoint_url: must start with https://",
        ),
        ({}, "upload.bucket: required"),
        (
            {"bucket": "city-data", "part_size_mb": 1},
            "upload.part_size_mb: Input should be greater than or equal",
        ),
        (
            {
                "bucket": "city-data",
                "spool": [{"name": "events", "dir": "a"}, {"name": "events", "dir": "b"}],
            },
            "upload.spool: root names must be unique",
        ),
    ],
)
def test_bad_upload_config_is_one_line_naming_the_key_and_exit_2(tmp_path, table, expected):
    """A bad [upload] table is refused at start with the key path, no traceback."""
    path = tmp_path / "bus.toml"
    path.write_text(to_toml({"upload": table}))
    result = CliRunner().invoke(main, ["upload", "--config", str(path), "--once"])
    assert result.exit_code == 2
    assert expected in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[events]\ndir = 5\n[upload]\nbucket = "city-data"\n', "events.dir: must be a path (a string)"),
        ('[upload]\nbucket = "city-data"\nspool_quota_mb = inf\n', "upload.spool_quota_mb: Input should be a finite"),
        ('[upload]\nbucket = "city-data"\nworkers = true\n', "upload.workers: Input should be a valid integer"),
        ("[upload]\nx = " + "[" * 100_000 + "]" * 100_000 + "\n", "not valid TOML: arrays or tables nested too deeply"),
    ],
    ids=["events.dir a number", "infinite quota", "workers = true", "nested 100 000 deep"],
)
def test_a_config_the_uploader_cannot_use_is_one_line_and_exit_2(tmp_path, text, expected):
    """What once gave a traceback or was read as something else: the bus config's folders the spool follows, kinds,
    infinities, a file nested too deeply for the TOML reader."""
    path = tmp_path / "bus.toml"
    path.write_text(text)
    result = CliRunner().invoke(main, ["upload", "--config", str(path), "--once"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"{path}: {expected}") and len(result.output.splitlines()) == 1


def test_missing_credentials_is_a_clear_usage_error(tmp_path, s3, bucket):
    """No keys anywhere: say where they should come from, exit 2, send nothing."""
    cfg = config(tmp_path, s3, bucket)
    env = {**s3.env(), "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    result = run_cli(["--config", str(config_file(tmp_path, cfg)), "--once"], env)
    assert result.exit_code == 2
    assert "no credentials: set AWS_ACCESS_KEY_ID" in result.output


# -- a day of data -------------------------------------------------------------------------------------------


def test_a_day_arrives_with_server_checked_sha256_and_a_manifest(tmp_path, s3, bucket):
    """Every file lands under the mirrored key with our SHA-256, listed in the manifest; spool empty."""
    cfg = config(tmp_path, s3, bucket)
    originals = write_day(cfg.spool[0].dir)
    result = run_cli(["--config", str(config_file(tmp_path, cfg)), "--once"], s3.env())
    assert result.exit_code == 0, result.output
    assert f"{len(originals)} of {len(originals)} file(s) stored" in result.output
    assert spool_files(cfg.spool[0].dir) == []
    assert_all_stored_once(s3, cfg, originals)

    body = s3.client().get_object(Bucket=bucket, Key=f"fleet/manifests/date={DAY}/bus={BUS}/manifest.json")["Body"]
    manifest = json.loads(body.read())
    assert manifest["schema"] == "vigie.manifest/1"
    listed = {o["key"]: (o["size"], o["sha256"]) for o in manifest["objects"]}
    assert listed == {
        key_of(cfg, cfg.spool[0].dir, p): (len(d), hashlib.sha256(d).hexdigest()) for p, d in originals.items()
    }


def test_verify_passes_then_finds_a_deleted_and_a_tampered_object(tmp_path, s3, bucket):
    """verify: exit 0 on a complete day; names a deleted, a rewritten and a planted object, exit 1."""
    cfg = config(tmp_path, s3, bucket)
    originals = write_day(cfg.spool[0].dir, files=4)
    path = config_file(tmp_path, cfg)
    assert run_cli(["--config", str(path), "--once"], s3.env()).exit_code == 0
    good = run_cli(["--config", str(path), "verify", "--date", DAY, "--bus", BUS], s3.env())
    assert good.exit_code == 0, good.output
    assert "4 object(s) verified, 0 missing, 0 extra, 0 altered" in good.output

    gone, tampered = sorted(key_of(cfg, cfg.spool[0].dir, p) for p in originals)[:2]
    client = s3.client()
    client.delete_object(Bucket=bucket, Key=gone)
    client.put_object(Bucket=bucket, Key=tampered, Body=b"PAR1 not the data the bus sent PAR1")
    client.put_object(Bucket=bucket, Key=f"fleet/events/date={DAY}/bus={BUS}/part-999999-planted.parquet", Body=b"x")
    bad = run_cli(["--config", str(path), "verify", "--date", DAY], s3.env())
    assert bad.exit_code == 1
    assert f"missing  {gone} (in the manifest and journal)" in bad.output
    assert f"altered  {tampered}: expected" in bad.output
    assert "extra    fleet/events/date=2026-11-20/bus=bus-0412/part-999999-planted.parquet" in bad.output


def test_the_bucket_reads_back_as_one_parquet_dataset_pruned_by_date(tmp_path, s3, bucket):
    """pyarrow.dataset over S3 with a date filter sees exactly that day's rows."""
    cfg = config(tmp_path, s3, bucket)
    write_day(cfg.spool[0].dir, files=3, per_file=10, day="2026-11-20")
    write_day(cfg.spool[0].dir, files=2, per_file=7, day="2026-11-21")
    assert run_cli(["--config", str(config_file(tmp_path, cfg)), "--once"], s3.env()).exit_code == 0
    fs = pafs.S3FileSystem(
        access_key=s3.access_key,
        secret_key=s3.secret_key,
        region=REGION,
        scheme="http",
        endpoint_override=f"127.0.0.1:{s3.port}",
    )
    parts = ds.partitioning(pa.schema([("date", pa.string()), ("bus", pa.string())]), flavor="hive")
    dataset = ds.dataset(f"{bucket}/fleet/events", filesystem=fs, format="parquet", partitioning=parts)
    table = dataset.to_table(filter=ds.field("date") == "2026-11-21")
    assert table.num_rows == 14
    assert set(table.column("bus").to_pylist()) == {BUS}
    assert dataset.count_rows() == 44


@pytest.mark.parametrize(
    ("keys", "code"),
    [
        ({"AWS_SECRET_ACCESS_KEY": "not-the-secret"}, "SignatureDoesNotMatch"),
        ({"AWS_ACCESS_KEY_ID": "NOT-A-KEY-ID"}, "InvalidAccessKeyId"),
    ],
    ids=["wrong-secret", "unknown-key-id"],
)
def test_refused_credentials_are_one_clear_line_and_nothing_is_lost(tmp_path, s3, bucket, keys, code):
    """The server refuses the keys: one line saying so, exit 1, every file still queued, nothing sent."""
    cfg = config(tmp_path, s3, bucket)
    originals = write_day(cfg.spool[0].dir, files=3)
    result = run_cli(["--config", str(config_file(tmp_path, cfg)), "--once"], {**s3.env(), **keys})
    assert result.exit_code == 1
    assert f"upload: the server refused the credentials ({code})" in result.output
    assert result.output.count("refused the credentials") == 1
    assert "not-the-secret" not in result.output
    assert sorted(spool_files(cfg.spool[0].dir)) == sorted(originals)
    assert s3.client().list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0
    status = run_cli(["--config", str(config_file(tmp_path, cfg)), "status"], s3.env())
    assert "spool: 3 file(s)" in status.output
    assert "refused the credentials" in status.output


@pytest.mark.parametrize("size", [200_000, 12 * MIB], ids=["single-put", "multipart"])
def test_a_file_altered_after_hashing_is_refused_by_the_server_and_resent(tmp_path, monkeypatch, s3, bucket, size):
    """Bytes changed between hash and send: the server's checksum refuses them; the current bytes are sent."""
    cfg = config(tmp_path, s3, bucket)
    path = cfg.spool[0].dir / f"date={DAY}" / f"bus={BUS}" / "part-080000-altered.parquet"
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(size))
    changed = []

    def alter_once(prep) -> None:
        # The test's hook point: after the uploader hashed the file, before it reads the bytes to send.
        if not changed:
            with open(prep.item.path, "r+b") as fh:
                fh.seek(size // 2)
                fh.write(b"tampered in between")
            changed.append(prep.sha256)

    use_env(monkeypatch, s3.env())
    result = Uploader(cfg, after_hash=alter_once).run(threading.Event(), once=True)
    assert result.ok, result.failures
    assert result.counters.rehashed == 1
    assert result.counters.checksum_refused == 1, "refused by the server, not caught by us"
    stored = s3.client().get_object(Bucket=bucket, Key=key_of(cfg, cfg.spool[0].dir, path))["Body"].read()
    assert b"tampered in between" in stored
    assert hashlib.sha256(stored).hexdigest() != changed[0]
    assert (
        Journal(cfg.state_dir).lookup(key_of(cfg, cfg.spool[0].dir, path)).sha256 == hashlib.sha256(stored).hexdigest()
    )


def test_metadata_goes_before_clips_and_both_are_in_the_manifest(tmp_path, monkeypatch, s3, bucket):
    """Event files are sent before clips; the day's manifest lists both kinds."""
    cfg = config(tmp_path, s3, bucket, workers=1)
    originals = write_day(cfg.spool[0].dir, files=2)
    clip = cfg.spool[1].dir / f"date={DAY}" / f"bus={BUS}" / "clip-0800.mp4"
    clip.parent.mkdir(parents=True)
    clip.write_bytes(os.urandom(100_000))
    os.utime(clip, ns=(0, 0))  # the oldest file of all still waits for the metadata
    order: list[str] = []
    use_env(monkeypatch, s3.env())
    result = Uploader(cfg, after_hash=lambda prep: order.append(prep.item.kind)).run(threading.Event(), once=True)
    assert result.ok, result.failures
    assert order == ["metadata"] * len(originals) + ["clip"]
    manifest = json.loads(
        s3.client().get_object(Bucket=bucket, Key=f"fleet/manifests/date={DAY}/bus={BUS}/manifest.json")["Body"].read()
    )
    assert f"fleet/clips/date={DAY}/bus={BUS}/clip-0800.mp4" in {o["key"] for o in manifest["objects"]}
    assert len(manifest["objects"]) == len(originals) + 1


def test_412_counts_as_stored_only_when_the_bucket_holds_our_bytes(tmp_path, monkeypatch, s3, bucket):
    """412 is 'already there' only if the bucket holds our bytes; other bytes: conflict, kept."""
    cfg = config(tmp_path, s3, bucket)
    originals = write_day(cfg.spool[0].dir, files=2)
    (same, same_bytes), (other, _) = sorted(originals.items())
    client = s3.client()
    client.put_object(
        Bucket=bucket,
        Key=key_of(cfg, cfg.spool[0].dir, same),
        Body=same_bytes,
        ChecksumSHA256=sha_b64(same_bytes),
    )
    client.put_object(
        Bucket=bucket,
        Key=key_of(cfg, cfg.spool[0].dir, other),
        Body=b"someone else's",
        ChecksumSHA256=sha_b64(b"someone else's"),
    )
    use_env(monkeypatch, s3.env())
    result = Uploader(cfg).run(threading.Event(), once=True)
    assert result.counters.already_there == 1
    assert not same.exists()
    assert other.exists(), "a conflicting file stays in the spool"
    assert any("conflict" in f.message for f in result.failures)
    body = client.get_object(Bucket=bucket, Key=key_of(cfg, cfg.spool[0].dir, other))["Body"].read()
    assert body == b"someone else's"


def test_a_file_journaled_before_a_crash_is_deleted_without_sending_again(tmp_path, monkeypatch, s3, bucket):
    """Crash between the journal line and the unlink: the next start just finishes the unlink."""
    cfg = config(tmp_path, s3, bucket)
    originals = write_day(cfg.spool[0].dir, files=1)
    use_env(monkeypatch, s3.env())
    first = Uploader(cfg)
    ((path, data),) = originals.items()
    assert first.run(threading.Event(), once=True).ok
    path.write_bytes(data)  # as if the unlink never happened
    again = Uploader(cfg).run(threading.Event(), once=True)
    assert again.ok
    assert again.counters.bytes_sent == 0
    assert not path.exists()


# -- the link fails ------------------------------------------------------------------------------------------


def test_server_stopped_mid_run_then_restarted_every_file_arrives_once(tmp_path, monkeypatch):
    """Server gone mid-run, then back: the loop backs off, resumes, and stores every file once."""
    with S3Server(tmp_path / "s3") as s3:
        bucket = s3.create_bucket("city-restart")
        cfg = config(tmp_path, s3, bucket, workers=1)
        originals = write_day(cfg.spool[0].dir, files=40, per_file=200)
        use_env(monkeypatch, s3.env())
        hashed = []

        def server_dies_before_the_eleventh_send(prep) -> None:
            """The fault at a known point of the run, whatever the machine's speed: ten files stored, the next one
            hashed and about to go, and the server stops (the uploader's own thread waits for it)."""
            hashed.append(prep.item.key)
            if len(hashed) == 11:
                s3.stop()

        thread, stop, _ = run_loop(cfg, after_hash=server_dies_before_the_eleventh_send)
        try:
            wait_for(lambda: StatusFile(cfg.state_dir).read().get("last_failure"), 30, "the failure to be recorded")
            assert len(spool_files(cfg.spool[0].dir)) == len(originals) - 10  # mid-run: ten sent, the rest waiting
            s3.start()
            wait_for(lambda: not spool_files(cfg.spool[0].dir), 60, "the spool to drain after the restart")
        finally:
            stop.set()
            thread.join(10)
        assert not thread.is_alive()
        assert_all_stored_once(s3, cfg, originals)
        error = StatusFile(cfg.state_dir).read()["last_failure"]["error"]
        assert "cannot reach the server" in error or "timed out" in error


def test_hung_server_times_out_and_the_uploader_resumes_after_sigcont(tmp_path, monkeypatch):
    """SIGSTOPped server: requests time out in seconds, the loop goes on, then finishes after SIGCONT."""
    with S3Server(tmp_path / "s3") as s3:
        bucket = s3.create_bucket("city-hung")
        cfg = config(tmp_path, s3, bucket, read_timeout_s=1.0, connect_timeout_s=1.0)
        use_env(monkeypatch, s3.env())
        thread, stop, _ = run_loop(cfg)
        try:
            s3.pause()
            originals = write_day(cfg.spool[0].dir, files=3)
            # The configured 1 s timeouts, not the 30 s default: the failure is recorded well inside this wait.
            wait_for(
                lambda: "timed out" in StatusFile(cfg.state_dir).read().get("last_failure", {}).get("error", ""),
                15,
                "a timeout to be recorded",
            )
            assert len(spool_files(cfg.spool[0].dir)) == 3
            s3.resume()
            wait_for(lambda: not spool_files(cfg.spool[0].dir), 30, "the spool to drain after SIGCONT")
        finally:
            s3.resume()
            stop.set()
            thread.join(15)
        assert not thread.is_alive(), "the uploader stops promptly even after a hang"
        assert_all_stored_once(s3, cfg, originals)


def test_sigkill_mid_multipart_resumes_without_resending_finished_parts(tmp_path):
    """Kill -9 while a big file is half sent: the next run sends only the parts the server does not have."""
    with S3Server(tmp_path / "s3") as s3:
        bucket = s3.create_bucket("city-resume")
        slow = config(tmp_path, s3, bucket, bandwidth_mbps=60.0, workers=2)  # 7.5 MB/s: 40 MiB takes ~5 s
        path = slow.spool[0].dir / f"date={DAY}" / f"bus={BUS}" / "part-090000-big.parquet"
        path.parent.mkdir(parents=True)
        data = os.urandom(40 * MIB)
        path.write_bytes(data)
        cmd = [
            sys.executable,
            "-m",
            "edge",
            "upload",
            "--config",
            str(config_file(tmp_path, slow, "slow.toml")),
        ]
        env = {**os.environ, **s3.env()}
        proc = subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:

            def parts_done() -> int:
                recs = list((slow.state_dir / "multipart").glob("*.json"))
                return len(json.loads(recs[0].read_text())["parts"]) if recs else 0

            wait_for(lambda: parts_done() >= 3, 30, "three parts to be stored")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        done_before = parts_done()
        assert 3 <= done_before < 8
        shown = run_cli(["--config", str(tmp_path / "slow.toml"), "status"], s3.env())
        assert f"{done_before} of 8 part(s) stored" in shown.output
        assert "oldest unsent: fleet/events/date=2026-11-20/bus=bus-0412/part-090000-big.parquet" in shown.output
        fast = config(tmp_path, s3, bucket)
        again = subprocess.run(
            [*cmd[:-1], str(config_file(tmp_path, fast, "fast.toml")), "--once"],
            env=env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"{8 - done_before} part(s) sent, {done_before} resumed" in again.stdout
        head = s3.client().head_object(Bucket=bucket, Key=key_of(fast, fast.spool[0].dir, path), ChecksumMode="ENABLED")
        assert head["ContentLength"] == len(data)
        assert head["Metadata"]["sha256"] == hashlib.sha256(data).hexdigest()
        assert not path.exists()
        assert list((fast.state_dir / "multipart").glob("*.json")) == []


def test_sigterm_stops_the_loop_cleanly(tmp_path, s3, bucket):
    """`vigie upload` (loop mode) drains the spool, keeps polling, and exits 0 on SIGTERM."""
    cfg = config(tmp_path, s3, bucket)
    write_day(cfg.spool[0].dir, files=2)
    cmd = [sys.executable, "-m", "edge", "upload", "--config", str(config_file(tmp_path, cfg))]
    proc = subprocess.Popen(cmd, env={**os.environ, **s3.env()}, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: not spool_files(cfg.spool[0].dir), 20, "the spool to drain")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "2 of 2 file(s) stored" in out


# -- the spool -----------------------------------------------------------------------------------------------


def test_over_quota_clips_are_deleted_oldest_first_and_metadata_never(tmp_path):
    """Over quota: oldest clips go (journaled, noted for status); metadata stays, even if still over."""
    cfg = UploadConfig(
        bucket="city-data",
        state_dir=tmp_path / "state",
        spool_quota_mb=1.0,
        spool=(
            SpoolRoot(name="events", dir=tmp_path / "events"),
            SpoolRoot(name="clips", dir=tmp_path / "clips", priority=10, kind="clip"),
        ),
    )
    write_day(cfg.spool[0].dir, files=2)
    clips = []
    for i in range(4):
        clip = tmp_path / "clips" / f"date={DAY}" / f"bus={BUS}" / f"clip-{i}.mp4"
        clip.parent.mkdir(parents=True, exist_ok=True)
        clip.write_bytes(b"\0" * (400 * 1024))
        os.utime(clip, ns=(i * 10**9, i * 10**9))
        clips.append(clip)
    sidecar = clips[0].with_name("clip-0.frames.parquet")
    sidecar.write_bytes(b"\0" * 1024)
    os.utime(sidecar, ns=(10**9 // 2, 10**9 // 2))
    journal, status = Journal(cfg.state_dir), StatusFile(cfg.state_dir)
    evicted = enforce_quota(cfg, journal, status)
    assert evicted.files == 3
    assert [c.exists() for c in clips] == [False, False, True, True]
    assert not sidecar.exists(), "a clip's sidecar goes with it"
    assert len(spool_files(cfg.spool[0].dir)) == 2
    assert [r["key"] for r in journal.records() if r["op"] == "evicted"] == [
        f"clips/date={DAY}/bus={BUS}/clip-0.mp4",
        f"clips/date={DAY}/bus={BUS}/clip-0.frames.parquet",
        f"clips/date={DAY}/bus={BUS}/clip-1.mp4",
    ]
    assert status.read()["evicted"]["count"] == 3


@pytest.mark.parametrize("attempt", [0, 1, 5, 20, 200])
def test_backoff_is_full_jitter_capped_at_five_minutes(attempt):
    """Each delay is uniform in [0, min(cap, base·2^attempt)]: never above the cap, however many failures."""
    delays = [backoff_s(attempt, base=1.0, cap=300.0) for _ in range(200)]
    assert all(0.0 <= d <= min(300.0, 2.0**attempt) for d in delays)
    assert len(set(delays)) > 100, "jittered, not a fixed schedule"


def test_bandwidth_cap_is_never_exceeded(tmp_path):
    """Reads through a 16 Mbit/s (2 MB/s) bucket never go faster than the cap, however fast the machine: a bucket
    starts empty, so 1 MB takes at least 0.5 s from its creation (a busy machine only makes it longer)."""
    path = tmp_path / "blob"
    path.write_bytes(os.urandom(1_000_000))
    t0 = time.monotonic()
    data = read_range(path, 0, 1_000_000, TokenBucket(2_000_000))
    assert bytes(data) == path.read_bytes()
    assert time.monotonic() - t0 >= 0.5 - 0.001  # float rounding of the bucket's own arithmetic


class FakeClock:
    """monotonic() and sleep() of a clock that moves only when slept on: the bucket's arithmetic, without timing."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_bandwidth_cap_lets_through_as_much_as_it_says(tmp_path, monkeypatch):
    """The other side of the cap, as logic: 1 MB through 2 MB/s takes 0.5 s of the bucket's clock, not more."""
    clock = FakeClock()
    monkeypatch.setattr(transfer, "time", clock)
    path = tmp_path / "blob"
    path.write_bytes(os.urandom(1_000_000))
    bucket = TokenBucket(2_000_000)
    start = clock.now
    read_range(path, 0, 1_000_000, bucket)
    assert clock.now - start == pytest.approx(0.5)
