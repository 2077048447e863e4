"""The core of the loopback model servers (:mod:`shadowtutor.testing.modelserver`): an HTTP
server on 127.0.0.1 in a background thread, its fault switches, what it counts and keeps, and
the plumbing of one exchange that the protocol modules (:mod:`shadowtutor.testing.openai_protocol`,
:mod:`shadowtutor.testing.ollama_protocol`) answer through.

Fault switches (attributes, change them at any time, or pass them to the constructor):

==================  ===================================================================
``delay``           seconds to sleep before answering (a slow server)
``status``          answer every model call with this HTTP status (e.g. 500) and an error body
``malformed``       answer model calls with 200 and a body that is not valid JSON
``cut_after``       streaming: close the connection after this many chunks (no end marker);
                    non-streaming: send half the body, then close
``stop_after``      OpenAI streaming: end the stream cleanly after this many chunks, with
                    no finish reason and no ``[DONE]`` (an upstream that gave up)
``usage``           False: leave the ``usage`` block / Ollama token counts out
``chunk_delay``     streaming: seconds to sleep before each chunk (tokens arriving slowly)
``refuse``          a set of features (``tools``, ``schema``) answered with a 400, as a server
                    without them answers (llama.cpp without ``--jinja``, an Ollama model
                    without tool support)
``strict_ollama``   ``/api/chat`` refuses OpenAI-shaped messages (list content, string
                    tool-call arguments) with Ollama's 400
==================  ===================================================================

``down()`` closes the listening socket (clients get "connection refused", as when the server
is not running); ``up()`` listens again on the same port. Every request is counted
(``count(path)``) and kept in ``requests`` (path and parsed JSON body, headers in ``headers``)
so tests can check what the client sent; ``restore()`` gives a server shared between tests
back as it was built.
"""

from __future__ import annotations

import hashlib
import json
import math
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self

from shadowtutor.testing import structured
from shadowtutor.testing.listeners import free_port

Answer = str | Callable[[list[dict[str, Any]], str], str]
# The calls the fault switches hit: a model's work, in either protocol (listing models or the
# version stays up, as on a real server whose model is failing).
MODEL_CALLS = (
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/messages",
    "/v1/responses",
    "/api/chat",
    "/api/embed",
)
Route = Callable[["Exchange", Any], None]


def echo_answer(messages: list[dict[str, Any]], model: str) -> str:
    """The default answer: the last user message, prefixed with ``echo:``."""
    for msg in reversed(messages):
        if msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, list):
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return f"echo: {content}"
    return "echo:"


def embed_text(text: str, dims: int = 64) -> list[float]:
    """A deterministic bag-of-words vector: texts sharing words get a high cosine."""
    vec = [0.0] * dims
    for word in text.lower().split():
        digest = hashlib.md5(word.encode()).digest()
        vec[digest[0] % dims] += 1.0 if digest[1] % 2 else 0.5
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    return [v / norm for v in vec]


def words(text: str) -> list[str]:
    """Split an answer into streaming pieces (words with their following space)."""
    parts = text.split(" ")
    return [p + (" " if i < len(parts) - 1 else "") for i, p in enumerate(parts)]


