"""`vigie replay rerun-fleet` on real clips: a short real daemon run with the recorder on makes them, a real Dask
cluster (a LocalCluster of 2 worker processes, or a `dask scheduler` with `dask worker` processes) replays them from
a folder or from a real S3 server (SeaweedFS), and every clip must give exactly the events `vigie replay rerun
--clip` gives it on its own.

The daemon's 12 s make one clip per camera. A second bus is the same recording copied under another bus id (its
clips, sidecars, events and operating time renamed), so the per-bus lines have two buses to tell apart.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from .conftest import demo_data, free_port, to_toml, wait_until
from .event_store import vigie
from .fleet_clips import BUS, copy_as_bus, narrow_right_zone, record_store

OTHER = "demo-02"
VIGIE = [sys.executable, "-m", "edge"]


def clip_videos(store: Path, bus: str = "*") -> list[Path]:
    """The clips the recorder finished. A daemon stopped on a busy machine may leave a clip it was still writing
    under its hidden partial name (cleaned at the next start): never a clip, and rerun-fleet never lists it."""
    return sorted(p for p in store.glob(f"clips/date=*/bus={bus}/*.mp4") if not p.name.startswith("."))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store (events, clips, operating) of two buses, from one real 12 s daemon run with the recorder on."""
    store = record_store(tmp_path_factory.mktemp("fleet"), 12)
    assert len(clip_videos(store)) >= 2, "the daemon recorded too few clips"
    copy_as_bus(store, OTHER)
    return store


@pytest.fixture(scope="module")
def new_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = demo_data()
    narrow_right_zone(data)
    path = tmp_path_factory.mktemp("config") / "narrow.toml"
    path.write_text(to_toml(data))
    return path


def rows(table: pa.Table) -> list[dict]:
    table = table.drop_columns([c for c in ("date", "bus") if c in table.column_names])
    return sorted(table.to_pylist(), key=lambda r: (r["bus_id"], r["start_ts"], r["event_id"]))


def read_rows(folder: Path) -> list[dict]:
    files = sorted(folder.rglob("part-*.parquet"))
    return rows(pa.concat_tables([pq.read_table(f) for f in files])) if files else []


@pytest.fixture(scope="module")
def expected(recorded: Path, new_config: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Every clip of both buses replayed on its own by `vigie replay rerun --clip`, in this process."""
    out = tmp_path_factory.mktemp("single")
    found: list[dict] = []
    for clip in clip_videos(recorded):
        result = vigie("replay", "rerun", "--config", new_config, "--out", out / clip.stem, "--clip", clip)
        assert result.exit_code == 0, result.output
        found += read_rows(out / clip.stem)
    assert {r["bus_id"] for r in found} == {BUS, OTHER}
    return rows(pa.Table.from_pylist(found))


def one_line(result) -> str:
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


# ---- on a local cluster, from the city's bucket ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def bucket(recorded: Path, tmp_path_factory: pytest.TempPathFactory):
    """SeaweedFS holding the store under s3://city/fleet/ as the uploader lays it out."""
    from .services.s3 import S3Server

    with S3Server(tmp_path_factory.mktemp("s3")) as s3:
        s3.create_bucket("city")
        client = s3.client()
        for path in sorted(p for p in recorded.rglob("*") if p.is_file()):
            client.upload_file(str(path), "city", f"fleet/{path.relative_to(recorded).as_posix()}")
        yield s3


def test_a_local_cluster_replays_the_bucket_clip_by_clip_as_replay_rerun_does(
    bucket, recorded: Path, new_config: Path, expected: list[dict]
) -> None:
    env = {**bucket.env(), "VIGIE_S3_ENDPOINT": bucket.endpoint_url}
    result = vigie(
        "replay", "rerun-fleet", "--config", new_config, "--source", "s3://city/fleet/events", "--workers", "2", env=env
    )
    assert result.exit_code == 0, result.output
    clips = len(clip_videos(recorded))
    assert (
        f"{clips} clip(s) of 2 bus(es)" in result.stdout
        and "on 2 worker(s)" in result.stdout
        and "-> s3://city/fleet/reruns/narrow/events" in result.stdout
    )
    listed = vigie("replay", "list", "--source", "s3://city/fleet/reruns/narrow/events", "--json", env=env)
    assert listed.exit_code == 0, listed.output
    written = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(written) == len(expected) and {r["clip"] for r in written} <= {r["clip"] for r in expected}
    client = bucket.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="city", Prefix="fleet/reruns/narrow/")["Contents"]]
    assert "fleet/reruns/narrow/_rerun.json" in keys and "fleet/reruns/narrow/config.toml" in keys
    files = [k for k in keys if "/events/" in k]
    assert len(files) == 2  # one file per bus-day
    fetched = [pq.read_table(pa.BufferReader(client.get_object(Bucket="city", Key=k)["Body"].read())) for k in files]
    assert rows(pa.concat_tables(fetched)) == expected
    # The summary: the narrower zone removes right-side events, on both buses alike.
    lines = result.stdout.splitlines()
    compare = next(line for line in lines if line.startswith("compare with the events the buses recorded:"))
    assert " removed" in compare and ": 0 event(s) before" not in compare
    per_bus = [line.split() for line in lines if line.strip().startswith((BUS, OTHER))]
    assert [b[0] for b in per_bus] == [BUS, OTHER] and per_bus[0][1:] == per_bus[1][1:]
    assert int(per_bus[0][1]) * 2 == clips
    assert "note: doors and reverse gear are not in a clip's sidecar" in result.stderr


