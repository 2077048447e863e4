"""Price table and cost maths.

Prices are US dollars per million tokens, shipped as data (``core/data/prices.toml``) and
versioned; every computed cost carries the table's version. Model names are matched exactly,
then by the longest known prefix (``gpt-4o-2024-08-06`` is priced as ``gpt-4o``; an Ollama tag
such as ``llama3:8b`` as ``llama3``). An unknown model gets ``None``, never a silent $0.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_TABLE = Path(__file__).parent / "data" / "prices.toml"


@dataclass(frozen=True)
class Price:
    model: str
    provider: str
    input_per_m: float
    output_per_m: float


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
        candidates = [k for k in self.prices if base == k or base.startswith(k + "-")]
        return self.prices[max(candidates, key=len)] if candidates else None

    def cost(
        self, model: str | None, prompt_tokens: int | None, completion_tokens: int | None
    ) -> float | None:
        """Dollars for one call, or None when the model is unknown or tokens are missing."""
        price = self.lookup(model)
        if price is None or prompt_tokens is None or completion_tokens is None:
            return None
        return (prompt_tokens * price.input_per_m + completion_tokens * price.output_per_m) / 1e6


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
            name.lower(), p.get("provider", ""), float(p["input"]), float(p["output"])
        )
        for name, p in data.get("models", {}).items()
    }
    return PriceTable(version=str(data["version"]), prices=prices)


def estimate_tokens(text: str | None) -> int:
    """Rough token count (about 4 characters a token) for when an API reports no usage."""
    return max(1, round(len(text or "") / 4))
