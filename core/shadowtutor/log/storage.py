"""Where the shadow log lives, behind one interface: a local folder or an S3 bucket.

Both hold the same layout (``jsonl/date=YYYY-MM-DD/...``, ``parquet/date=YYYY-MM-DD/...``,
``quarantine/...``) and the writers, readers, SQL and compaction use them only through
:class:`Storage`: list the files of a kind, read one file's bytes, give DuckDB a URL it can
open, put a finished local file in place, move, delete. Nothing outside this module asks
which kind of storage it has.

A folder is used with ``Path`` objects and ``os`` calls, and DuckDB reads its files itself. A
bucket is reached with ``pyarrow.fs.S3FileSystem`` (its C++ client speaks AWS S3, MinIO, Ceph,
R2 and SeaweedFS) configured by the ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION`` (and ``AWS_SESSION_TOKEN``) values the caller passes
in; DuckDB reads the bucket through the same client registered as a filesystem
(:mod:`shadowtutor.log.bucketfs`), so every SQL text is the same for both, only the URLs differ.

The log package never reads the environment: the caller builds the storage from the settings'
strings (:func:`from_settings`, :func:`open_log`).

Paths of files in a bucket are ``PurePosixPath("bucket/prefix/jsonl/date=.../x.jsonl.zst")``.
A bucket's JSONL parts are uploaded zstd-compressed (``.jsonl.zst``, about 18 times smaller on
real records): the object store then stores, and later serves, a fraction of the bytes. Every
reader takes ``.jsonl`` and ``.jsonl.zst`` alike, in a folder or a bucket (DuckDB decompresses
by the name; :meth:`Storage.read_bytes` does for Python readers).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol, Union

try:  # POSIX; elsewhere compaction and writers do not lock (one process at a time)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from shadowtutor.log import bucketfs
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


def _suffixes(suffix: str | tuple[str, ...]) -> tuple[str, ...]:
    return (suffix,) if isinstance(suffix, str) else tuple(suffix)


def is_s3(value: Any) -> bool:
    return isinstance(value, S3Storage) or str(value).startswith(S3_SCHEME)


LogDir = Union[Path, str, "Storage"]  # noqa: UP007  (forward reference)


def resolve(value: LogDir) -> Storage:
    """The storage for a folder path, or a storage (returned as is). A bucket is built from
    the settings (:func:`from_settings`): its URL alone does not say how to reach it."""
    if not isinstance(value, Path | str):
        return value
    if is_s3(value):
        raise LogStorageError(
            f"the log bucket {value} needs its settings: pass settings.log_path "
            "(or storage.from_settings(settings, env)) instead of the URL"
        )
    return FolderStorage(Path(value))


# --- a folder ----------------------------------------------------------------------------


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
        ends = _suffixes(suffix)
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


# --- a bucket ----------------------------------------------------------------------------


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


def _missing_object(exc: BaseException) -> bool:
    """Whether a storage error says the object is not there (removed meanwhile, say)."""
    up = str(exc).upper().replace("_", "")
    return "NOSUCHKEY" in up or "PATH DOES NOT EXIST" in up


def _env(env: Any, name: str) -> str:
    return (env.get(name) or "").strip()


class S3Storage:
    """``s3://bucket/prefix``: the log in a bucket, with a local spool for the writers."""

    kind = "s3"
    appends = False

    def __init__(
        self,
        url: str,
        *,
        spool_dir: Path,
        part_bytes: int = 8 * 1024 * 1024,
        part_seconds: float = 30.0,
        env: Mapping[str, str] | None = None,
    ):
        if not url.startswith(S3_SCHEME):
            raise LogStorageError(f"SHADOWTUTOR_LOG_DIR={url!r} is not an s3://bucket/prefix URL")
        bucket, _, prefix = url[len(S3_SCHEME) :].partition("/")
        if not bucket:
            raise LogStorageError(
                f"SHADOWTUTOR_LOG_DIR={url!r} names no bucket; use s3://bucket/prefix"
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url_text = f"{S3_SCHEME}{bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.env = dict(env or {})
        self.endpoint = _env(self.env, "AWS_ENDPOINT_URL")
        self.part_bytes = max(1, int(part_bytes))
        self.part_seconds = max(0.05, float(part_seconds))
        digest = hashlib.sha256(f"{self.endpoint}|{self.url_text}".encode()).hexdigest()
        # Each bucket's writers on this machine share one spool folder (see write.SpoolWriter).
        self.spool = Path(spool_dir).expanduser() / digest[:12]
        self.protocol = "stlog" + digest[:8]
        self._fs: Any = None
        self._fs_lock = threading.Lock()
        self._bucket_seen = False
        # The files of the last listing of each kind: DuckDB asks for every file it is given
        # whether it exists (a HEAD request each, 0.4 s for 200 Parquet parts on every page
        # view); a file just listed is answered from here (see bucketfs).
        self._listed: dict[str, frozenset[str]] = {}

    def __str__(self) -> str:
        return self.url_text

    def __repr__(self) -> str:
        return f"S3Storage({self.url_text!r})"

    @property
    def key(self) -> str:
        return f"{self.endpoint}|{self.url_text}"

    @property
    def instance_key(self) -> str:
        return f"{self.key}|{id(self)}"  # a change of credentials gives a new object

    @property
    def root(self) -> PurePosixPath:
        return PurePosixPath(self.bucket, *([self.prefix] if self.prefix else []))

    # --- the client --------------------------------------------------------------------
    @property
    def fs(self) -> Any:
        with self._fs_lock:
            if self._fs is None:
                self._fs = self._make_fs()
            return self._fs

    def _make_fs(self) -> Any:
        from pyarrow import fs as pafs

        kwargs: dict[str, Any] = {
            "region": _env(self.env, "AWS_REGION")
            or _env(self.env, "AWS_DEFAULT_REGION")
            or "us-east-1",
            "connect_timeout": 5,
            "request_timeout": 30,
            "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3),
        }
        if self.endpoint:
            if "://" not in self.endpoint:
                raise LogStorageError(
                    f"AWS_ENDPOINT_URL={self.endpoint!r} needs a scheme, e.g. "
                    "http://127.0.0.1:8333 or https://s3.example.com"
                )
            scheme, _, host = self.endpoint.partition("://")
            kwargs["endpoint_override"] = host.rstrip("/")
            kwargs["scheme"] = scheme
        key, secret = _env(self.env, "AWS_ACCESS_KEY_ID"), _env(self.env, "AWS_SECRET_ACCESS_KEY")
        if bool(key) != bool(secret):
            missing = "AWS_SECRET_ACCESS_KEY" if key else "AWS_ACCESS_KEY_ID"
            raise LogStorageError(
                f"{missing} is not set but the other half of the key is; set both "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for the log bucket"
            )
        if key:
            kwargs["access_key"] = key
            kwargs["secret_key"] = secret
            if _env(self.env, "AWS_SESSION_TOKEN"):
                kwargs["session_token"] = _env(self.env, "AWS_SESSION_TOKEN")
        return pafs.S3FileSystem(**kwargs)

    def explain(self, exc: BaseException) -> LogStorageError:
        """A storage error turned into a message that names what to fix."""
        text = str(exc)
        up = text.upper()
        where = f"the log bucket {self.url_text}" + (
            f" at {self.endpoint}" if self.endpoint else ""
        )
        if "SIGNATURE" in up or "SIGNATUREDOESNOTMATCH" in up.replace("_", ""):
            hint = "the secret key was refused: check AWS_SECRET_ACCESS_KEY"
        elif "INVALIDACCESSKEYID" in up.replace("_", "") or "INVALID_ACCESS_KEY" in up:
            hint = "the access key is unknown: check AWS_ACCESS_KEY_ID"
        elif "ACCESS_DENIED" in up or "ACCESSDENIED" in up or "FORBIDDEN" in up:
            hint = (
                "access was denied: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(and the key's permissions on the bucket)"
            )
        elif "NETWORK_CONNECTION" in up or "COULD NOT CONNECT" in up or "TIMED OUT" in up:
            hint = "the server did not answer: check AWS_ENDPOINT_URL (and that it is running)"
        elif "NO_SUCH_BUCKET" in up or "NOSUCHBUCKET" in up or "BUCKET" in up and "NOT" in up:
            hint = (
                f"the bucket {self.bucket!r} does not exist: create it or fix SHADOWTUTOR_LOG_DIR"
            )
        else:
            hint = "check AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION"
        err = LogStorageError(f"could not use {where}: {hint} ({text.splitlines()[0][:300]})")
        err.__cause__ = exc
        return err

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except LogStorageError:
            raise
        except (OSError, ValueError) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            if _missing_object(exc):  # a missing object is not a credentials problem
                raise FileNotFoundError(errno.ENOENT, str(exc).splitlines()[0][:300]) from exc
            raise self.explain(exc) from exc

    # --- the same calls as a folder ----------------------------------------------------
    def sub(self, *parts: str) -> PurePosixPath:
        return self.root.joinpath(*parts)

    def _list(self, base: PurePosixPath) -> list[Any]:
        from pyarrow import fs as pafs

        sel = pafs.FileSelector(str(base), recursive=True, allow_not_found=True)
        found: list[Any] = self._call(self.fs.get_file_info, sel)
        if not found and not self._bucket_seen:  # an empty listing: is the bucket there?
            info = self._call(self.fs.get_file_info, self.bucket)
            if info.type == pafs.FileType.NotFound:
                raise LogStorageError(
                    f"the bucket {self.bucket!r} does not exist at "
                    f"{self.endpoint or 'AWS S3'}: create it, or fix SHADOWTUTOR_LOG_DIR "
                    f"(now {self.url_text}) or AWS_ENDPOINT_URL"
                )
            self._bucket_seen = True
        elif found:
            self._bucket_seen = True
        return found

    def entries(self, kind: str, suffix: str | tuple[str, ...]) -> list[Entry]:
        from pyarrow import fs as pafs

        out = []
        ends = _suffixes(suffix)
        for info in self._list(self.sub(kind)):
            if info.type != pafs.FileType.File or not info.path.endswith(ends):
                continue
            path = PurePosixPath(info.path)
            if not path.parent.name.startswith("date="):
                continue
            mtime = info.mtime_ns or 0
            out.append(Entry(path, int(info.size or 0), int(mtime)))
        out.sort(key=lambda e: str(e.path))
        self._listed[f"{kind}|{ends}"] = frozenset(str(e.path) for e in out)
        return out

    def listed(self, path: str) -> bool:
        """Whether ``path`` was in the last listing of its kind (a file a reader was just
        given; one removed since fails when it is read, as it would have anyway)."""
        return any(path in files for files in list(self._listed.values()))

    def files(self, kind: str, suffix: str | tuple[str, ...]) -> list[PurePosixPath]:
        return [e.path for e in self.entries(kind, suffix)]

    def url(self, path: Any) -> str:
        return f"{self.protocol}://{path}"

    def display(self, path: Any) -> str:
        return f"{S3_SCHEME}{path}"

    def read_bytes(self, path: Any) -> bytes:
        """An object's bytes (decompressed for a ``.zst`` part)."""

        def read() -> bytes:
            # compression=None: pyarrow would otherwise pick a codec from the name itself
            with self.fs.open_input_stream(str(path), compression=None) as fh:
                data: bytes = fh.read()
                return data

        data = self._call(read)
        return decompress(data, path) if is_compressed(path) else data

    def exists(self, path: Any) -> bool:
        from pyarrow import fs as pafs

        info = self._call(self.fs.get_file_info, str(path))
        is_file: bool = info.type == pafs.FileType.File
        return is_file

    def size_of(self, path: Any) -> int | None:
        from pyarrow import fs as pafs

        info = self._call(self.fs.get_file_info, str(path))
        return int(info.size) if info.type == pafs.FileType.File else None

    def delete(self, path: Any) -> None:
        self._call(self.fs.delete_file, str(path))

    def move(self, src: Any, dst: Any) -> None:
        self._call(self.fs.copy_file, str(src), str(dst))
        self._call(self.fs.delete_file, str(src))

    def upload(self, local: Path, dst: Any, *, compressed: bool = False) -> int:
        """Put a local file at ``dst`` (one PUT: the object appears whole or not at all),
        zstd-compressed first when ``compressed``, and return the size the bucket reports."""
        data = Path(local).read_bytes()
        if compressed:
            data = compress(data)

        def put() -> None:
            with self.fs.open_output_stream(str(dst), compression=None) as out:
                out.write(data)

        self._call(put)
        size = self.size_of(dst)
        if size != len(data):
            raise LogStorageError(
                f"the bucket reports {size} bytes for {dst} after uploading {len(data)}; "
                "the local file is kept"
            )
        return size

    def put_file(self, local: Path, dst: Any) -> None:
        self.upload(local, dst)
        Path(local).unlink()

    @contextmanager
    def staging(self, dst: Any) -> Iterator[Path]:
        prefix = f"{STAGING_PREFIX}{staging_owner()}."
        with tempfile.TemporaryDirectory(prefix=prefix) as tmpdir:
            # the same day folder as in the bucket: DuckDB adds its ``date`` column alike
            folder = Path(tmpdir) / PurePosixPath(dst).parent.name
            folder.mkdir()
            yield folder / PurePosixPath(dst).name

    def sweep_staging(self) -> list[str]:
        """Remove the local staging folders a killed compaction left (objects are put whole
        in one PUT, so the bucket holds none); their names."""
        gone = []
        for folder in sorted(Path(tempfile.gettempdir()).glob(f"{STAGING_PREFIX}*.*")):
            owner = folder.name[len(STAGING_PREFIX) :].rpartition(".")[0]
            if folder.is_dir() and owner_gone(owner):
                shutil.rmtree(folder, ignore_errors=True)
                gone.append(str(folder))
        return gone

    @contextmanager
    def hold(self, files: list[Any]) -> Iterator[list[Any]]:
        """Every file: objects are never appended to, so none can change under a reader."""
        yield list(files)

    def read_error(self, exc: BaseException) -> LogStorageError | None:
        return self.explain(exc) if "AWS Error" in str(exc) else None

    def prepare(self, con: Any) -> None:
        """Register the bucket's client with a DuckDB connection (once per database)."""
        try:
            if self.protocol in con.list_filesystems():
                return
        except Exception:  # older DuckDB: try registering anyway
            pass
        try:
            con.register_filesystem(bucketfs.filesystem(self))
        except Exception as exc:
            if "already" not in str(exc).lower():
                raise


_CACHE: dict[tuple[Any, ...], S3Storage] = {}
_CACHE_LOCK = threading.Lock()
_AWS_VARS = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_SESSION_TOKEN",
)


