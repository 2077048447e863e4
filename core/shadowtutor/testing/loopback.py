"""Real HTTP model servers on 127.0.0.1 for tests and benchmarks.

One :class:`ModelServer` speaks both protocols a ShadowTutor installation meets:

* **OpenAI** (teacher, or an OpenAI-compatible student such as vLLM / llama.cpp):
  ``POST /v1/chat/completions`` (plain JSON, or server-sent events with ``stream: true``; the
  ``usage`` block is sent in the answer, and as a last chunk when
  ``stream_options.include_usage`` is true), ``GET /v1/models``, ``POST /v1/embeddings``.
* **Ollama** (student): ``POST /api/chat`` (NDJSON stream by default, one JSON object with
  ``"stream": false``), ``GET /api/tags``, ``GET /api/ps``, ``POST /api/show``,
  ``GET /api/version``, ``POST /api/embed``.

It listens on a free port in a background thread and is driven by the real ``openai`` and
``ollama`` clients::

    with ModelServer(models=["gpt-4o-mini"], answer="Hello there") as teacher:
        client = openai.OpenAI(base_url=teacher.openai_url, api_key="k")
        ...
        assert teacher.count("/v1/chat/completions") == 1

Answers: ``answer`` is a fixed string, or a callable ``(messages, model) -> str``; the default
echoes the last user message (``"echo: <text>"``), so a test can tell prompts apart.

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

Tools and JSON (:mod:`shadowtutor.testing.structured`): a request with ``tools`` is answered
with a tool call (``tool_answer``, a callable ``(tools, messages) -> [{name, arguments}]``;
by default a call to the first tool), streamed as tool-call deltas; a request with a JSON
``response_format`` (OpenAI) or ``format`` (Ollama) gets JSON text filled from its schema.

``down()`` closes the listening socket (clients get "connection refused", as when the server
is not running); ``up()`` listens again on the same port. A model not in ``models`` gets the
protocol's "not found" answer: Ollama 404 ``model "x" not found, try pulling it first``, OpenAI
404 ``model_not_found``. Every request is counted (``count(path)``) and kept in ``requests``
(path and parsed JSON body, headers in ``headers``) so tests can check what the client sent.

:class:`AsgiServer` runs any ASGI app (the ShadowTutor proxy) with uvicorn the same way;
:class:`SilentListener` accepts TCP connections and never answers (a hung database).
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
from typing import Any

from shadowtutor.testing import structured

Answer = str | Callable[[list[dict[str, Any]], str], str]
MODEL_CALLS = ("/v1/chat/completions", "/v1/embeddings", "/api/chat", "/api/embed")


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


class ModelServer:
    """An OpenAI + Ollama speaking HTTP server on 127.0.0.1 (see the module docstring)."""

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
        self.requests: list[tuple[str, Any]] = []
        self.headers: list[dict[str, str]] = []  # request headers, in the order received
        self._counts: Counter[str] = Counter()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.port = _free_port()
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
        handler = type("Handler", (_Handler,), {"server_ref": self})
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

    def __enter__(self) -> ModelServer:
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
        if schema is not None:
            return structured.json_text(schema, messages), []
        return self.text_for(messages, model), []


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        # A client that gave up (timeout, cut stream) is part of the tests, not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm on, the client's
    # delayed ACK would stall every answer by ~40 ms.
    disable_nagle_algorithm = True
    server_ref: ModelServer

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
    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            return None

    def _send(self, status: int, payload: Any, ctype: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_cut(self, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _start_chunked(self, ctype: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        if self.server_ref.chunk_delay:
            time.sleep(self.server_ref.chunk_delay)
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _cut(self) -> None:
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)

    def _fault(self, path: str, ollama: bool) -> bool:
        """Apply delay/status/malformed switches; True when the answer was already sent."""
        srv = self.server_ref
        if srv.delay:
            time.sleep(srv.delay)
        if srv.status:
            if ollama:
                self._send(srv.status, {"error": f"loopback fault: HTTP {srv.status}"})
            else:
                err = {"message": f"loopback fault: HTTP {srv.status}", "type": "server_error"}
                self._send(srv.status, {"error": err})
            return True
        if srv.malformed:
            self._send(200, b'{"this is": not json', "application/json")
            return True
        return False

    # --- routing ---------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        path = self.path.split("?", 1)[0]
        body = self._body() if method == "POST" else None
        self.server_ref._note(path, body, dict(self.headers.items()))
        routes: dict[tuple[str, str], Callable[[Any], None]] = {
            ("POST", "/v1/chat/completions"): self.openai_chat,
            ("GET", "/v1/models"): self.openai_models,
            ("POST", "/v1/embeddings"): self.openai_embeddings,
            ("POST", "/api/chat"): self.ollama_chat,
            ("GET", "/api/tags"): self.ollama_tags,
            ("GET", "/api/ps"): self.ollama_ps,
            ("POST", "/api/show"): self.ollama_show,
            ("GET", "/api/version"): self.ollama_version,
            ("POST", "/api/embed"): self.ollama_embed,
        }
        handler = routes.get((method, path))
        if handler is None:
            self._send(404, {"error": f"no route {method} {path}"})
            return
        if body is None and method == "POST":
            self._send(400, {"error": "request body is not valid JSON"})
            return
        if path in MODEL_CALLS and self._fault(path, path.startswith("/api/")):
            return
        handler(body)

    # --- OpenAI ----------------------------------------------------------------------------
    def _openai_missing(self, model: str) -> bool:
        if model in self.server_ref.models:
            return False
        self._send(
            404,
            {
                "error": {
                    "message": f"The model `{model}` does not exist or you do not have access.",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "model_not_found",
                }
            },
        )
        return True

    def _openai_invalid_messages(self, messages: Any) -> bool:
        """OpenAI's 400 for ``messages`` that is not an array of objects (its wording)."""
        names = {str: "a string", dict: "an object", int: "an integer", float: "a number"}
        names |= {bool: "a boolean", type(None): "null", list: "an array"}
        where, bad = "messages", None
        if not isinstance(messages, list):
            bad = messages
        else:
            for i, m in enumerate(messages):
                if not isinstance(m, dict):
                    where, bad = f"messages[{i}]", m
                    break
        if where == "messages" and isinstance(messages, list):
            return False
        got = names.get(type(bad), "a value")
        want = "an array" if where == "messages" else "an object"
        self._send(
            400,
            {
                "error": {
                    "message": f"Invalid type for '{where}': expected {want}, but got {got} "
                    "instead.",
                    "type": "invalid_request_error",
                    "param": where,
                    "code": "invalid_type",
                }
            },
        )
        return True

    def openai_chat(self, body: dict[str, Any]) -> None:
        srv = self.server_ref
        model = body.get("model", "")
        if self._openai_missing(model):
            return
        if self._openai_invalid_messages(body.get("messages", [])):
            return
        refused = structured.refusal(body, srv.refuse, model, ollama=False)
        if refused:
            err = {"message": refused, "type": "invalid_request_error", "code": None}
            self._send(400, {"error": err})
            return
        messages = body.get("messages") or []
        text, calls = srv.reply_for(body, body.get("response_format"))
        finish = "tool_calls" if calls else "stop"
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages) + 3
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(text.split()),
            "total_tokens": prompt_tokens + len(text.split()),
        }
        base = {"id": f"chatcmpl-{srv.count()}", "created": int(time.time()), "model": model}
        if not body.get("stream"):
            payload = {
                **base,
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text or None}
                        | ({"tool_calls": structured.openai_tool_calls(calls)} if calls else {}),
                        "finish_reason": finish,
                    }
                ],
            }
            if srv.usage:
                payload["usage"] = usage
            if srv.cut_after is not None:
                self._send_cut(payload)
            else:
                self._send(200, payload)
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self._start_chunked("text/event-stream")
        pieces: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        pieces += [{"content": w} for w in words(text)]
        if calls:
            pieces = [{"role": "assistant", "content": None}, *structured.openai_tool_deltas(calls)]
        for i, delta in enumerate(pieces):
            if srv.cut_after is not None and i >= srv.cut_after:
                self._cut()
                return
            if srv.stop_after is not None and i >= srv.stop_after:
                self._end_chunked()
                return
            chunk = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
            }
            self._chunk(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        final = {
            **base,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
        }
        self._chunk(b"data: " + json.dumps(final).encode() + b"\n\n")
        if include_usage and srv.usage:
            tail = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            self._chunk(b"data: " + json.dumps(tail).encode() + b"\n\n")
        self._chunk(b"data: [DONE]\n\n")
        self._end_chunked()

    def openai_models(self, _body: Any) -> None:
        data = [
            {"id": m, "object": "model", "created": 0, "owned_by": "loopback"}
            for m in self.server_ref.models
        ]
        self._send(200, {"object": "list", "data": data})

    def openai_embeddings(self, body: dict[str, Any]) -> None:
        model = body.get("model", "")
        if self._openai_missing(model):
            return
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = [
            {"object": "embedding", "index": i, "embedding": embed_text(t)}
            for i, t in enumerate(inputs)
        ]
        tokens = sum(len(t.split()) for t in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        self._send(200, {"object": "list", "data": data, "model": model, "usage": usage})

    # --- Ollama ----------------------------------------------------------------------------
    def _ollama_missing(self, model: str) -> bool:
        known = self.server_ref.models
        if model in known or f"{model}:latest" in known or model.removesuffix(":latest") in known:
            return False
        self._send(404, {"error": f'model "{model}" not found, try pulling it first'})
        return True

    def ollama_chat(self, body: dict[str, Any]) -> None:
        srv = self.server_ref
        model = body.get("model", "")
        if self._ollama_missing(model):
            return
        messages = body.get("messages") or []
        refused = structured.refusal(body, srv.refuse, model, ollama=True)
        if srv.strict_ollama:
            refused = refused or structured.ollama_rejection(messages)
        if refused:
            self._send(400, {"error": refused})
            return
        text, calls = srv.reply_for(body, body.get("format"))
        tool_calls = [{"function": c} for c in calls]
        options = body.get("options") or {}
        if options.get("num_predict"):
            text = " ".join(text.split(" ")[: int(options["num_predict"])])
        counts = {}
        if srv.usage:
            prompt = sum(len(str(m.get("content", "")).split()) for m in messages) + 3
            counts = {"prompt_eval_count": prompt, "eval_count": len(text.split())}
        base = {"model": model, "created_at": "2026-11-01T00:00:00Z"}
        final = {
            **base,
            "message": {"role": "assistant", "content": ""},
            "done": True,
            "done_reason": "stop",
            "total_duration": 1000,
            **counts,
        }
        if body.get("stream") is False:
            message: dict[str, Any] = {"role": "assistant", "content": text}
            payload = {**final, "message": message | ({"tool_calls": tool_calls} if calls else {})}
            if srv.cut_after is not None:
                self._send_cut(payload)
            else:
                self._send(200, payload)
            return
        self._start_chunked("application/x-ndjson")
        for i, piece in enumerate(words(text)):
            if srv.cut_after is not None and i >= srv.cut_after:
                self._cut()
                return
            part = {**base, "message": {"role": "assistant", "content": piece}, "done": False}
            self._chunk(json.dumps(part).encode() + b"\n")
        if calls:  # Ollama sends a model's tool calls whole, in one part
            part = {**base, "done": False}
            part["message"] = {"role": "assistant", "content": "", "tool_calls": tool_calls}
            self._chunk(json.dumps(part).encode() + b"\n")
        self._chunk(json.dumps(final).encode() + b"\n")
        self._end_chunked()

    def _details(self, model: str) -> dict[str, Any]:
        family = model.split(":")[0].rstrip("0123456789.") or model
        return {
            "parent_model": "",
            "format": "gguf",
            "family": family,
            "families": [family],
            "parameter_size": "8.0B",
            "quantization_level": "Q4_0",
        }

    def ollama_tags(self, _body: Any) -> None:
        models = [
            {
                "name": m,
                "model": m,
                "modified_at": "2026-11-01T00:00:00Z",
                "size": 4_661_224_676,
                "digest": hashlib.sha256(m.encode()).hexdigest(),
                "details": self._details(m),
            }
            for m in self.server_ref.models
        ]
        self._send(200, {"models": models})

    def ollama_ps(self, _body: Any) -> None:
        models = [
            {
                "name": m,
                "model": m,
                "size": 5_137_025_024,
                "digest": hashlib.sha256(m.encode()).hexdigest(),
                "details": self._details(m),
                "expires_at": "2026-11-01T00:05:00Z",
                "size_vram": 5_137_025_024,
                "context_length": self.server_ref.context_length,
            }
            for m in self.server_ref.models[:1]
        ]
        self._send(200, {"models": models})

    def ollama_show(self, body: dict[str, Any]) -> None:
        model = body.get("model") or body.get("name") or ""
        if self._ollama_missing(model):
            return
        details = self._details(model)
        self._send(
            200,
            {
                "modelfile": f"FROM {model}",
                "parameters": "stop <|eot_id|>",
                "template": "{{ .Prompt }}",
                "details": details,
                "model_info": {
                    "general.architecture": details["family"],
                    "general.parameter_count": 8_030_261_248,
                    f"{details['family']}.context_length": self.server_ref.context_length,
                },
                "capabilities": ["completion"],
                "modified_at": "2026-11-01T00:00:00Z",
            },
        )

    def ollama_version(self, _body: Any) -> None:
        self._send(200, {"version": self.server_ref.version})

    def ollama_embed(self, body: dict[str, Any]) -> None:
        model = body.get("model", "")
        if self._ollama_missing(model):
            return
        inputs = body.get("input")
        inputs = [inputs] if isinstance(inputs, str) else list(inputs or [])
        self._send(
            200,
            {"model": model, "embeddings": [embed_text(t) for t in inputs], "total_duration": 1},
        )


class AsgiServer:
    """Run an ASGI app (e.g. the proxy) with uvicorn on a free 127.0.0.1 port, in a thread.

    ::

        with AsgiServer(proxy.create_app(settings)) as srv:
            httpx.get(f"{srv.url}/healthz")

    Leaving the block runs the app's shutdown (lifespan) and waits for the thread.
    """

    def __init__(self, app: Any, *, startup_timeout: float = 10.0):
        import uvicorn

        self.port = _free_port()
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