# ---- on a real scheduler and its workers ----------------------------------------------------------------------------


@pytest.fixture
def scheduler(tmp_path: Path):
    """`dask scheduler` and `dask worker --nworkers 2` on 127.0.0.1, killed at the end; yields the address."""
    from distributed import Client

    dask = str(Path(sys.executable).parent / "dask")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    common = {"start_new_session": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": tmp_path}
    procs = [
        subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], **common)
    ]
    procs.append(
        subprocess.Popen(
            [dask, "worker", address, "--nworkers", "2", "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard"],
            **common,
        )
    )
    try:
        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def tasks_run(address: str) -> dict[str, int]:
    """How many times the scheduler started each rerun task."""
    from distributed import Client

    def starts(dask_scheduler) -> dict[str, int]:
        counts: dict[str, int] = {}
        for key, _, finish, *_ in dask_scheduler.transition_log:
            if str(key).startswith("vigie-rerun-") and finish == "processing":
                counts[str(key)] = counts.get(str(key), 0) + 1
        return counts

    with Client(address, timeout="30s") as client:
        return client.run_on_scheduler(starts)


def test_the_scheduler_given_runs_the_clips(scheduler: str, recorded: Path, new_config, expected) -> None:
    result = vigie(
        "replay", "rerun-fleet", "--config", new_config, "--source", recorded / "events",
        "--bus", BUS, "--name", "on-scheduler", "--scheduler", scheduler,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    mine = [r for r in expected if r["bus_id"] == BUS]
    assert read_rows(recorded / "reruns" / "on-scheduler" / "events") == mine
    clips = [p.stem for p in clip_videos(recorded, BUS)]
    started = tasks_run(scheduler)
    assert sorted(key.split("-", 3)[3] for key in started) == clips  # vigie-rerun-<run token>-<clip id>
    manifest = json.loads((recorded / "reruns" / "on-scheduler" / "_rerun.json").read_text())
    assert manifest["engine"] == scheduler and sorted(c["clip"] for c in manifest["clips"]) == clips
    # The same config again, compared with that rerun rather than with the buses' events: nothing changed.
    again = vigie(
        "replay", "rerun-fleet", "--config", new_config, "--source", recorded / "events",
        "--bus", BUS, "--name", "again", "--baseline", "on-scheduler", "--scheduler", scheduler,
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    n = len(mine)
    assert (
        f"compare with rerun on-scheduler: {n} event(s) before, {n} after: 0 added, 0 removed, 0 shifted "
        f"(start moved > 0.5 s), 0 level changed, {n} unchanged"
    ) in again.stdout


def test_a_worker_killed_mid_clip_is_retried_and_no_clip_counted_twice(
    scheduler: str, recorded: Path, new_config, expected
) -> None:
    from distributed import Client

    run = subprocess.Popen(
        [*VIGIE, "replay", "rerun-fleet", "--config", str(new_config), "--source", str(recorded / "events"),
         "--bus", BUS, "--name", "killed", "--scheduler", scheduler],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        with Client(scheduler, timeout="30s") as client:
            busy: dict[str, list[str]] = {}

            def executing() -> bool:
                found = client.run(lambda dask_worker: [str(ts.key) for ts in dask_worker.state.executing])
                busy.update({a: keys for a, keys in found.items() if any(k.startswith("vigie-rerun-") for k in keys)})
                return bool(busy) or run.poll() is not None

            wait_until(executing, "a worker replaying a clip", timeout=120)
            assert busy, f"the rerun ended before any clip was seen running: {run.communicate()}"
            victim = next(iter(busy))
            pid = client.run(os.getpid, workers=[victim])[victim]
            os.kill(pid, signal.SIGKILL)
        out, err = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, err
    killed = busy[victim][0]
    assert tasks_run(scheduler)[killed] >= 2, "the clip of the killed worker was not run again"
    assert read_rows(recorded / "reruns" / "killed" / "events") == [r for r in expected if r["bus_id"] == BUS]
    manifest = json.loads((recorded / "reruns" / "killed" / "_rerun.json").read_text())
    names = [c["clip"] for c in manifest["clips"]]
    assert len(names) == len(set(names)) and f"{len(names)} clip(s)" in out


# ---- bad input: one line, exit 2, nothing written ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scheduler", "localhost:8786"], "expected tcp://host:port"),
        (["--scheduler", "tcp://127.0.0.1:99999"], "expected tcp://host:port"),
        (["--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"], "--workers: sizes the local cluster"),
        (["--from", "2020-01-01", "--to", "2020-01-02"], "no clips from 2020-01-01 to 2020-01-02"),
        (["--bus", "no-such-bus"], "no clips of bus no-such-bus"),
        (["--name", "../up"], "--name '../up'"),
        (["--baseline", "never-run"], "--baseline: no finished rerun at"),
    ],
)
def test_bad_input_is_one_line_with_exit_2_and_writes_nothing(recorded: Path, new_config, extra, message) -> None:
    result = vigie("replay", "rerun-fleet", "--config", new_config, "--source", recorded / "events", *extra)
    assert result.exit_code == 2 and message in one_line(result)
    assert not (recorded / "reruns" / "narrow").exists()


def test_a_scheduler_that_cannot_be_reached_is_one_line_with_exit_2(recorded: Path, new_config) -> None:
    # Dask's own setting says how long to try (30 s by default).
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    proc = subprocess.run(
        [*VIGIE, "replay", "rerun-fleet", "--config", str(new_config), "--source", str(recorded / "events"),
         "--name", "unreached", "--scheduler", f"tcp://127.0.0.1:{free_port()}"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "cannot be reached" in proc.stderr and not (recorded / "reruns" / "unreached").exists()


def test_a_camera_the_config_lacks_is_refused_before_any_work(recorded: Path, tmp_path: Path) -> None:
    data = demo_data()
    data["cameras"] = [c for c in data["cameras"] if c["name"] != "rear"]
    config = tmp_path / "three.toml"
    config.write_text(to_toml(data))
    result = vigie("replay", "rerun-fleet", "--config", config, "--source", recorded / "events")
    assert result.exit_code == 2 and "camera 'rear'" in one_line(result)


def test_a_name_already_used_and_a_foreign_object_are_refused(recorded: Path, new_config, tmp_path: Path) -> None:
    (recorded / "reruns" / "taken").mkdir(parents=True)
    (recorded / "reruns" / "taken" / "config.toml").write_text("")
    result = vigie("replay", "rerun-fleet", "--config", new_config, "--source", recorded / "events", "--name", "taken")
    assert result.exit_code == 2 and "did not finish; choose another --name" in one_line(result)
    store = tmp_path / "store"
    shutil.copytree(recorded / "clips", store / "clips")
    (store / "events").mkdir()
    folder = next((store / "clips").glob(f"date=*/bus={BUS}"))
    (folder / "notes.txt").write_text("not a clip")
    result = vigie("replay", "rerun-fleet", "--config", new_config, "--source", store / "events")
    assert result.exit_code == 2 and "notes.txt: not a clip" in one_line(result)


def test_a_clip_that_cannot_be_replayed_writes_nothing(recorded: Path, new_config, tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(recorded / "clips", store / "clips", ignore=shutil.ignore_patterns(f"bus={OTHER}", ".*"))
    shutil.copytree(recorded / "events", store / "events")
    broken = clip_videos(store)[0]
    broken.write_bytes(b"not a video" * 100)
    result = vigie("replay", "rerun-fleet", "--config", new_config, "--source", store / "events", "--workers", "1")
    assert result.exit_code == 2, result.output
    assert f"clip(s) cannot be replayed, nothing written; first: {broken.stem}" in one_line(result)
    assert not (store / "reruns").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--start", "2026-03-01"], "--start: a clip's frames keep the times they were recorded at"),
        (["--vehicle", "configs/demo_vehicle.csv"], "--clip: replays one recorded clip on its own"),
    ],
)
def test_replay_rerun_clip_refuses_what_the_clip_already_says(
    recorded: Path, new_config, tmp_path: Path, extra, message
) -> None:
    clip = clip_videos(recorded)[0]
    result = vigie("replay", "rerun", "--config", new_config, "--out", tmp_path / "out", "--clip", clip, *extra)
    assert result.exit_code == 2 and message in one_line(result)
