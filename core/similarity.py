"""Similarity of the teacher's and the student's answers.

Every score is in 0..1 and is logged with the method that produced it, so charts and the gate
never mix scales. ``lexical`` is built in and needs nothing: the cosine of word and word-bigram
counts (lower-cased, Unicode words), which rewards shared wording and ignores order beyond
neighbouring words.
"""

from __future__ import annotations

import math
import re
from collections import Counter

_WORD = re.compile(r"\w+", re.UNICODE)


def _features(text: str) -> Counter[str]:
    words = _WORD.findall(text.lower())
    feats = Counter(words)
    feats.update(f"{a} {b}" for a, b in zip(words, words[1:], strict=False))
    return feats


def lexical(a: str | None, b: str | None) -> float | None:
    """Cosine of word and bigram counts; None when either text is missing."""
    if a is None or b is None:
        return None
    fa, fb = _features(a), _features(b)
    if not fa or not fb:
        return 1.0 if not fa and not fb else 0.0
    dot = sum(v * fb.get(k, 0) for k, v in fa.items())
    norm = math.sqrt(sum(v * v for v in fa.values())) * math.sqrt(sum(v * v for v in fb.values()))
    return round(dot / norm, 6)


def cosine(u: list[float], v: list[float]) -> float:
    """Cosine of two embedding vectors, clipped to 0..1."""
    dot = sum(x * y for x, y in zip(u, v, strict=True))
    norm = math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v))
    return 0.0 if norm == 0 else max(0.0, min(1.0, dot / norm))
