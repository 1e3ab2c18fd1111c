"""Crash test of the on-disk journals (issue 14, item 12): real processes, SIGKILLed at seeded random moments.

Two stores, 50 kills in all:
- the uploader (journal.jsonl, status.json, multipart/*.json) against a real SeaweedFS, sending many small files
  and one multipart file: after the kills and one clean `--once`, every file is in the bucket exactly once with
  its bytes, each journaled exactly once, listed once in its manifest, and every local record parses;
- the events write-ahead log (recorder/wal.py with recorder/events.py, as on main): a process opening, closing and
  flushing events: after the kills and one clean recovery, every event whose close was acknowledged is in the
  Parquet dataset exactly once, with its closing record, and no torn record breaks a recovery.

After some kills a torn last record is appended as well: what a short write(2) leaves when SIGKILL lands inside
it (the kernel stops copying at a page boundary when a fatal signal is pending) or a power cut.

The kill moments come from `random.Random(SEED)` (`VIGIE_CRASH_SEED` to change it): the same schedule every run.
A kill waits for a condition first (the uploader holds its state lock; the WAL child started recovering), then
the seeded delay: the delay is where the fault lands, not a wait for something to happen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from edge.config import REPO_ROOT
from recorder.events import EventSink, EventWriter
from recorder.wal import WAL_NAME, EventWal
from uploader.config import UploadConfig
from uploader.manifest import manifest_key
from uploader.state import Journal, MultipartStore, StoredObject, exclusive

from .conftest import temp_files, wait_until
from .services.s3 import S3Server
from .test_upload import config, config_file

pytestmark = pytest.mark.crash

SEED = int(os.environ.get("VIGIE_CRASH_SEED", "20261120"))
UPLOAD_EPISODES = 5  # each: a fresh spool, KILLS_PER_EPISODE kills, then a clean --once and the checks
KILLS_PER_EPISODE = 5
WAL_KILLS = 25
TORN_TAIL_ODDS = 0.3
KIB, MIB = 1024, 1024 * 1024
DAYS = ("2026-11-20", "2026-11-21")
BUS = "bus-0412"


@dataclass
class Tally:
    """What the README quotes: runs, kills, torn tails injected, inconsistencies (with what they were)."""

    store: str
    runs: int = 0
    kills: int = 0
    torn: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"crash test {self.store}: {self.runs} runs, {self.kills} SIGKILLs, {self.torn} torn tails injected, "
            f"{len(self.problems)} inconsistencies (seed {SEED})"
        )


def report(tally: Tally, capsys) -> None:
    with capsys.disabled():
        print(f"\n{tally.line()}")
        for problem in tally.problems[:20]:
            print(f"  {problem}")
    assert not tally.problems, tally.line()
    # A child that dies at once is never killed: zero kills would pass for a clean crash test.
    assert tally.kills >= tally.runs // 2, f"only {tally.kills} of {tally.runs} runs were killed: {tally.line()}"


def kill_at(proc: subprocess.Popen, delay_s: float) -> bool:
    """SIGKILL `proc` `delay_s` from now unless it ended before; True if the kill hit a live process."""
    try:
        proc.wait(timeout=delay_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        return True
    return False


def append_torn(path: Path, record: dict, rng: random.Random) -> None:
    """A record cut short, no newline: what a kill inside write(2) leaves at the end of an append-only file."""
    line = json.dumps(record, sort_keys=True).encode()
    with open(path, "ab") as fh:
        fh.write(line[: rng.randrange(1, len(line))])


# -- the uploader --------------------------------------------------------------------------------------------


def make_spool(cfg: UploadConfig, rng: random.Random) -> dict[str, bytes]:
    """30 small event files over two days and one 12 MiB clip (three 5 MiB parts); returns bytes by key."""
    files: dict[str, bytes] = {}
    for i in range(30):
        rel = Path(f"date={DAYS[i % 2]}") / f"bus={BUS}" / f"part-08{i:04d}-crash.parquet"
        files[f"events/{rel.as_posix()}"] = rng.randbytes(rng.randrange(4 * KIB, 96 * KIB))
    files[f"clips/date={DAYS[0]}/bus={BUS}/clip-0800-crash.mp4"] = rng.randbytes(12 * MIB)
    roots = {root.name: root.dir for root in cfg.spool}
    for rel, data in files.items():
        name, rest = rel.split("/", 1)
        path = roots[name] / rest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return {cfg.key_prefix() + rel: data for rel, data in files.items()}


def holds_state_lock(pid: int, lock: Path) -> bool:
    """The uploader has opened its state lock: imports are done and the work is about to start."""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(lock) for fd in os.listdir(f"/proc/{pid}/fd"))
    except FileNotFoundError:
        return False  # the process or one of its descriptors went away while we looked


def upload_problems(s3: S3Server, cfg: UploadConfig, originals: dict[str, bytes]) -> list[str]:
    """Everything that is not 'each file in the bucket once, intact, journaled once, in its manifest once'."""
    problems: list[str] = []
    client = s3.client()
    listed = client.list_objects_v2(Bucket=cfg.bucket, Prefix=cfg.key_prefix())
    keys = [o["Key"] for o in listed.get("Contents", [])]
    manifests = {manifest_key(cfg, day, BUS) for day in DAYS}
    for key, n in Counter(keys).items():
        if n > 1:
            problems.append(f"{key}: listed {n} times")
    problems += [f"{key}: missing from the bucket" for key in sorted(set(originals) - set(keys))]
    problems += [f"{key}: unexpected in the bucket" for key in sorted(set(keys) - set(originals) - manifests)]
    for key, data in originals.items():
        if key in keys and client.get_object(Bucket=cfg.bucket, Key=key)["Body"].read() != data:
            problems.append(f"{key}: stored bytes differ from the file's")
    # The journal: every line a JSON record, each file stored exactly once.
    journal = cfg.state_dir / "journal.jsonl"
    stored: list[str] = []
    for n, line in enumerate(journal.read_text(encoding="utf-8").splitlines(), 1):
        try:
            rec = json.loads(line)
        except ValueError:
            problems.append(f"journal.jsonl line {n} does not parse: {line[:80]!r}")
            continue
        if rec.get("op") == "stored":
            stored.append(rec["key"])
            if rec["sha256"] != hashlib.sha256(originals.get(rec["key"], b"")).hexdigest():
                problems.append(f"journal: {rec['key']}: sha256 is not the file's")
    for key in originals:
        if stored.count(key) != 1:
            problems.append(f"journal: {key} recorded stored {stored.count(key)} times")
    # The manifests: each file once, with its sha256.
    for day in DAYS:
        doc = json.loads(client.get_object(Bucket=cfg.bucket, Key=manifest_key(cfg, day, BUS))["Body"].read())
        listed_keys = Counter(o["key"] for o in doc["objects"])
        for key, data in originals.items():
            if f"date={day}/" not in key:
                continue
            if listed_keys[key] != 1:
                problems.append(f"manifest {day}: {key} listed {listed_keys[key]} times")
            elif next(o for o in doc["objects"] if o["key"] == key)["sha256"] != hashlib.sha256(data).hexdigest():
                problems.append(f"manifest {day}: {key} has the wrong sha256")
    # Local records: status parses and owes no manifest; no upload left in progress; spool empty; no stray temp.
    try:
        status = json.loads((cfg.state_dir / "status.json").read_text(encoding="utf-8"))
        if status.get("manifests_pending"):
            problems.append(f"status.json still lists manifests to write: {status['manifests_pending']}")
    except (OSError, ValueError) as exc:
        problems.append(f"status.json does not parse: {exc}")
    for path in sorted((cfg.state_dir / "multipart").glob("*")):
        problems.append(f"multipart record left behind: {path.name} ({path.read_text(errors='replace')[:60]!r})")
    problems += [f"temporary file left behind: {p.name}" for p in temp_files(cfg.state_dir)]
    for root in cfg.spool:
        problems += [f"still in the spool: {p}" for p in sorted(root.dir.rglob("*")) if p.is_file()]
    return problems


def test_a_torn_last_journal_record_is_cut_off_before_the_next_append(tmp_path):
    """The record after a torn one stays readable: the torn tail (never acknowledged) is cut, not fused onto it."""
    journal = Journal(tmp_path)
    obj = StoredObject("fleet/events/a", 1, "0" * 64, "c", DAYS[0], BUS, "2026-11-20T08:00:00+00:00")
    journal.stored(obj, tmp_path / "a")
    append_torn(journal.path, {"op": "stored", "key": "fleet/events/torn"}, random.Random(SEED))
    reopened = Journal(tmp_path)
    reopened.stored(dataclasses.replace(obj, key="fleet/events/b"), tmp_path / "b")
    lines = journal.path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["fleet/events/a", "fleet/events/b"]
    assert Journal(tmp_path).lookup("fleet/events/b") is not None


def test_temporary_files_a_kill_left_are_removed_under_the_state_lock(tmp_path):
    """A kill between writing a status or multipart temp file and renaming it leaves litter the next run removes."""
    MultipartStore(tmp_path).save({"key": "x"})
    (record,) = (tmp_path / "multipart").glob("*.json")
    # Temporary names of this version and of earlier ones (`.name.pid.thread.tmp`).
    stale = [tmp_path / ".status.1a2b3c4d.tmp.json", tmp_path / ".status.json.123.456.tmp"]
    stale += [tmp_path / "multipart" / ".x.1a2b3c4d.tmp.json", tmp_path / "multipart" / ".x.json.123.456.tmp"]
    for path in stale:
        path.write_text("{")
    with exclusive(tmp_path):
        assert not any(p.exists() for p in stale)
    assert record.exists()


def test_uploader_sigkilled_at_random_points_stores_every_file_once(tmp_path, capsys):
    """SIGKILL anywhere in a run (small files, a multipart file, manifests): nothing lost, duplicated or torn."""
    rng = random.Random(SEED)
    tally = Tally("uploader journal/status/multipart")
    with S3Server(tmp_path / "s3") as s3:
        env = {**os.environ, **s3.env()}
        for episode in range(UPLOAD_EPISODES):
            root = tmp_path / f"episode-{episode}"
            bucket = s3.create_bucket(f"city-crash-{episode}")
            # 40 Mbit/s: an episode's 14 MiB take ~3 s, so the kills land all through it.
            cfg = config(root, s3, bucket, bandwidth_mbps=40.0, workers=2)
            originals = make_spool(cfg, rng)
            cmd = [sys.executable, "-m", "edge", "upload", "--config", str(config_file(root, cfg))]
            for _ in range(KILLS_PER_EPISODE):
                proc = subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                lock = cfg.state_dir / "lock"
                try:
                    wait_until(lambda p=proc, lock=lock: holds_state_lock(p.pid, lock), "the uploader to start")
                finally:
                    killed = kill_at(proc, rng.uniform(0.0, 1.5))
                tally.runs += 1
                tally.kills += killed
                if not killed:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    tally.problems.append(f"episode {episode}: the uploader exited {proc.returncode} by itself: {err}")
                if proc.stderr:
                    proc.stderr.close()
                if rng.random() < TORN_TAIL_ODDS:
                    torn = {"op": "stored", "key": f"{cfg.key_prefix()}events/torn", "sha256": "0" * 64}
                    append_torn(cfg.state_dir / "journal.jsonl", torn, rng)
                    tally.torn += 1
            final = subprocess.run(
                [*cmd, "--once"], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180
            )
            tally.runs += 1
            if final.returncode != 0:
                tally.problems.append(f"episode {episode}: the clean --once exited {final.returncode}: {final.stderr}")
            tally.problems += [f"episode {episode}: {p}" for p in upload_problems(s3, cfg, originals)]
    report(tally, capsys)


# -- the events write-ahead log ------------------------------------------------------------------------------


def run_wal_child(state: Path, events: Path, run: int, rng: random.Random, tally: Tally) -> dict[str, int]:
    """One child run killed at a seeded moment after it starts recovering; returns closes it acknowledged."""
    cmd = [sys.executable, "-m", "tests.crash_wal_child", str(state), str(events), str(run)]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    assert proc.stdout is not None and proc.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(line.strip() for line in proc.stdout), daemon=True)
    reader.start()
    try:
        wait_until(lambda: bool(lines) or proc.poll() is not None, "the WAL child to start recovering")
    finally:
        killed = kill_at(proc, rng.uniform(0.0, 0.6))
    reader.join(30)
    err = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    tally.runs += 1
    tally.kills += killed
    if not killed:
        tally.problems.append(f"run {run}: the WAL child exited {proc.returncode} by itself: {err.strip()[-300:]}")
    acked = {}
    for line in lines:
        if line.startswith("closed "):
            _, event_id, frames = line.split()
            acked[event_id] = int(frames)
    return acked


@dataclass
class WalOutcome:
    """One crash session of the events WAL, judged by two tests: nothing lost, nothing written twice."""

    tally: Tally
    acked: int
    written: int
    files: int
    lost: list[str]  # acknowledged closes missing, or written with another record than the closing one
    duplicated: list[str]


@pytest.fixture(scope="module")
def wal_crash(tmp_path_factory) -> WalOutcome:
    """WAL_KILLS child runs killed at seeded moments (appending, flushing Parquet, marking done, recovering), some
    followed by a torn tail, then one clean start and stop as the next daemon would do."""
    tmp = tmp_path_factory.mktemp("wal-crash")
    rng = random.Random(SEED + 1)
    tally = Tally("events WAL")
    state, events = tmp / "state", tmp / "events"
    acked: dict[str, int] = {}
    for run in range(WAL_KILLS):
        acked |= run_wal_child(state, events, run, rng, tally)
        if rng.random() < TORN_TAIL_ODDS and (state / WAL_NAME).exists():
            append_torn(state / WAL_NAME, {"op": "close", "event": {"event_id": f"r{run}-torn"}}, rng)
            tally.torn += 1
    sink = EventSink(root=events, bus_id="bus-crash", model_id="crash@test")
    EventWriter(sink, 60.0, EventWal(state)).close()
    tally.runs += 1
    files = sorted(p for p in events.rglob("*.parquet") if not p.name.startswith("."))
    rows = [r for f in files for r in pq.read_table(f, columns=["event_id", "frames"]).to_pylist()]
    seen = Counter(r["event_id"] for r in rows)
    frames = {r["event_id"]: r["frames"] for r in rows}
    lost = []
    for event_id, want in sorted(acked.items()):
        if event_id not in seen:
            lost.append(f"{event_id}: closed and acknowledged, never written")
        elif frames[event_id] != want:
            lost.append(f"{event_id}: written with {frames[event_id]} frames, closed with {want}")
    if (state / WAL_NAME).stat().st_size:
        lost.append("the log is not empty after a clean recovery and stop")
    duplicated = [f"{event_id}: written {n} times" for event_id, n in sorted(seen.items()) if n > 1]
    return WalOutcome(tally, len(acked), len(seen), len(files), lost, duplicated)


def test_events_wal_sigkilled_at_random_points_loses_no_closed_event(wal_crash, capsys):
    """SIGKILL anywhere, torn tails included: every acknowledged close is written, with its closing record."""
    w = wal_crash
    tally = Tally(w.tally.store, w.tally.runs, w.tally.kills, w.tally.torn, w.lost)
    with capsys.disabled():
        print(f"\nevents WAL: {w.acked} closes acknowledged, {w.written} events written in {w.files} files")
    report(tally, capsys)


def test_events_wal_sigkilled_at_random_points_writes_each_event_once(wal_crash, capsys):
    """SIGKILL anywhere: no event is in the Parquet dataset twice."""
    w = wal_crash
    affected = len({d.split("-")[0] for d in w.duplicated})
    with capsys.disabled():
        print(f"\nevents WAL: {len(w.duplicated)} events written twice, from {affected} of {w.tally.kills} kills")
    tally = Tally(w.tally.store, w.tally.runs, w.tally.kills, w.tally.torn, w.duplicated)
    report(tally, capsys)
