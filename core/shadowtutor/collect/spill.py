"""The companion's spill file: the hand-offs that did not fit in its pipe, on disk at once.

With the companion on, a job is handed over by writing its frame to the child's pipe (see
:mod:`shadowtutor.collect.executors.companion`). A frame that does not fit (the child has
fallen behind, its 1 MiB pipe is full) waits in the parent's backlog, which lives in the
parent's memory: a ``kill -9`` of the app would lose it. So such a frame is also appended,
whole, to ``<log>/journal/<writer>.spill`` with one ``os.write`` before :meth:`Spill.add`
returns (the page cache outlives the process; no thread to wake, no wait on the disk: a
frame is already encoded). The file holds frames in the pipe's own format; it is emptied
when the child has journaled every spilled frame (its acknowledgement) and removed at close.

Who reads it:

* the child, at the end of its pipe (its parent closed it, or died): the spilled frames it
  never read are its work too; it processes them like any job (the student is asked) and
  removes the file;
* the next start on the log (:meth:`ThreadExecutor._recover`), when the parent and the child
  are both gone (a ``kill -9`` of the whole process group): the frames whose ids the log and
  the dead child's journal do not hold are logged as journal recovery does (the student side
  says it was not asked), counted in ``recovered``; an unreadable frame is counted in ``lost``.

The parent holds an exclusive ``flock`` on the file and the child inherits it, so the file is
orphaned only when both are gone (:func:`orphaned`).
"""

from __future__ import annotations

import fcntl
import os
import secrets
import socket
import struct
from pathlib import Path

SUFFIX = ".spill"
_HEAD = struct.Struct(">IB")  # the frames' header (shadowtutor.collect.frames.HEAD)


def path_for(folder: Path) -> Path:
    """A new spill file's path in the journal folder (host, pid and a random token)."""
    return Path(folder) / f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"


class Spill:
    """The parent's end: append whole frames, empty when all are acknowledged, remove."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(self.fd)
            raise
        self.holding = 0  # frames written since the file was last emptied
        self.written = 0  # frames written in all
        self.errors = 0
        self.last_error: str | None = None

    def add(self, frame: bytes) -> bool:
        """Append one whole frame (one write: the page cache has it when this returns)."""
        if self.fd < 0:
            return False
        try:
            view = memoryview(frame)
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError as exc:  # a full disk: counted, the frame stays in memory only
            self.errors += 1
            self.last_error = f"spill write to {self.path} failed: {exc}"
            return False
        self.holding += 1
        self.written += 1
        return True

    def empty(self) -> None:
        """Every spilled frame is in the child's journal: nothing here is needed any more."""
        if self.fd >= 0 and self.holding:
            try:
                os.ftruncate(self.fd, 0)
                self.holding = 0
            except OSError as exc:
                self.errors += 1
                self.last_error = f"spill truncate of {self.path} failed: {exc}"

    def close(self, remove: bool) -> None:
        """Close (``remove``: its frames are all logged or journaled elsewhere)."""
        if remove:
            self.path.unlink(missing_ok=True)
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def read(path: Path) -> tuple[list[bytes], int]:
    """The payloads of the whole frames in a spill file, and the number of bytes of a torn
    last frame (0 when none)."""
    data = Path(path).read_bytes()
    out, at = [], 0
    while at + _HEAD.size <= len(data):
        size, _kind = _HEAD.unpack_from(data, at)
        end = at + 4 + size
        if end > len(data):
            break
        out.append(data[at + _HEAD.size : end])
        at = end
    return out, len(data) - at


def orphaned(folder: Path) -> list[Path]:
    """Spill files whose parent and child are both gone (no process holds their lock)."""
    found = []
    for path in sorted(Path(folder).glob(f"*{SUFFIX}")) if Path(folder).is_dir() else []:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            continue
        finally:
            os.close(fd)
        found.append(path)
    return found
