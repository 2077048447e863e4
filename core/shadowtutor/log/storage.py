"""Where the shadow log lives, behind one interface: a local folder or an S3 bucket.

Both hold the same layout (``jsonl/date=YYYY-MM-DD/...``, ``parquet/date=YYYY-MM-DD/...``,
``quarantine/...``) and the writers, readers, SQL and compaction use them only through
:class:`Storage`: list the files of a kind, read one file's bytes, give DuckDB a URL it can
open, put a finished local file in place, move, delete. Nothing outside the storage modules
(this one and :mod:`~shadowtutor.log.bucket`) asks which kind of storage it has.

A folder is used with ``Path`` objects and ``os`` calls, and DuckDB reads its files itself. A
bucket is reached with ``pyarrow.fs.S3FileSystem`` (its C++ client speaks AWS S3, MinIO, Ceph,
R2 and SeaweedFS) configured by the ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION`` (and ``AWS_SESSION_TOKEN``) values the caller passes
in; DuckDB reads the bucket through the same client registered as a filesystem
(:mod:`shadowtutor.log.bucketfs`), so every SQL text is the same for both, only the URLs differ.

The log package never reads the environment: the caller builds the storage from the settings'
strings (:func:`shadowtutor.log.bucket.from_settings`); a folder path becomes a
:class:`FolderStorage` (:func:`resolve`). This module holds the interface, the folder and what
both kinds share; the bucket is :mod:`shadowtutor.log.bucket`.

Paths of files in a bucket are ``PurePosixPath("bucket/prefix/jsonl/date=.../x.jsonl.zst")``.
A bucket's JSONL parts are uploaded zstd-compressed (``.jsonl.zst``, about 18 times smaller on
real records): the object store then stores, and later serves, a fraction of the bytes. Every
reader takes ``.jsonl`` and ``.jsonl.zst`` alike, in a folder or a bucket (DuckDB decompresses
by the name; :meth:`Storage.read_bytes` does for Python readers).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Union

try:  # POSIX; elsewhere compaction and writers do not lock (one process at a time)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from shadowtutor.log.errors import CorruptPartError, LogStorageError

S3_SCHEME = "s3://"
COMPRESSED = ".zst"  # a zstd-compressed part
JSONL_SUFFIXES = (".jsonl", ".jsonl" + COMPRESSED)  # the JSONL parts, plain or compressed


@dataclass(frozen=True)
class Entry:
    """One file of the log: its path, size in bytes and modification time (ns)."""

    path: Any  # Path (folder) or PurePosixPath (bucket)
    size: int
    mtime_ns: int


class Storage(Protocol):
    """What the log's writers, readers, SQL and compaction need from where it lives.

    ``key`` names the place stably (cache file names), ``instance_key`` this object in
    in-process caches (a bucket: one per client). ``url`` is the name DuckDB opens a file by,
    ``display`` how a report names it. ``put_file`` puts a finished local file in place whole
    (the local file is gone after); ``staging`` gives the local path to write it first.
    ``hold`` gives the files that are safe to remove while it lasts (compaction). ``prepare``
    makes a DuckDB connection able to read the storage; ``read_error`` finds the storage's
    own failure in a DuckDB error. ``appends``: whether writers append to the log's own files
    (a folder); object storage has no append, so there writers spool parts and upload them.
    """

    kind: str
    appends: bool

    @property
    def key(self) -> str: ...
    @property
    def instance_key(self) -> str: ...
    @property
    def root(self) -> Any: ...
    def sub(self, *parts: str) -> Any: ...
    def entries(self, kind: str, suffix: str | tuple[str, ...]) -> list[Entry]: ...
    def files(self, kind: str, suffix: str | tuple[str, ...]) -> list[Any]: ...
    def url(self, path: Any) -> str: ...
    def display(self, path: Any) -> str: ...
    def read_bytes(self, path: Any) -> bytes: ...
    def exists(self, path: Any) -> bool: ...
    def delete(self, path: Any) -> None: ...
    def move(self, src: Any, dst: Any) -> None: ...
    def put_file(self, local: Path, dst: Any) -> None: ...
    def staging(self, dst: Any) -> AbstractContextManager[Path]: ...
    def sweep_staging(self) -> list[str]: ...
    def hold(self, files: list[Any]) -> AbstractContextManager[list[Any]]: ...
    def prepare(self, con: Any) -> None: ...
    def read_error(self, exc: BaseException) -> LogStorageError | None: ...


def is_compressed(path: Any) -> bool:
    return str(path).endswith(COMPRESSED)


def compress(data: bytes) -> bytes:
    """zstd (level 3, one frame): what ``zstd``/``zstdcat`` and DuckDB read."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return sink.getvalue().to_pybytes()


def decompress(data: bytes, path: Any) -> bytes:
    import pyarrow as pa

    try:
        return pa.input_stream(pa.py_buffer(data), compression="zstd").read()
    except (OSError, pa.ArrowException) as exc:
        raise CorruptPartError(
            f"{path}: the compressed part cannot be read ({str(exc).splitlines()[0][:200]}); "
            "it is truncated or corrupt: restore it, or move it out of the log"
        ) from None


def suffixes(suffix: str | tuple[str, ...]) -> tuple[str, ...]:
    return (suffix,) if isinstance(suffix, str) else tuple(suffix)


