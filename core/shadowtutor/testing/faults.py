"""Faults the tests and the benchmarks inject in-process: a disk that fills up, and waiting for
a server process that may not come up."""

from __future__ import annotations

import errno
import os
import subprocess
import time
from typing import Any


class FullDisk:
    """A stand-in for ``os.write`` for files under ``folder``: it takes ``room`` more bytes,
    then fails with ENOSPC (after a short write, as a nearly full filesystem does) until
    :meth:`grow`. Install it with ``monkeypatch.setattr(os, "write", disk)`` (or assign and
    restore ``disk.original`` yourself); writes to other files pass through."""

    def __init__(self, folder: Any, room: int | None):
        self.folder, self.room = str(folder), room
        self.original = os.write

    def grow(self) -> None:
        """The disk has room again."""
        self.room = None

    def __call__(self, fd: int, data: Any) -> int:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if self.room is None or not target.startswith(self.folder):
            return self.original(fd, data)
        if self.room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        written = self.original(fd, bytes(data[: self.room]))
        self.room -= written
        return written


def wait_until_up(
    proc: subprocess.Popen[Any], url: str, *, what: str, timeout_s: float = 30.0, pause: float = 0.1
) -> subprocess.Popen[Any]:
    """``proc`` once ``GET url`` answers 200; killed, and SystemExit naming ``what``, when it
    does not within ``timeout_s`` (or exits first)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(pause)
    proc.kill()
    raise SystemExit(f"{what} did not start")
