"""The loopback servers the session shares: ``restore()`` gives the next test the server as
it was constructed, whatever the last test switched on, changed or left down."""

from __future__ import annotations

import httpx
import pytest

from shadowtutor.testing.modelserver import ModelServer


def _chat(srv: ModelServer) -> httpx.Response:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    return httpx.post(f"{srv.url}/api/chat", json=body, timeout=5)


def test_restore_brings_back_the_constructed_server() -> None:
    with ModelServer(models=["m"], answer="as built", delay=0.0) as srv:
        port = srv.port
        assert _chat(srv).json()["message"]["content"] == "as built"
        srv.answer, srv.status, srv.cut_after, srv.stop_after = "changed", 500, 1, 2
        srv.models.append("other")
        srv.delay, srv.chunk_delay, srv.malformed, srv.usage = 0.5, 0.5, True, False
        srv.down()

        srv.restore()

        assert (srv.port, srv.count(), srv.requests, srv.headers) == (port, 0, [], [])
        assert (srv.answer, srv.status) == ("as built", None)
        assert (srv.cut_after, srv.stop_after) == (None, None)
        assert (srv.models, srv.delay, srv.chunk_delay, srv.malformed, srv.usage) == (
            ["m"], 0.0, 0.0, False, True,
        )  # fmt: skip
        answer = _chat(srv).json()
        assert answer["message"]["content"] == "as built" and "eval_count" in answer
        assert srv.count("/api/chat") == 1


SEEN: list[ModelServer] = []


@pytest.mark.parametrize("run", [1, 2])
def test_the_teacher_fixture_is_shared_and_starts_clean(teacher: ModelServer, run: int) -> None:
    assert teacher.count() == 0 and teacher.status is None and teacher.models == ["gpt-4o-mini"]
    assert all(srv is teacher for srv in SEEN)  # one server for the session
    SEEN.append(teacher)
    teacher.status = 500  # left on: the next test must not see it
    teacher.models.append("left-over")
