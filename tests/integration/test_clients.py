"""Student and teacher backends against real loopback servers, driven by the real clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shadowtutor import backends
from shadowtutor.backends import (
    BackendHTTPError,
    BackendProtocolError,
    BackendTimeout,
    BackendUnavailable,
    ModelNotFound,
    OllamaBackend,
    OpenAIBackend,
)
from shadowtutor.config import Settings
from shadowtutor.testing.modelserver import ModelServer

MSGS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "ciao a tutti"}]


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(models=["llama3", "gpt-4o-mini", "nomic-embed-text"]) as srv:
        yield srv


def ollama_backend(srv: ModelServer, timeout: float = 2.0) -> OllamaBackend:
    return OllamaBackend(base_url=srv.url, model="llama3", timeout=timeout, keep_alive="1m")


def openai_backend(srv: ModelServer, timeout: float = 2.0) -> OpenAIBackend:
    return OpenAIBackend(base_url=srv.openai_url, api_key="", model="gpt-4o-mini", timeout=timeout)


BACKENDS = [ollama_backend, openai_backend]


@pytest.mark.parametrize("make", BACKENDS)
def test_chat_returns_text_tokens_and_latency(server: ModelServer, make) -> None:
    result = make(server).chat(MSGS)
    assert result.text == "echo: ciao a tutti"
    assert result.prompt_tokens and result.completion_tokens == 4
    assert not result.usage_estimated
    assert result.latency_ms > 0 and result.ttft_ms is not None
    assert result.ttft_ms <= result.latency_ms


@pytest.mark.parametrize("make", BACKENDS)
def test_stream_yields_pieces_then_a_final_result(server: ModelServer, make) -> None:
    chunks = list(make(server).stream_chat(MSGS))
    assert chunks[0].first and not any(c.first for c in chunks[1:])
    assert "".join(c.text for c in chunks) == "echo: ciao a tutti"
    assert chunks[-1].done and chunks[-1].result.text == "echo: ciao a tutti"


@pytest.mark.parametrize("make", BACKENDS)
def test_missing_usage_is_estimated_and_marked(server: ModelServer, make) -> None:
    server.usage = False
    result = make(server).chat(MSGS)
    assert result.usage_estimated
    assert result.prompt_tokens >= 1 and result.completion_tokens >= 1


def test_ollama_sends_options_and_keep_alive(server: ModelServer) -> None:
    result = ollama_backend(server).chat(MSGS, temperature=0.2, max_tokens=2)
    assert result.text == "echo: ciao"  # num_predict=2 honoured by the server
    path, body = server.requests[-1]
    assert path == "/api/chat"
    assert body["options"] == {"temperature": 0.2, "num_predict": 2}
    assert body["keep_alive"] == "1m"


def test_openai_sends_options(server: ModelServer) -> None:
    openai_backend(server).chat(MSGS, temperature=0.5, max_tokens=7)
    _, body = server.requests[-1]
    assert body["temperature"] == 0.5 and body["max_tokens"] == 7
    assert body["stream_options"] == {"include_usage": True}


def test_ollama_model_info(server: ModelServer) -> None:
    backend = ollama_backend(server)
    names = [m.name for m in backend.list_models()]
    assert names == ["llama3", "gpt-4o-mini", "nomic-embed-text"]
    loaded = backend.loaded_models()
    assert loaded[0].name == "llama3" and loaded[0].context_length == 8192
    info = backend.show("llama3")
    assert (info.family, info.parameter_size, info.quantization, info.context_length) == (
        "llama",
        "8.0B",
        "Q4_0",
        8192,
    )
    assert backend.version() == "0.6.3"


def test_openai_lists_models(server: ModelServer) -> None:
    assert "gpt-4o-mini" in [m.name for m in openai_backend(server).list_models()]


@pytest.mark.parametrize("make", BACKENDS)
def test_embeddings(server: ModelServer, make) -> None:
    vectors = make(server).embed(["a b c", "a b d"], model="nomic-embed-text")
    assert len(vectors) == 2 and len(vectors[0]) == 64


# --- the fault matrix -------------------------------------------------------------------------


def test_ollama_not_running_says_how_to_start(server: ModelServer) -> None:
    server.down()
    with pytest.raises(BackendUnavailable, match="ollama serve"):
        ollama_backend(server).chat(MSGS)
    with pytest.raises(BackendUnavailable):
        ollama_backend(server).version()


def test_openai_not_running_names_the_address(server: ModelServer) -> None:
    server.down()
    with pytest.raises(BackendUnavailable, match=str(server.port)):
        openai_backend(server).chat(MSGS)


def test_ollama_model_not_pulled_gives_the_pull_command(server: ModelServer) -> None:
    with pytest.raises(ModelNotFound, match="ollama pull mistral:7b$"):
        ollama_backend(server).chat(MSGS, model="mistral:7b")
    with pytest.raises(ModelNotFound, match="ollama pull qwen2"):
        ollama_backend(server).show("qwen2")


def test_openai_unknown_model(server: ModelServer) -> None:
    with pytest.raises(ModelNotFound, match="no model 'gpt-9'"):
        openai_backend(server).chat(MSGS, model="gpt-9")


@pytest.mark.parametrize("make", BACKENDS)
def test_slow_server_times_out(server: ModelServer, make) -> None:
    server.delay = 1.0
    with pytest.raises(BackendTimeout, match="0.3 s"):
        make(server, timeout=0.3).chat(MSGS)


@pytest.mark.parametrize("make", BACKENDS)
def test_http_500(server: ModelServer, make) -> None:
    server.status = 500
    with pytest.raises(BackendHTTPError, match="500") as info:
        make(server).chat(MSGS)
    assert info.value.status == 500


@pytest.mark.parametrize("make", BACKENDS)
def test_malformed_json(server: ModelServer, make) -> None:
    server.malformed = True
    with pytest.raises(BackendProtocolError):
        make(server).chat(MSGS)


@pytest.mark.parametrize("make", BACKENDS)
def test_stream_cut_mid_way(server: ModelServer, make) -> None:
    server.cut_after = 2
    with pytest.raises(BackendProtocolError):
        make(server).chat(MSGS)


def test_errors_are_shadowtutor_errors() -> None:
    for cls in (BackendUnavailable, ModelNotFound, BackendTimeout, BackendProtocolError):
        assert issubclass(cls, backends.BackendError)
        assert issubclass(cls, backends.ShadowTutorError)


# --- factory ------------------------------------------------------------------------------------


def test_factory_from_settings(server: ModelServer) -> None:
    env = {"SHADOWTUTOR_STUDENT_BASE_URL": server.url, "SHADOWTUTOR_STUDENT_TIMEOUT_S": "3"}
    student = backends.student_backend(Settings.load(env))
    assert isinstance(student, OllamaBackend) and student.timeout == 3
    assert student.chat(MSGS).text == "echo: ciao a tutti"
    env = {
        "SHADOWTUTOR_STUDENT_BACKEND": "openai",
        "SHADOWTUTOR_STUDENT_BASE_URL": server.openai_url,
        "SHADOWTUTOR_STUDENT_MODEL": "gpt-4o-mini",
    }
    student = backends.student_backend(Settings.load(env))
    assert student.provider == "openai-compatible"
    assert student.chat(MSGS).text == "echo: ciao a tutti"
    teacher = backends.teacher_backend(
        Settings.load(
            {"SHADOWTUTOR_TEACHER_BASE_URL": server.openai_url, "SHADOWTUTOR_TEACHER_API_KEY": "k"}
        )
    )
    assert teacher.chat(MSGS).model == "gpt-4o-mini"


def test_factory_rejects_unknown_backend() -> None:
    with pytest.raises(backends.BackendError, match="use `ollama` or `openai`"):
        backends.student_backend(Settings.load({"SHADOWTUTOR_STUDENT_BACKEND": "vllm"}))


def test_a_base_url_without_v1_gets_the_hint() -> None:
    from shadowtutor.backends.clients import BackendError, OpenAIBackend
    from shadowtutor.students import health
    from shadowtutor.testing.modelserver import ModelServer

    with ModelServer(models=["qwen2.5"]) as server:
        backend = OpenAIBackend(base_url=server.url, model="qwen2.5", timeout=5)  # no /v1
        with pytest.raises(BackendError, match="probably lacks `/v1`") as info:
            backend.chat([{"role": "user", "content": "hi"}])
        assert f"try {server.url}/v1" in str(info.value)
        problems = health.check(backend).problems
        assert any("probably lacks `/v1`" in p for p in problems), problems
        right = OpenAIBackend(base_url=server.openai_url, model="missing-model", timeout=5)
        with pytest.raises(BackendError, match="has no model 'missing-model'"):
            right.chat([{"role": "user", "content": "hi"}])  # with /v1: the usual message
