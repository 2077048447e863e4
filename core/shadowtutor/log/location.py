"""Where the shadow log lives: a local folder, or a bucket on S3-compatible object storage.

``SHADOWTUTOR_LOG_DIR`` is either a folder or ``s3://bucket/prefix``. Both have the same layout
(``jsonl/date=YYYY-MM-DD/...``, ``parquet/date=YYYY-MM-DD/...``, ``quarantine/...``) and the
store, analytics, sampling, the gate and export read them through the same few calls here:
list the files of a kind, read one file's bytes, give DuckDB a path it can open, delete, move.

A folder is used exactly as before (``Path`` objects, ``os``/``glob``, DuckDB reading the files
itself). A bucket is reached with ``pyarrow.fs.S3FileSystem`` (pyarrow is already a dependency;
its C++ client speaks AWS S3, MinIO, Ceph, R2 and SeaweedFS) configured by the standard
variables ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``
(and ``AWS_SESSION_TOKEN``). DuckDB's own S3 support (the httpfs extension) is a separate
download that is not always possible, so DuckDB reads the bucket through the same pyarrow
client, registered as a filesystem (``fsspec``'s wrapper around a pyarrow filesystem): every
SQL text stays the same for a folder and a bucket, only the paths differ.

Paths of files in a bucket are ``PurePosixPath("bucket/prefix/jsonl/date=.../x.jsonl.zst")``;
:meth:`S3Location.url` turns one into the URL DuckDB opens.

A bucket's JSONL parts are uploaded zstd-compressed (``.jsonl.zst``, about 18 times smaller
on real records): the object store then stores, and later serves, a fraction of the bytes, and
it is the store's CPU per byte, not the writer's, that limits sustained ingestion when both
share cores. Every reader takes ``.jsonl`` and ``.jsonl.zst`` alike, in a folder or a bucket
(DuckDB decompresses by the name; :meth:`read_bytes` does for Python readers).
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Union

from shadowtutor.errors import ShadowTutorError

S3_SCHEME = "s3://"
COMPRESSED = ".zst"  # a zstd-compressed part
JSONL_SUFFIXES = (".jsonl", ".jsonl" + COMPRESSED)  # the JSONL parts, plain or compressed


class LogStorageError(ShadowTutorError, RuntimeError):
    """The log's object storage cannot be used; the message names the variable to fix."""


@dataclass(frozen=True)
class Entry:
    """One file of the log: its path, size in bytes and modification time (ns)."""

    path: Any  # Path (folder) or PurePosixPath (bucket)
    size: int
    mtime_ns: int


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


class CorruptPartError(ShadowTutorError, ValueError):
    """A compressed part whose bytes do not decompress."""


def _suffixes(suffix: str | tuple[str, ...]) -> tuple[str, ...]:
    return (suffix,) if isinstance(suffix, str) else tuple(suffix)


def is_s3(value: Any) -> bool:
    return isinstance(value, S3Location) or str(value).startswith(S3_SCHEME)


def location(value: Any) -> FolderLocation | S3Location:
    """The location for a folder path, an ``s3://`` URL, or a location (returned as is)."""
    if isinstance(value, FolderLocation | S3Location):
        return value
    if is_s3(value):
        from shadowtutor.config import Settings

        return S3Location.from_settings(Settings.load(), str(value))
    return FolderLocation(Path(value))


# --- a folder ----------------------------------------------------------------------------


class FolderLocation:
    kind = "folder"

    def __init__(self, root: Path):
        self.root = Path(root)

    def __str__(self) -> str:
        return str(self.root)

    @property
    def key(self) -> str:
        return str(self.root.resolve())

    def sub(self, *parts: str) -> Path:
        return self.root.joinpath(*parts)

    def day_folders(self, kind: str) -> list[Path]:
        root = self.root / kind
        return sorted(root.glob("date=*")) if root.exists() else []

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

    def prepare(self, con: Any) -> None:
        """Make a DuckDB connection able to read this location (nothing to do for a folder)."""


LogDir = Union[Path, str, FolderLocation, "S3Location"]  # noqa: UP007  (forward reference)


# --- a bucket ----------------------------------------------------------------------------


def _env(env: Any, name: str) -> str:
    return (env.get(name) or "").strip()


