"""The proxy's lean HTTP/1.1 client to the teacher: asyncio streams and a pool of kept-alive
connections, for ``POST /chat/completions`` (the hot path; ``/models`` and background calls
use httpx).

httpx's async stack (httpcore, anyio, its models) costs ~0.8 ms of CPU per request on the
proxy's event loop; writing the request and reading the answer on asyncio streams costs a
fraction of that. The response looks like the httpx one the proxy used (``status_code``,
``headers``, ``aread()``, ``aiter_raw()``, ``aclose()``), bytes passed through as they come
(chunked transfer decoded, content encoding untouched, as httpx's ``aiter_raw``). Failures
are ``httpx`` exceptions (``ConnectError``, ``ReadTimeout``, ``RemoteProtocolError``) so the
proxy answers them as before. A connection the teacher had closed while idle is retried once.
HTTP(S)_PROXY settings are httpx's business: with one set, the proxy keeps httpx.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.request
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx

MAX_IDLE = 100
READ = 1 << 16


def usable(url: str) -> bool:
    """Whether the lean client serves ``url`` (http/https, no proxy from the environment)."""
    scheme = urlsplit(url).scheme
    return scheme in ("http", "https") and scheme not in urllib.request.getproxies()


class _Conn:
    __slots__ = ("reader", "writer", "used")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.used = False

    def close(self) -> None:
        self.writer.close()


class Upstream:
    """Kept-alive connections to one teacher base URL."""

    def __init__(self, base_url: str, connect_timeout: float = 10.0, read_timeout: float = 600.0):
        parts = urlsplit(base_url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.tls else 80)
        self.prefix = parts.path.rstrip("/")
        self.base_url = base_url.rstrip("/")
        self.host_header = parts.netloc.rsplit("@", 1)[-1]
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle: list[_Conn] = []
        self._ssl = ssl.create_default_context() if self.tls else None

    async def _open(self, url: str) -> _Conn:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self.tls else None,
                    limit=READ,
                ),
                self.connect_timeout,
            )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(str(exc), request=httpx.Request("POST", url)) from exc
        except OSError as exc:
            raise httpx.ConnectError(str(exc), request=httpx.Request("POST", url)) from exc
        return _Conn(reader, writer)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> Response:
        """Send ``POST path`` and read the answer's head; the body is read by the caller."""
        url = self.base_url + path
        head = [f"POST {self.prefix}{path} HTTP/1.1\r\nhost: {self.host_header}\r\n"]
        head.extend(f"{k}: {v}\r\n" for k, v in headers.items())
        head.append(f"content-length: {len(body)}\r\n\r\n")
        data = "".join(head).encode("latin-1") + body
        for attempt in (0, 1):
            conn = None
            while attempt == 0 and self._idle and conn is None:
                conn = self._idle.pop()
                if conn.reader.at_eof() or conn.writer.is_closing():
                    conn.close()  # the teacher hung up while it was idle
                    conn = None
            if conn is None:
                conn = await self._open(url)
            reused = conn.used
            try:
                conn.writer.write(data)
                async with asyncio.timeout(self.read_timeout):  # no task per read (wait_for)
                    status, fields = await self._head(conn)
            except TimeoutError as exc:
                conn.close()
                raise httpx.ReadTimeout(str(exc), request=httpx.Request("POST", url)) from exc
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                conn.close()
                if reused and attempt == 0:
                    continue  # the teacher closed it while it was idle: once more, fresh
                raise httpx.RemoteProtocolError(
                    f"the teacher closed the connection: {exc!r}",
                    request=httpx.Request("POST", url),
                ) from exc
            conn.used = True
            return Response(self, conn, status, fields, url)
        raise AssertionError("unreachable")

    async def _head(self, conn: _Conn) -> tuple[int, list[tuple[bytes, bytes]]]:
        raw = await conn.reader.readuntil(b"\r\n\r\n")
        lines = raw[:-4].split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        fields = []
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            fields.append((name.strip(), value.strip()))
        return status, fields

    def _release(self, conn: _Conn) -> None:
        if len(self._idle) < MAX_IDLE:
            self._idle.append(conn)
        else:
            conn.close()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class Response:
    """The teacher's answer: status and headers read, the body still on the connection."""

    def __init__(
        self,
        pool: Upstream,
        conn: _Conn,
        status: int,
        fields: list[tuple[bytes, bytes]],
        url: str,
    ):
        self._pool = pool
        self._conn: _Conn | None = conn
        self.status_code = status
        self.headers = httpx.Headers(fields)
        self._url = url
        self._chunked = b"chunked" in self.headers.get("transfer-encoding", "").encode().lower()
        length = self.headers.get("content-length")
        self._length = int(length) if length is not None and not self._chunked else None
        self._keep = self.headers.get("connection", "").lower() != "close"
        self._done = False

    def _cut(self, exc: BaseException) -> httpx.HTTPError:
        """The httpx error for a failed body read: a timeout, else a cut connection."""
        if isinstance(exc, TimeoutError):
            return httpx.ReadTimeout(str(exc), request=httpx.Request("POST", self._url))
        return httpx.RemoteProtocolError(
            f"peer closed connection without sending complete message body ({exc!r})",
            request=httpx.Request("POST", self._url),
        )

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        """The body as it arrives (transfer encoding removed)."""
        conn = self._conn
        if conn is None:
            return
        reader = conn.reader
        timeout = self._pool.read_timeout
        try:
            if self._chunked:
                while True:
                    async with asyncio.timeout(timeout):
                        size_line = await reader.readuntil(b"\r\n")
                        size = int(size_line.split(b";", 1)[0].strip(), 16)
                        if size == 0:
                            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                                pass  # trailers
                            break
                        chunk = await reader.readexactly(size + 2)
                    yield chunk[:-2]
            elif self._length is not None:
                left = self._length
                while left:
                    async with asyncio.timeout(timeout):
                        chunk = await reader.read(min(left, READ))
                    if not chunk:
                        raise asyncio.IncompleteReadError(b"", left)
                    left -= len(chunk)
                    yield chunk
            else:  # until the teacher closes
                self._keep = False
                while True:
                    async with asyncio.timeout(timeout):
                        chunk = await reader.read(READ)
                    if not chunk:
                        break
                    yield chunk
            self._done = True
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            raise self._cut(exc) from exc  # TimeoutError is an OSError: a ReadTimeout

    async def aread(self) -> bytes:
        conn = self._conn
        if self._length is None or conn is None:
            return b"".join([part async for part in self.aiter_raw()])
        try:  # a known length (the usual JSON answer): one read, one timeout
            async with asyncio.timeout(self._pool.read_timeout):
                body = await conn.reader.readexactly(self._length)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            raise self._cut(exc) from exc
        self._done = True
        return body

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self._keep:
            self._pool._release(conn)
        else:
            conn.close()
