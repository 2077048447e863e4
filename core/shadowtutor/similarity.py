"""Similarity of the teacher's and the student's answers.

Every score is in 0..1 and is logged with the method that produced it, so charts and the gate
never mix scales. ``lexical`` is built in and needs nothing: the cosine of word and word-bigram
counts (lower-cased, Unicode words), which rewards shared wording and ignores order beyond
neighbouring words.

The embedding methods (``ollama``, ``openai``) and the small registry that picks a method from
settings are at the end of this module (``get_method(settings)``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shadowtutor.errors import error_text

_WORD = re.compile(r"\w+", re.UNICODE)
# Each answer is scored on its first MAX_CHARS characters: linear and bounded work per record
# (a 1 MB answer costs the shadow pipeline no more than a long one).
MAX_CHARS = 20_000


def _features(text: str) -> Counter[str]:
    words = _WORD.findall(text[:MAX_CHARS].lower())
    feats = Counter(words)
    feats.update(map(" ".join, zip(words, words[1:], strict=False)))
    return feats


def lexical(a: str | None, b: str | None) -> float | None:
    """Cosine of word and bigram counts; None when either text is missing."""
    if a is None or b is None:
        return None
    fa, fb = _features(a), _features(b)
    if not fa or not fb:
        return 1.0 if not fa and not fb else 0.0
    if len(fa) > len(fb):
        fa, fb = fb, fa
    dot = sum(v * fb[k] for k, v in fa.items() if k in fb)
    norm = math.hypot(*fa.values()) * math.hypot(*fb.values())
    return round(dot / norm, 6)


def cosine(u: list[float], v: list[float]) -> float:
    """Cosine of two embedding vectors, clipped to 0..1."""
    dot = sum(x * y for x, y in zip(u, v, strict=True))
    norm = math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v))
    return 0.0 if norm == 0 else max(0.0, min(1.0, dot / norm))


@dataclass(frozen=True)
class Comparison:
    """One teacher/student comparison: the method's name, the score (None when an answer is
    missing or the method failed) and, when it failed, why (``kind: message``)."""

    method: str
    score: float | None
    error: str | None = None


def compare(method: SimilarityMethod, a: str | None, b: str | None) -> Comparison:
    """Score two answers with ``method``; a failing method (an embedding server down) never
    raises: the failure is in ``error`` and the score is None. Used by the collector and the
    Playground alike."""
    if a is None or b is None:
        return Comparison(method.name, None)
    try:
        return Comparison(method.name, method.score(a, b))
    except Exception as exc:
        return Comparison(method.name, None, error_text(exc))


# --- pluggable methods -------------------------------------------------------------------------
#
# A method is an object with a ``name`` (recorded in every record's ``similarity.method``) and
# ``score(a, b) -> float | None``. Embedding methods record their model in the name
# (``ollama:nomic-embed-text``) so scores from different embedding models are never mixed.
# Add a method by decorating a factory ``(settings) -> method`` with ``@register("name")``.

_FACTORIES: dict[str, Callable[[Any], SimilarityMethod]] = {}


class SimilarityMethod:
    """The interface of a similarity method (see above)."""

    name = "lexical"

    def score(self, a: str | None, b: str | None) -> float | None:
        return lexical(a, b)


class EmbeddingSimilarity(SimilarityMethod):
    """Cosine of two embeddings from a backend with ``embed(texts, model=...)``."""

    def __init__(self, backend: Any, model: str, provider: str):
        self.backend = backend
        self.model = model
        self.name = f"{provider}:{model}"

    def score(self, a: str | None, b: str | None) -> float | None:
        if a is None or b is None:
            return None
        if not a.strip() or not b.strip():
            return 1.0 if not a.strip() and not b.strip() else 0.0
        u, v = self.backend.embed([a, b], model=self.model)
        return round(cosine(u, v), 6)


def register(name: str) -> Callable[[Callable[[Any], SimilarityMethod]], Callable[..., Any]]:
    def deco(factory: Callable[[Any], SimilarityMethod]) -> Callable[[Any], SimilarityMethod]:
        _FACTORIES[name] = factory
        return factory

    return deco


def methods() -> list[str]:
    """Names accepted by SHADOWTUTOR_SIMILARITY."""
    return sorted(_FACTORIES)


def get_method(settings: Any) -> SimilarityMethod:
    """The method named by ``settings.similarity_method``; a clear error for an unknown one."""
    name = (settings.similarity_method or "lexical").strip().lower()
    factory = _FACTORIES.get(name)
    if factory is None:
        from shadowtutor.config import SettingsError

        raise SettingsError(
            f"SHADOWTUTOR_SIMILARITY={name!r} is not a similarity method; "
            f"use one of: {', '.join(methods())}"
        )
    return factory(settings)


@register("lexical")
def _lexical_method(settings: Any) -> SimilarityMethod:
    return SimilarityMethod()


@register("ollama")
def _ollama_method(settings: Any) -> SimilarityMethod:
    from shadowtutor.backends import OllamaBackend

    # Embeddings come from the Ollama server named by the student settings when the student
    # runs on Ollama, else from the default local address.
    base = settings.student_base_url if settings.student_backend == "ollama" else ""
    backend = OllamaBackend(
        base_url=base or "http://127.0.0.1:11434", timeout=settings.student_timeout_s
    )
    return EmbeddingSimilarity(backend, settings.embedding_model or "nomic-embed-text", "ollama")


@register("openai")
def _openai_method(settings: Any) -> SimilarityMethod:
    from shadowtutor.backends import OpenAIBackend, teacher_api_key

    backend = OpenAIBackend(
        base_url=settings.teacher_base_url,
        api_key=teacher_api_key(settings),
        timeout=settings.student_timeout_s,
    )
    return EmbeddingSimilarity(
        backend, settings.embedding_model or "text-embedding-3-small", "openai"
    )
