"""A lean streaming HTTP client for the model backends' chat calls.

The shadow work asks the student once per shadowed request; through the ``ollama`` or
``openai`` SDK that costs several milliseconds of CPU (their httpx stack and a pydantic model
per streamed part). This client sends the request with :mod:`http.client` on a kept-alive
connection (one per thread and server) and yields the response's lines as they arrive.

Failures are raised as the httpx exceptions the SDKs raise for the same cause (a refused
connection: ``httpx.ConnectError``; a slow server: ``httpx.ReadTimeout``; a cut stream:
``httpx.RemoteProtocolError``), and an HTTP error status as :class:`StatusError` with the
status and body, so each backend's ``_error`` turns them into the same messages as before.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Generator
from urllib.parse import urlsplit

import httpx


class StatusError(Exception):
    """The server answered with an HTTP error status."""

    def __init__(self, status: int, body: bytes, headers: list[tuple[str, str]], url: str):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers
        self.url = url

    def response(self) -> httpx.Response:
        """As an httpx response (what the openai SDK builds its status errors from)."""
        return httpx.Response(
            self.status,
            headers=self.headers,
            content=self.body,
            request=httpx.Request("POST", self.url),
        )


_CUT = (http.client.IncompleteRead, http.client.RemoteDisconnected, ConnectionResetError)


class LeanClient:
    """POST JSON, read the answer line by line, reuse the connection."""

    def __init__(self, base_url: str, timeout: float, headers: dict[str, str] | None = None):
        parts = urlsplit(base_url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.headers = {"content-type": "application/json", **(headers or {})}
        self._local = threading.local()

    def _conn(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            conn = self._local.conn = cls(self.host, self.port, timeout=self.timeout)
        return conn

    def stream_lines(self, path: str, body: bytes) -> Generator[bytes, None, None]:
        """The response body's non-empty lines as they arrive (a generator: closing it early
        drops the connection)."""
        url = f"{'https' if self.https else 'http'}://{self.host}:{self.port}{self.prefix}{path}"
        resp = self._send(self.prefix + path, body, url)
        done = False
        try:
            if resp.status >= 400:
                data = self._read(resp.read, url)
                done = True
                raise StatusError(resp.status, data, resp.getheaders(), url)
            while True:
                line = self._read(resp.readline, url)
                if not line:
                    # http.client ends a cut body quietly: a chunked one has no last chunk
                    # (chunk_left stays set), a sized one has bytes left.
                    if (resp.chunked and resp.chunk_left is not None) or resp.length:
                        raise httpx.RemoteProtocolError(
                            "peer closed connection without sending complete message body",
                            request=httpx.Request("POST", url),
                        )
                    break
                line = line.strip()
                if line:
                    yield line
            done = True
        finally:
            if not done or resp.will_close:
                self._drop()

    def _send(self, path: str, body: bytes, url: str) -> http.client.HTTPResponse:
        for attempt in (0, 1):
            conn = self._conn(fresh=attempt == 1)
            reused = getattr(conn, "sock", None) is not None
            try:
                if not reused:
                    conn.connect()
                    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.request("POST", path, body=body, headers=self.headers)
                return conn.getresponse()
            except (ConnectionRefusedError, socket.gaierror) as exc:
                self._drop()
                raise httpx.ConnectError(str(exc), request=httpx.Request("POST", url)) from exc
            except TimeoutError as exc:
                self._drop()
                raise httpx.ReadTimeout(str(exc), request=httpx.Request("POST", url)) from exc
            except (*_CUT, BrokenPipeError) as exc:
                self._drop()
                if reused and attempt == 0:
                    continue  # a kept-alive connection the server had closed: once more
                raise httpx.RemoteProtocolError(
                    str(exc), request=httpx.Request("POST", url)
                ) from exc
            except OSError as exc:
                self._drop()
                raise httpx.ConnectError(str(exc), request=httpx.Request("POST", url)) from exc
        raise AssertionError("unreachable")

    def _read(self, read: object, url: str) -> bytes:
        try:
            return read()  # type: ignore[operator, no-any-return]
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc), request=httpx.Request("POST", url)) from exc
        except (*_CUT, OSError, ValueError) as exc:
            raise httpx.RemoteProtocolError(
                f"peer closed connection without sending complete message body ({exc!r})",
                request=httpx.Request("POST", url),
            ) from exc

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