class S3Location:
    """``s3://bucket/prefix``: the log in a bucket, with a local spool for the writers."""

    kind = "s3"

    def __init__(
        self,
        url: str,
        *,
        spool_dir: Path,
        part_bytes: int = 8 * 1024 * 1024,
        part_seconds: float = 30.0,
        env: Any = None,
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
        self.env = dict(os.environ if env is None else env)
        self.endpoint = _env(self.env, "AWS_ENDPOINT_URL")
        self.part_bytes = max(1, int(part_bytes))
        self.part_seconds = max(0.05, float(part_seconds))
        digest = hashlib.sha256(f"{self.endpoint}|{self.url_text}".encode()).hexdigest()
        # Each bucket's writers on this machine share one spool folder (see store.SpoolWriter).
        self.spool = Path(spool_dir).expanduser() / digest[:12]
        self.protocol = "stlog" + digest[:8]
        self._fs: Any = None
        self._fs_lock = threading.Lock()
        self._bucket_seen = False
        # The files of the last listing of each kind: DuckDB asks for every file it is given
        # whether it exists (a HEAD request each, 0.4 s for 200 Parquet parts on every page
        # view); a file just listed is answered from here (see _duckdb_filesystem).
        self._listed: dict[str, frozenset[str]] = {}

    @classmethod
    def from_settings(cls, settings: Any, url: str | None = None) -> S3Location:
        spool = (
            Path(settings.log_spool_dir).expanduser()
            if settings.log_spool_dir
            else settings.home_path / "spool"
        )
        return _cached(
            url or settings.log_dir,
            spool,
            int(settings.log_part_mb * 1024 * 1024),
            float(settings.log_part_seconds),
        )

    def __str__(self) -> str:
        return self.url_text

    def __repr__(self) -> str:
        return f"S3Location({self.url_text!r})"

    @property
    def key(self) -> str:
        return f"{self.endpoint}|{self.url_text}"

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
            raise self.explain(exc) from exc

    # --- the same calls as a folder ----------------------------------------------------
    def sub(self, *parts: str) -> PurePosixPath:
        return self.root.joinpath(*parts)

    def _list(self, base: PurePosixPath) -> list[Any]:
        from pyarrow import fs as pafs

        sel = pafs.FileSelector(str(base), recursive=True, allow_not_found=True)
        found = self._call(self.fs.get_file_info, sel)
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

    def read_bytes(self, path: Any) -> bytes:
        """An object's bytes (decompressed for a ``.zst`` part)."""

        def read() -> bytes:
            # compression=None: pyarrow would otherwise pick a codec from the name itself
            with self.fs.open_input_stream(str(path), compression=None) as fh:
                return fh.read()

        data = self._call(read)
        return decompress(data, path) if is_compressed(path) else data

    def exists(self, path: Any) -> bool:
        from pyarrow import fs as pafs

        info = self._call(self.fs.get_file_info, str(path))
        return info.type == pafs.FileType.File

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

    def prepare(self, con: Any) -> None:
        """Register the bucket's client with a DuckDB connection (once per database)."""
        try:
            if self.protocol in con.list_filesystems():
                return
        except Exception:  # older DuckDB: try registering anyway
            pass
        try:
            con.register_filesystem(_duckdb_filesystem(self))
        except Exception as exc:
            if "already" not in str(exc).lower():
                raise


_CACHE: dict[tuple[Any, ...], S3Location] = {}
_CACHE_LOCK = threading.Lock()
_AWS_VARS = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_SESSION_TOKEN",
)


def _cached(url: str, spool: Path, part_bytes: int, part_seconds: float) -> S3Location:
    """One location object (one S3 client) per URL, spool, part limits and credentials."""
    key = (url, str(spool), part_bytes, part_seconds) + tuple(os.environ.get(v) for v in _AWS_VARS)
    with _CACHE_LOCK:
        loc = _CACHE.get(key)
        if loc is None:
            loc = _CACHE[key] = S3Location(
                url, spool_dir=spool, part_bytes=part_bytes, part_seconds=part_seconds
            )
        return loc


def _duckdb_filesystem(loc: S3Location) -> Any:
    from fsspec.implementations.arrow import ArrowFSWrapper

    prefix = f"{loc.protocol}://"

    class _BucketFS(ArrowFSWrapper):
        protocol = loc.protocol
        root_marker = ""

        @classmethod
        def _strip_protocol(cls, path: Any) -> Any:
            if isinstance(path, list):
                return [cls._strip_protocol(p) for p in path]
            path = str(path)
            return path[len(prefix) :] if path.startswith(prefix) else path.lstrip("/")

        def exists(self, path: Any, **kwargs: Any) -> bool:
            return loc.listed(self._strip_protocol(path)) or super().exists(path, **kwargs)

        def _open(self, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
            if mode == "rb" and is_compressed(path):
                # DuckDB reads a compressed file as one stream, each read going on where the
                # last stopped, from whichever of its threads holds the stream (it may seek
                # on one and read on the next): one shared position, pyarrow's own file.
                # Per-thread positions here made later reads start again from the top: rows
                # came back thousands of times, or "Data corruption detected".
                return self.fs.open_input_file(path)
            if mode == "rb":
                return _PositionalFile(self.fs.open_input_file(path), path)
            return super()._open(path, mode, *args, **kwargs)

    return _BucketFS(loc.fs)


class _PositionalFile(io.RawIOBase):
    """A read-only remote file whose position is per thread (for files DuckDB reads in
    ranges: Parquet and plain JSONL; a compressed part is one stream, see ``_open``).

    DuckDB reads one file from several threads through a Python filesystem as ``seek`` then
    ``read`` on one shared handle; with a shared position two threads interleave and read each
    other's bytes (Parquet "Invalid data", wrong columns). Here every thread has its own
    position and each read is a positional ``read_at`` (thread-safe in pyarrow)."""

    def __init__(self, raw: Any, path: str):
        super().__init__()
        self._raw = raw
        self.path = path
        self.size = raw.size()
        self._local = threading.local()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return getattr(self._local, "pos", 0)

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.tell(), 2: self.size}[whence]
        self._local.pos = max(0, base + offset)
        return self._local.pos

    def read(self, size: int = -1) -> bytes:
        pos = self.tell()
        if size is None or size < 0:
            size = self.size - pos
        size = max(0, min(size, self.size - pos))
        data = self._raw.read_at(size, pos) if size else b""
        self._local.pos = pos + len(data)
        return bytes(data)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()
