"""Price table and cost maths.

Prices are US dollars per million tokens, shipped as data (``shadowtutor/data/prices.toml``) and
versioned; every computed cost carries the table's version. Model names are matched exactly,
then by the longest known prefix (``gpt-4o-2024-08-06`` is priced as ``gpt-4o``; an Ollama tag
such as ``llama3:8b`` as ``llama3``), unless what follows names another
tier (``gpt-5-pro``). An unknown model gets ``None``, never a silent $0.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

DEFAULT_TABLE = Path(__file__).parents[1] / "data" / "prices.toml"
# After a known model's name, these start another tier with prices of its own (gpt-5-pro,
# o3-deep-research, gpt-4o-audio-preview): such a model is unknown, never priced as the base.
_OTHER_TIER = re.compile(
    r"(pro|mini|nano|turbo|audio|realtime|search|codex|chat|deep-research|transcribe|tts|"
    r"image|instant|thinking)(\b|-|$)"
)


@dataclass(frozen=True)
class Price:
    model: str
    provider: str
    input_per_m: float
    output_per_m: float
    # prompt-cache prices (writing, reading); None: those tokens are priced as input
    cache_write_per_m: float | None = None
    cache_read_per_m: float | None = None


@dataclass(frozen=True)
class PriceTable:
    version: str
    prices: dict[str, Price]

    def lookup(self, model: str | None) -> Price | None:
        if not model:
            return None
        name = model.strip().lower()
        if name in self.prices:
            return self.prices[name]
        base = name.split(":", 1)[0]
        candidates = [
            k
            for k in self.prices
            if base == k or base.startswith(k + "-") and not _OTHER_TIER.match(base[len(k) + 1 :])
        ]
        return self.prices[max(candidates, key=len)] if candidates else None

    def cost(
        self,
        model: str | None,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        *,
        cache_write: int | None = None,
        cache_read: int | None = None,
    ) -> float | None:
        """Dollars for one call, or None when the model is unknown or tokens are missing.
        ``cache_write`` and ``cache_read`` are the parts of ``prompt_tokens`` written to and
        read from a prompt cache, priced at the model's cache prices when it has them."""
        price = self.lookup(model)
        if price is None or prompt_tokens is None or completion_tokens is None:
            return None
        write, read = cache_write or 0, cache_read or 0
        plain = max(0, prompt_tokens - write - read)
        base = price.input_per_m
        write_per_m = base if price.cache_write_per_m is None else price.cache_write_per_m
        read_per_m = base if price.cache_read_per_m is None else price.cache_read_per_m
        dollars = plain * base + write * write_per_m + read * read_per_m
        return (dollars + completion_tokens * price.output_per_m) / 1e6


@lru_cache(maxsize=8)
def load_table(path: str = "") -> PriceTable:
    source = Path(path) if path else DEFAULT_TABLE
    try:
        data = tomllib.loads(source.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"price table {source} not found; fix SHADOWTUTOR_PRICE_TABLE"
        ) from None
    prices = {
        name.lower(): Price(
            name.lower(),
            p.get("provider", ""),
            float(p["input"]),
            float(p["output"]),
            float(p["cache_write"]) if "cache_write" in p else None,
            float(p["cache_read"]) if "cache_read" in p else None,
        )
        for name, p in data.get("models", {}).items()
    }
    return PriceTable(version=str(data["version"]), prices=prices)


def estimate_tokens(text: str | None) -> int:
    """Rough token count (about 4 characters a token) for when an API reports no usage."""
    return max(1, round(len(text or "") / 4))


def estimate_usage(
    messages: list[dict[str, Any]],
    text: str | None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
) -> tuple[int, int, bool]:
    """(prompt tokens, completion tokens, estimated?) of one answer: the counts the server sent
    when it sent both, else both estimated from the prompt's and the answer's text."""
    if prompt_tokens is not None and completion_tokens is not None:
        return prompt_tokens, completion_tokens, False
    prompt = " ".join(str(m.get("content") or "") for m in messages)
    return estimate_tokens(prompt), estimate_tokens(text), True


def student_is_free(
    provider: str | None, model: str | None, table: PriceTable, monthly_cost_usd: float
) -> bool:
    """Whether a student's answer costs $0 per request: a local student (Ollama, or a model
    priced ``local`` in the table), or one paid as a flat monthly cost
    (``SHADOWTUTOR_STUDENT_MONTHLY_COST_USD``, divided over the month by analytics, never
    spread per record)."""
    if provider == "ollama" or monthly_cost_usd > 0:
        return True
    price = table.lookup(model)
    return price is not None and price.provider == "local"
