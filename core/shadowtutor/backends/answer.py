"""One model's answer: what a backend returns, the playground shows, a job carries and the
record stores (its fields, serialized by :func:`shadowtutor.collect.records.answer_fields`).

A complete answer has ``text`` ("" when it is only ``tool_calls``, which keep each call's
arguments exactly as sent); a failed one has ``error`` (and ``error_kind``, the
:class:`~shadowtutor.backends.base.BackendError` kind) and no text. ``usage_estimated`` is
True when the server sent no token counts and ``prompt_tokens``/``completion_tokens`` were
estimated from the text. ``cost_usd``/``price_version`` are set by whoever prices it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Answer:
    """One complete (or failed) answer of one model, with its figures."""

    model: str
    provider: str
    text: str | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    usage_estimated: bool = False
    finish_reason: str | None = None
    error: str | None = None
    error_kind: str | None = None
    cost_usd: float | None = None
    price_version: str | None = None
    # [{name, arguments}]: arguments exactly as sent (OpenAI: JSON text; Ollama: an object)
    tool_calls: list[dict[str, Any]] | None = None
    refusal: str | None = None
    # prompt tokens written to / read from a prompt cache (part of prompt_tokens)
    cache_creation_tokens: int | None = None
    cache_read_tokens: int | None = None

    @property
    def tokens_per_s(self) -> float | None:
        """The decode rate (see :func:`tokens_per_second`)."""
        return tokens_per_second(self.completion_tokens, self.latency_ms, self.ttft_ms)

    def figures(self) -> str:
        """One line of figures for a caption: TTFT, latency, tokens/s, tokens, cost."""
        if self.error is not None:
            return "failed"
        rate = self.tokens_per_s
        parts = [
            f"TTFT {_ms(self.ttft_ms)}",
            f"total {_ms(self.latency_ms)}",
            f"{rate:,.1f} tokens/s" if rate else "tokens/s n/a",
            f"{self.completion_tokens or 0} tokens"
            + (" (estimated)" if self.usage_estimated else ""),
        ]
        if self.cost_usd == 0:
            parts.append("cost $0 (local)")
        elif self.cost_usd is not None:
            parts.append(f"cost ${self.cost_usd:.6f}")
        else:  # never a silent $0: a model the price table does not know
            parts.append("cost unknown (not in the price table)")
        return " · ".join(parts)


def tokens_per_second(
    completion_tokens: int | None, latency_ms: float | None, ttft_ms: float | None
) -> float | None:
    """Decode rate after the first token, ``(completion_tokens - 1) / (latency - ttft)``
    (``completion_tokens / latency`` for one-token answers); None when unknown."""
    if not completion_tokens or not latency_ms or latency_ms <= 0:
        return None
    if ttft_ms is not None and completion_tokens > 1 and latency_ms > ttft_ms:
        return (completion_tokens - 1) / ((latency_ms - ttft_ms) / 1000)
    return completion_tokens / (latency_ms / 1000)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f} ms"
