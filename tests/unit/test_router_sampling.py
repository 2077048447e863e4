"""Review sampling from both sides of the router's threshold: known inclusion probabilities,
design weights that make the estimate unbiased, and old log parts without router fields."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from shadowtutor.review import sampling


def _rows(n_above: int, n_below: int, n_none: int = 0, n_unscored: int = 0) -> list[dict]:
    rows = [{"id": f"a{i}", "router_score": 0.9, "router_threshold": 0.5} for i in range(n_above)]
    rows += [{"id": f"b{i}", "router_score": 0.2, "router_threshold": 0.5} for i in range(n_below)]
    rows += [{"id": f"u{i}", "router_score": 0.7, "router_threshold": None} for i in range(n_none)]
    rows += [{"id": f"x{i}", "router_score": None} for i in range(n_unscored)]
    return rows


@pytest.mark.parametrize(
    ("counts", "size", "taken"),
    [
        ({"above": 900, "below": 100}, 100, {"above": 50, "below": 50}),
        ({"above": 900, "below": 20}, 100, {"above": 80, "below": 20}),
        ({"above": 5, "below": 3}, 100, {"above": 5, "below": 3}),
        ({"above": 50, "below": 50, "uncertified": 50}, 10, {"above": 4, "below": 3,
                                                             "uncertified": 3}),
    ],
)  # fmt: skip
def test_side_allocation(counts: dict[str, int], size: int, taken: dict[str, int]) -> None:
    got = sampling.side_allocation(counts, size)
    assert sum(got.values()) == min(size, sum(counts.values()))
    assert got == taken or sorted(got.values()) == sorted(taken.values())


def test_router_sides_draws_both_sides_and_never_an_unscored_pair() -> None:
    rows = _rows(900, 100, 0, 50)
    ids = sampling.select_ids(rows, strategy="router_sides", size=100, seed=3)
    sides = Counter(i[0] for i in ids)
    assert sides == {"a": 50, "b": 50}


def test_the_weighted_estimate_is_unbiased() -> None:
    """The student serves the above side (90 % of traffic, 95 % acceptable); the below side
    is 40 % acceptable. The weighted mean of sampled labels over many draws is the traffic's
    rate (0.9 * 0.95 + 0.1 * 0.4 = 0.895); the plain mean is not."""
    rows = _rows(900, 100)
    rng = random.Random(0)
    truth = {r["id"]: rng.random() < (0.95 if r["id"][0] == "a" else 0.4) for r in rows}
    rate = sum(truth.values()) / len(truth)
    weights = sampling.side_weights(rows, 100)
    plain, weighted = [], []
    for seed in range(300):
        ids = sampling.select_ids(rows, strategy="router_sides", size=100, seed=seed)
        plain.append(sum(truth[i] for i in ids) / len(ids))
        weighted.append(sum(weights[i] * truth[i] for i in ids) / sum(weights[i] for i in ids))
    assert sum(weighted) / len(weighted) == pytest.approx(rate, abs=0.01)
    assert abs(sum(plain) / len(plain) - rate) > 0.15  # the sides' equal shares skew it
    assert weights["a0"] == pytest.approx(0.1 / (50 / 900))
    assert weights["b0"] == pytest.approx(0.1 / (50 / 100))
