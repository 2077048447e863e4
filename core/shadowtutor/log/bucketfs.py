"""The filesystem DuckDB reads a log bucket through (registered by ``S3Storage.prepare``).

DuckDB's own S3 support (the httpfs extension) is a separate download that is not always
possible, so DuckDB reads the bucket through the storage's pyarrow client, wrapped by
``fsspec``: every SQL text stays the same for a folder and a bucket, only the URLs differ.
Files listed a moment ago are not asked about again (a HEAD request each), and each kind of
file is opened the way DuckDB's threads can share it (see ``_open``).
"""

from __future__ import annotations

import io
import threading
from typing import Any


def filesystem(loc: Any) -> Any:
    """An fsspec filesystem over the bucket's pyarrow client, under the storage's own
    protocol name (``loc``: a :class:`~shadowtutor.log.bucket.S3Storage`)."""
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
            found: bool = loc.listed(self._strip_protocol(path)) or super().exists(path, **kwargs)
            return found

        def _open(self, path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
            if mode == "rb" and str(path).endswith(".zst"):
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
        self.size: int = raw.size()
        self._local = threading.local()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        pos: int = getattr(self._local, "pos", 0)
        return pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.tell(), 2: self.size}[whence]
        pos = max(0, base + offset)
        self._local.pos = pos
        return pos

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
