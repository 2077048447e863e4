"""Similarity methods: the built-in lexical one, and the embedding ones against loopback servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from shadowtutor import similarity
from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.config import Settings, SettingsError
from shadowtutor.log import read
from shadowtutor.testing.modelserver import ModelServer


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("the cat sat", "the cat sat", 1.0),
        ("the cat sat", "dogs bark loudly", 0.0),
        ("", "", 1.0),
        ("", "something", 0.0),
        (None, "x", None),
    ],
)
def test_lexical_table(a, b, expected) -> None:
    assert similarity.lexical(a, b) == expected


def test_lexical_rewards_shared_wording() -> None:
    close = similarity.lexical("the order ships on monday", "your order ships monday")
    far = similarity.lexical("the order ships on monday", "I like the pizza")
    assert 0 < far < close < 1


def test_lexical_reads_a_bounded_prefix_of_each_answer() -> None:
    cap = similarity.MAX_CHARS
    head = ("la torta costa quaranta euro " * (cap // 29 + 1))[:cap]
    # What lies past the bound does not change the score (nor the work done).
    assert similarity.lexical(head + " zebra" * 50_000, head) == 1.0
    assert similarity.lexical(head[: cap // 2] + " zebra" * 5_000, head) < 1.0


@pytest.mark.parametrize(
    ("u", "v", "expected"),
    [([1, 0], [1, 0], 1.0), ([1, 0], [0, 1], 0.0), ([0, 0], [1, 1], 0.0), ([1, 0], [-1, 0], 0.0)],
)
def test_cosine_is_clipped(u, v, expected) -> None:
    assert similarity.cosine(u, v) == expected


@pytest.fixture
def server() -> Iterator[ModelServer]:
    with ModelServer(models=["nomic-embed-text", "text-embedding-3-small", "llama3"]) as srv:
        yield srv


def settings_for(server: ModelServer, method: str, **extra: str) -> Settings:
    return Settings.load(
        {
            "SHADOWTUTOR_SIMILARITY": method,
            "SHADOWTUTOR_STUDENT_BASE_URL": server.url,
            "SHADOWTUTOR_TEACHER_BASE_URL": server.openai_url,
            "SHADOWTUTOR_TEACHER_API_KEY": "k",
        }
        | extra
    )


@pytest.mark.parametrize(
    ("method", "name", "path"),
    [
        ("lexical", "lexical", None),
        ("ollama", "ollama:nomic-embed-text", "/api/embed"),
        ("openai", "openai:text-embedding-3-small", "/v1/embeddings"),
    ],
)
def test_registry_builds_each_method(server: ModelServer, method: str, name: str, path) -> None:
    m = similarity.get_method(settings_for(server, method))
    assert m.name == name
    same = m.score("the order ships on monday", "the order ships on monday")
    other = m.score("the order ships on monday", "pizza with friends tonight")
    assert same == pytest.approx(1.0) and 0 <= other < same
    if path:
        assert server.count(path) == 2


def test_embedding_model_setting_is_used_and_recorded(server: ModelServer) -> None:
    m = similarity.get_method(settings_for(server, "ollama", SHADOWTUTOR_EMBEDDING_MODEL="llama3"))
    assert m.name == "ollama:llama3"
    m.score("a", "b")
    assert server.requests[-1][1]["model"] == "llama3"


def test_unknown_method_names_the_choices() -> None:
    with pytest.raises(SettingsError, match="lexical, ollama, openai"):
        similarity.get_method(Settings.load({"SHADOWTUTOR_SIMILARITY": "bleu"}))


def test_collector_records_the_method_and_survives_its_failure(
    home: Path, tmp_path: Path, server: ModelServer
) -> None:
    with ModelServer(models=["gpt-4o-mini"]) as teacher:
        settings = settings_for(server, "ollama", SHADOWTUTOR_HOME=str(tmp_path / "h"))
        with ShadowCollector(settings) as c:
            client = c.wrap(openai.OpenAI(base_url=teacher.openai_url, api_key="k"))
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}]
            )
            c.flush()
            server.models.remove("nomic-embed-text")  # the embedding model goes away
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "again"}]
            )
            assert reply.choices[0].message.content == "echo: again"
            c.flush()
            recs = sorted(read.iter_records(c.log_dir), key=lambda r: r["ts"])
            assert c.stats()["similarity_errors"] == 1
    assert [r["similarity"]["method"] for r in recs] == ["ollama:nomic-embed-text"] * 2
    assert recs[0]["similarity"]["score"] is not None
    assert recs[1]["similarity"]["score"] is None
    assert "ollama pull nomic-embed-text" in recs[1]["metadata"]["similarity_error"]
