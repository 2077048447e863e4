"""Servers on 127.0.0.1 that are not model servers, and the free port they all listen on.

:class:`AsgiServer` runs any ASGI app (the ShadowTutor proxy) with uvicorn in a background
thread; :class:`SilentListener` accepts TCP connections and never answers (a hung database).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class AsgiServer:
    """Run an ASGI app (e.g. the proxy) with uvicorn on a free 127.0.0.1 port, in a thread.

    ::

        with AsgiServer(proxy.create_app(settings)) as srv:
            httpx.get(f"{srv.url}/healthz")

    Leaving the block runs the app's shutdown (lifespan) and waits for the thread.
    """

    def __init__(self, app: Any, *, startup_timeout: float = 10.0):
        import uvicorn

        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            server_header=False,  # as `shadowtutor proxy` runs: the app's own, each once
            date_header=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the ASGI app did not start on port {self.port}")
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)

    def __enter__(self) -> AsgiServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SilentListener:
    """A TCP listener on 127.0.0.1 that accepts connections and never answers (a hung
    database server, say): point ``DATABASE_URL`` at ``postgresql://u@127.0.0.1:<port>/db``.
    ``accepted`` counts the connections; ``close()`` drops them all."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.port = self._sock.getsockname()[1]
        self.accepted = 0
        self._held: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.accepted += 1
            self._held.append(conn)  # kept open, never read from or written to

    def close(self) -> None:
        self._closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._sock.close()
        for conn in self._held:
            conn.close()

    def __enter__(self) -> SilentListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