def is_s3(value: Any) -> bool:
    return getattr(value, "kind", None) == "s3" or str(value).startswith(S3_SCHEME)


LogDir = Union[Path, str, "Storage"]  # noqa: UP007  (forward reference)


def lock_file(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)


def unlock_file(fd: int) -> None:
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def is_file_at(fd: int, path: Path | str) -> bool:
    """Whether the open file is still the one at ``path`` (not removed, not moved away)."""
    st = os.fstat(fd)
    if st.st_nlink == 0:
        return False
    try:
        at = os.stat(path)
    except FileNotFoundError:
        return False
    return (at.st_dev, at.st_ino) == (st.st_dev, st.st_ino)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# A compaction's staging files carry their owner ("<host>_<pid>"), so that the next run can
# remove what a killed one left (kill -9 runs no cleanup) and never what a running one uses.
STAGING_PREFIX = "shadowtutor-compact-"


def staging_owner() -> str:
    return f"{socket.gethostname().replace('.', '-').replace('_', '-')}_{os.getpid()}"


def owner_gone(owner: str) -> bool:
    """Whether the staging owner ``<host>_<pid>`` is a process of this machine that is gone
    (an owner on another machine, or a name without one, is never judged gone)."""
    host, _, pid = owner.rpartition("_")
    mine = socket.gethostname().replace(".", "-").replace("_", "-")
    return host == mine and pid.isdigit() and not process_alive(int(pid))


# --- a folder ----------------------------------------------------------------------------


def resolve(value: LogDir) -> Storage:
    """The storage for a folder path, or a storage (returned as is). A bucket is built from
    the settings (:func:`from_settings`): its URL alone does not say how to reach it."""
    if not isinstance(value, Path | str):
        return value
    if is_s3(value):
        raise LogStorageError(
            f"the log bucket {value} needs its settings: pass settings.log_path "
            "(or shadowtutor.log.bucket.from_settings(settings, env)) instead of the URL"
        )
    return FolderStorage(Path(value))


class FolderStorage:
    kind = "folder"
    appends = True

    def __init__(self, root: Path):
        self.root = Path(root)

    def __str__(self) -> str:
        return str(self.root)

    @property
    def key(self) -> str:
        return str(self.root.resolve())

    @property
    def instance_key(self) -> str:
        return self.key

    def sub(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def files(self, kind: str, suffix: str | tuple[str, ...]) -> list[Path]:
        root = self.root / kind
        if not root.exists():
            return []
        ends = suffixes(suffix)
        return sorted(p for p in root.glob("date=*/*") if p.name.endswith(ends))

    def entries(self, kind: str, suffix: str | tuple[str, ...]) -> list[Entry]:
        out = []
        for path in self.files(kind, suffix):
            try:
                st = path.stat()
            except FileNotFoundError:  # removed by a concurrent compaction
                continue
            out.append(Entry(path, st.st_size, st.st_mtime_ns))
        return out

    def url(self, path: Any) -> str:
        return str(path)

    def display(self, path: Any) -> str:
        return str(path)

    def read_bytes(self, path: Any) -> bytes:
        """A file's bytes (decompressed for a ``.zst`` part)."""
        with open(path, "rb") as fh:
            data = fh.read()
        return decompress(data, path) if is_compressed(path) else data

    def exists(self, path: Any) -> bool:
        return Path(path).exists()

    def delete(self, path: Any) -> None:
        Path(path).unlink()

    def move(self, src: Any, dst: Any) -> None:
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        os.replace(src, dst)

    def put_file(self, local: Path, dst: Any) -> None:
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
        os.replace(local, dst)

    @contextmanager
    def staging(self, dst: Any) -> Iterator[Path]:
        """Next to ``dst``, so that :meth:`put_file` is one rename on the same disk; named
        ``<dst>.<owner>.tmp`` (see :meth:`sweep_staging`)."""
        tmp = Path(dst).with_name(f"{Path(dst).name}.{staging_owner()}.tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            yield tmp
        finally:
            tmp.unlink(missing_ok=True)

    def sweep_staging(self) -> list[str]:
        """Remove the ``.tmp`` files a killed compaction left in ``parquet/``; their names."""
        root = self.root / "parquet"
        gone = []
        for tmp in sorted(root.glob("date=*/*.tmp")) if root.exists() else []:
            owner = tmp.name[: -len(".tmp")].rpartition(".")[2]
            if owner_gone(owner):
                tmp.unlink(missing_ok=True)
                gone.append(str(tmp))
        return gone

    @contextmanager
    def hold(self, files: list[Any]) -> Iterator[list[Path]]:
        """Lock every file (writers take the same lock for each write and, finding the file
        gone afterwards, start a new one), so no line lands in a file being removed; the
        files still in place are given."""
        fds = []
        held = []
        try:
            for f in files:
                try:
                    fd = os.open(f, os.O_RDONLY)
                except FileNotFoundError:  # removed by a concurrent compaction
                    continue
                fds.append(fd)
                lock_file(fd)
                if is_file_at(fd, f):
                    held.append(f)
            yield held
        finally:
            for fd in fds:
                unlock_file(fd)
                os.close(fd)

    def prepare(self, con: Any) -> None:
        """Nothing to do: DuckDB reads a folder's files itself."""

    def read_error(self, exc: BaseException) -> LogStorageError | None:
        return None
