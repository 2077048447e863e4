"""The log in an S3-compatible bucket: :class:`S3Storage` (pyarrow's S3 client, a local spool
for the writers), built from the settings' strings by :func:`from_settings` / :func:`open_log`."""

from __future__ import annotations

import errno
import hashlib
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from shadowtutor.log import bucketfs
from shadowtutor.log.errors import LogStorageError
from shadowtutor.log.storage import (
    S3_SCHEME,
    STAGING_PREFIX,
    Entry,
    compress,
    decompress,
    is_compressed,
    owner_gone,
    staging_owner,
    suffixes,
)


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
        ends = suffixes(suffix)
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
