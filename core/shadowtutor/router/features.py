"""What the router knows of a request before it is answered, as one text, pure.

Training (:mod:`shadowtutor.router.model`, scikit-learn's ``HashingVectorizer``) and the
request path (:class:`Scorer`) see the same thing: :func:`request_text` turns a request into
the text the vectorizer reads: the user turns' words (the last ``TEXT_CHARS`` characters of
them, where the question is) and a few marker words for what else is known (category,
language, kind, tools present, conversation depth, length). The markers are plain tokens
(``zzcat_business``), so one vectorizer hashes everything and the weights say what each
marker is worth.

:class:`Scorer` is the request path's copy of the vectorizer and the logistic model: the same
tokens, the same MurmurHash3 (scikit-learn's own ``murmurhash3_32``, cached per token), the
same signs and L2 norm, then the dot product with the model's non-zero weights. A test checks
that it gives scikit-learn's probability to 1e-9; it costs a few microseconds where the
scikit-learn pipeline costs a few hundred.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sklearn.utils import murmurhash3_32

from shadowtutor import detect

# What the tokens are (this module's text, markers and pattern): a stored model records it, and
# a model made with other tokens is refused (it would score other features than it learned).
FEATURES_VERSION = 1
N_FEATURES = 2**18
TEXT_CHARS = 400  # the user turns' last characters the router reads (bounded cost: 50 µs)
# the validator (a cascade's second model) also reads the student's answer: its first and last
# ANSWER_CHARS // 2 characters (where a refusal, a wrong language or a cut end shows)
ANSWER_CHARS = 600
# scikit-learn's default token pattern without its \b anchors, which change nothing (a greedy
# run of two or more word characters always ends and starts at a boundary) and cost time
TOKEN = re.compile(r"\w\w+")
CACHE_MAX = 200_000  # tokens whose hash is kept; beyond, tokens are hashed each time


def _content(msg: Mapping[str, Any]) -> str:
    content = msg.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


_NOT_WORD = re.compile(r"\W")


def _mark(name: str, value: str) -> str:
    """One token whatever the value holds (``small-talk`` -> ``zzcat_small_talk``)."""
    return f"{name}_{_NOT_WORD.sub('_', value.lower())}"


def _bucket(n: int) -> int:
    """log2 bucket of a length: 0, 1, 2-3, 4-7, ... (a handful of markers, not one a size)."""
    return n.bit_length()


def request_text(
    messages: Sequence[Mapping[str, Any]],
    *,
    category: str | None,
    kind: str | None = "plain",
    tools: int = 0,
) -> str:
    """The text the router's vectorizer reads for one request (see the module docstring).
    The language is detected from the last user message, in training and on the request path
    alike (a record's own language may come from elsewhere)."""
    return " ".join(request_tokens(messages, category=category, kind=kind, tools=tools))


def request_tokens(
    messages: Sequence[Mapping[str, Any]],
    *,
    category: str | None,
    kind: str | None = "plain",
    tools: int = 0,
) -> list[str]:
    """The tokens of :func:`request_text` (which joins them; the vectorizer splits the joined
    text into the same tokens again): the words of the user turns' last ``TEXT_CHARS``
    characters, then the markers. The language is detected from those words."""
    users = [_content(m) for m in messages if m.get("role") == "user"]
    words = TOKEN.findall(" ".join(users)[-TEXT_CHARS:].lower())
    last = users[-1] if users else ""
    language = detect.language_of(words)  # the last turn's words weigh most among them
    turns = sum(1 for m in messages if m.get("role") in ("user", "assistant"))
    return words + [
        _mark("zzcat", category or "none"),
        _mark("zzlang", language or "none"),
        _mark("zzkind", kind or "plain"),
        f"zztools_{min(tools, 9)}",
        f"zzdepth_{min(turns, 9)}",
        f"zzlen_{_bucket(len(last.split()))}",
    ]


def answer_tokens(answer: Mapping[str, Any] | None) -> list[str]:
    """What the validator reads of the student's answer (the record's answer fields, or an
    :class:`~shadowtutor.backends.Answer` as a mapping): its words, prefixed ``zzans_`` so
    they are other columns than the request's, and markers for its length, how it finished,
    whether it is empty, and its language."""
    answer = answer or {}
    text = answer.get("response") or ""
    text = text if isinstance(text, str) else str(text)
    half = ANSWER_CHARS // 2
    read = text if len(text) <= ANSWER_CHARS else f"{text[:half]} {text[-half:]}"
    words = TOKEN.findall(read.lower())
    language = detect.language_of(words)
    return [f"zzans_{w}" for w in words] + [
        f"zzalen_{_bucket(len(text.split()))}",
        _mark("zzfinish", str(answer.get("finish_reason") or "none")),
        "zzaempty" if not text.strip() else "zzatext",
        _mark("zzalang", language or "none"),
        "zzacalls" if answer.get("tool_calls") else "zzanocalls",
    ]


def validator_tokens(
    messages: Sequence[Mapping[str, Any]],
    answer: Mapping[str, Any] | None,
    *,
    category: str | None,
    kind: str | None = "plain",
    tools: int = 0,
) -> list[str]:
    """The validator's tokens: the request's (:func:`request_tokens`) and the answer's."""
    request = request_tokens(messages, category=category, kind=kind, tools=tools)
    return request + answer_tokens(answer)


def validator_text(
    messages: Sequence[Mapping[str, Any]],
    answer: Mapping[str, Any] | None,
    *,
    category: str | None,
    kind: str | None = "plain",
    tools: int = 0,
) -> str:
    """:func:`validator_tokens` as the one text the vectorizer reads."""
    tokens = validator_tokens(messages, answer, category=category, kind=kind, tools=tools)
    return " ".join(tokens)


_hashes: dict[str, tuple[int, float]] = {}


def hashed(token: str, n_features: int = N_FEATURES) -> tuple[int, float]:
    """(column, sign) of ``token`` exactly as scikit-learn's ``FeatureHasher`` computes them
    (signed MurmurHash3 with seed 0; ``alternate_sign``)."""
    found = _hashes.get(token) if n_features == N_FEATURES else None
    if found is not None:
        return found
    h = int(murmurhash3_32(token, seed=0, positive=False))
    index = (
        (2147483647 - (n_features - 1)) % n_features if h == -2147483648 else abs(h) % n_features
    )
    out = (index, 1.0 if h >= 0 else -1.0)
    if n_features == N_FEATURES and len(_hashes) < CACHE_MAX:
        _hashes[token] = out
    return out


@dataclass(frozen=True)
class Scorer:
    """A trained router on the request path: ``weights`` (column -> weight, the non-zero ones)
    and ``intercept`` of the logistic model over the hashed, L2-normalised token counts."""

    weights: Mapping[int, float]
    intercept: float
    n_features: int = N_FEATURES

    def score_text(self, text: str) -> float:
        """P(acceptable) for the router text of one request."""
        return self.score_tokens(TOKEN.findall(text.lower()))

    def score_tokens(self, tokens: list[str]) -> float:
        """P(acceptable) for the tokens of one request (:func:`request_tokens`)."""
        vector: dict[int, float] = {}
        cache = _hashes if self.n_features == N_FEATURES else {}
        for token in tokens:
            found = cache.get(token)
            index, sign = found if found is not None else hashed(token, self.n_features)
            vector[index] = vector.get(index, 0.0) + sign
        norm = math.sqrt(sum(v * v for v in vector.values()))
        margin = self.intercept
        if norm > 0:
            w = self.weights
            margin += sum(v * w.get(i, 0.0) for i, v in vector.items()) / norm
        if margin >= 0:
            return 1.0 / (1.0 + math.exp(-margin))
        e = math.exp(margin)
        return e / (1.0 + e)

    def score(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        category: str | None,
        kind: str | None = "plain",
        tools: int = 0,
    ) -> float:
        tokens = request_tokens(messages, category=category, kind=kind, tools=tools)
        return self.score_tokens(tokens)

    def score_answer(
        self,
        messages: Sequence[Mapping[str, Any]],
        answer: Mapping[str, Any] | None,
        *,
        category: str | None,
        kind: str | None = "plain",
        tools: int = 0,
    ) -> float:
        """The validator's P(acceptable) of ``answer`` to the request (a validator's
        weights: trained on :func:`validator_text`)."""
        tokens = validator_tokens(messages, answer, category=category, kind=kind, tools=tools)
        return self.score_tokens(tokens)