class LoopbackServer:
    """An HTTP server on 127.0.0.1 that answers the ``routes`` of its subclass (see the module
    docstring)."""

    # (method, path) -> the function that answers it; a subclass names a protocol's routes
    routes: ClassVar[dict[tuple[str, str], Route]] = {}

    def __init__(
        self,
        *,
        models: list[str] | None = None,
        answer: Answer = echo_answer,
        delay: float = 0.0,
        status: int | None = None,
        malformed: bool = False,
        cut_after: int | None = None,
        usage: bool = True,
        chunk_delay: float = 0.0,
        version: str = "0.6.3",
        context_length: int = 8192,
    ):
        # what restore() goes back to: a server shared by many tests starts each one as built
        self._initial: dict[str, Any] = {
            "models": list(models or ["llama3", "gpt-4o-mini", "nomic-embed-text"]),
            "answer": answer,
            "delay": delay,
            "status": status,
            "malformed": malformed,
            "cut_after": cut_after,
            "stop_after": None,
            "usage": usage,
            "chunk_delay": chunk_delay,
            "version": version,
            "context_length": context_length,
            "tool_answer": structured.default_tool_calls,
            "refuse": set(),
            "strict_ollama": False,
            "cache_usage": None,
        }
        self.models = list(models or ["llama3", "gpt-4o-mini", "nomic-embed-text"])
        self.answer = answer
        self.delay = delay
        self.status = status
        self.malformed = malformed
        self.cut_after = cut_after
        self.stop_after: int | None = None
        self.usage = usage
        self.chunk_delay = chunk_delay
        self.version = version
        self.context_length = context_length
        self.tool_answer: structured.ToolAnswer = structured.default_tool_calls
        self.refuse: set[str] = set()
        self.strict_ollama = False
        self.cache_usage: tuple[int, int] | None = None  # Anthropic: (cache written, read)
        self.requests: list[tuple[str, Any]] = []
        self.headers: list[dict[str, str]] = []  # request headers, in the order received
        self._counts: Counter[str] = Counter()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.port = free_port()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.up()

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base address, as given to ``ollama.Client(host=...)``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_url(self) -> str:
        """Base URL with ``/v1``, as given to ``openai.OpenAI(base_url=...)``."""
        return f"{self.url}/v1"

    def up(self) -> None:
        """Listen (again) on this server's port."""
        if self._httpd is not None:
            return
        handler = type("Handler", (Exchange,), {"server_ref": self})
        httpd = _QuietServer(("127.0.0.1", self.port), handler)
        httpd.daemon_threads = True
        self._httpd = httpd
        # A short poll interval: down() waits up to one interval for the serving loop to stop,
        # and tests start and stop these servers hundreds of times.
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def down(self) -> None:
        """Stop listening: clients now get "connection refused"."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        with self._lock:  # also end kept-alive connections, as a stopped server would
            conns, self._conns = self._conns, set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    close = down

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    # --- bookkeeping ---------------------------------------------------------------------------
    def count(self, path: str | None = None) -> int:
        """Requests received on ``path`` (all paths when None)."""
        with self._lock:
            return sum(self._counts.values()) if path is None else self._counts[path]

    def reset(self) -> None:
        """Clear counters, kept requests and every fault switch."""
        with self._lock:
            self._counts.clear()
            self.requests.clear()
            self.headers.clear()
        self.delay, self.status, self.malformed, self.cut_after, self.usage = (
            0,
            None,
            False,
            None,
            True,
        )
        self.chunk_delay = 0.0
        self.stop_after = None
        self.refuse = set()
        self.strict_ollama = False
        self.cache_usage = None

    def restore(self) -> None:
        """Back to the server as constructed: listening, with its constructor's answer, models
        and switches, and no counted or kept requests (a server shared between tests)."""
        self.reset()
        for name, value in self._initial.items():
            setattr(self, name, type(value)(value) if name in ("models", "refuse") else value)
        self.up()

    def _note(self, path: str, body: Any, headers: dict[str, str]) -> None:
        with self._lock:
            self._counts[path] += 1
            self.requests.append((path, body))
            self.headers.append(headers)

    def text_for(self, messages: list[dict[str, Any]], model: str) -> str:
        return self.answer(messages, model) if callable(self.answer) else self.answer

    def reply_for(self, body: dict[str, Any], json_format: Any) -> tuple[str, list[dict[str, Any]]]:
        """(text, tool calls) for a chat request: tool calls when it has tools, JSON text when
        it asks for JSON (``json_format``), else the configured answer."""
        messages = body.get("messages") or []
        model = body.get("model", "")
        if body.get("tools"):
            calls = self.tool_answer(body["tools"], messages)
            if calls:
                return "", calls
        schema = structured.schema_of(json_format)
        if schema is not None and not schema.get("properties"):  # plain JSON mode
            found = structured.json_object_in(self.text_for(messages, model))
            if found is not None:  # the configured answer holds one: a model in JSON mode
                return found, []  # would have written only that object
        if schema is not None:
            return structured.json_text(schema, messages), []
        return self.text_for(messages, model), []


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        # A client that gave up (timeout, cut stream) is part of the tests, not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class Exchange(BaseHTTPRequestHandler):
    """One HTTP exchange of a :class:`LoopbackServer`: the request's JSON body, plain, cut and
    chunked answers, the fault switches, and the route that answers it."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, the client's
    # delayed ACK would stall every answer by ~40 ms.
    disable_nagle_algorithm = True
    server_ref: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.server_ref._lock:
            self.server_ref._conns.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server_ref._lock:
                self.server_ref._conns.discard(self.connection)

    # --- plumbing ---------------------------------------------------------------------------
    def read_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            return None

    def send(self, status: int, payload: Any, ctype: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_cut(self, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def start_chunked(self, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def chunk(self, data: bytes) -> None:
        if self.server_ref.chunk_delay:
            time.sleep(self.server_ref.chunk_delay)
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def cut(self) -> None:
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def fault(self, path: str, ollama: bool) -> bool:
        """Apply delay/status/malformed switches; True when the answer was already sent."""
        srv = self.server_ref
        if srv.delay:
            time.sleep(srv.delay)
        if srv.status:
            if path == "/v1/messages":  # Anthropic's error object
                kind = {529: "overloaded_error", 429: "rate_limit_error"}.get(srv.status)
                err = {"type": kind or "api_error", "message": f"loopback fault: HTTP {srv.status}"}
                self.send(srv.status, {"type": "error", "error": err})
            elif ollama:
                self.send(srv.status, {"error": f"loopback fault: HTTP {srv.status}"})
            else:
                err = {"message": f"loopback fault: HTTP {srv.status}", "type": "server_error"}
                self.send(srv.status, {"error": err})
            return True
        if srv.malformed:
            self.send(200, b'{"this is": not json', "application/json")
            return True
        return False

    # --- routing ---------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        body = self.read_json() if method == "POST" else None
        self.server_ref._note(path, body, dict(self.headers.items()))
        routes = self.server_ref.routes
        route = routes.get((method, path)) or routes.get((method, path.rsplit("/", 1)[0] + "/{id}"))
        if route is None:
            self.send(404, {"error": f"no route {method} {path}"})
            return
        if body is None and method == "POST":
            self.send(400, {"error": "request body is not valid JSON"})
            return
        if path in MODEL_CALLS and self.fault(path, path.startswith("/api/")):
            return
        route(self, body)