def open_log(
    url: str,
    *,
    spool_dir: Path,
    part_mb: float,
    part_seconds: float,
    env: Mapping[str, str],
) -> S3Storage:
    """One storage object (one S3 client) per URL, spool, part limits and credentials
    (``env``: the ``AWS_*`` values, usually the process environment, read by the caller)."""
    part_bytes = int(part_mb * 1024 * 1024)
    aws = {v: env[v] for v in _AWS_VARS if env.get(v) is not None}
    key = (url, str(spool_dir), part_bytes, float(part_seconds)) + tuple(
        aws.get(v) for v in _AWS_VARS
    )
    with _CACHE_LOCK:
        found = _CACHE.get(key)
        if found is None:
            found = _CACHE[key] = S3Storage(
                url,
                spool_dir=spool_dir,
                part_bytes=part_bytes,
                part_seconds=float(part_seconds),
                env=aws,
            )
        return found


def from_settings(settings: Any, env: Mapping[str, str]) -> S3Storage:
    """The bucket named by ``settings.log_dir`` (an ``s3://`` URL), with the settings' spool
    folder and part limits; ``env`` gives the ``AWS_*`` credentials and endpoint."""
    spool = (
        Path(settings.log_spool_dir).expanduser()
        if settings.log_spool_dir
        else settings.home_path / "spool"
    )
    return open_log(
        settings.log_dir,
        spool_dir=spool,
        part_mb=float(settings.log_part_mb),
        part_seconds=float(settings.log_part_seconds),
        env=env,
    )
