"""A year of daily looks at students exactly at a bar, fast: what ``bench/gate_year.py`` runs
and what its unit test checks against :func:`shadowtutor.gate.criteria.decide`.

A student's days are drawn at once (numpy, one generator per student) and kept as the
sufficient statistics the gate's criteria read: requests, successes, latencies at or under
the P95 bar, the similarity bins (0.01 wide, count and sum, as
:func:`~shadowtutor.gate.criteria.similarity_bins` makes them) and the review scores. Their
running sums are the epoch's growing evidence; a criteria change starts them again (a new
epoch, the next share of the error budget, :func:`~shadowtutor.gate.criteria.error_budget`).

Each look runs the criterion at its bar through the function ``decide`` calls for it
(:func:`~shadowtutor.gate.means.review_score`, :func:`~shadowtutor.gate.serving.success`,
the similarity criterion) on an aggregate of the running sums; the P95 through the ranks of
:func:`~shadowtutor.gate.stats.quantile_cs_ranks`, which ``serving.p95`` uses (its upper bound,
the ``hi``-th smallest request, is at or under the bar exactly when ``hi`` requests are).
A look skips the criterion only when it cannot PASS: a lower bound at or above the bar needs
the betting capital against "mean <= bar" to have reached 1/alpha already (the bound is the
smallest mean not rejected, and the capital falls as the mean rises), so one capital
(:func:`~shadowtutor.gate.stats.log_capital`, the bets of every betting bound here) decides
whether the bound is worth computing; the P95's rank is above 95 % of the requests.
:func:`decide_year` runs the same data through ``decide`` itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from shadowtutor.gate import criteria, means, outcomes, serving, stats
from shadowtutor.gate.criteria import Aggregate, GateConfig, Window
from shadowtutor.testing.gatesim import Student

CATEGORY = "greeting"
METHOD = "lexical"
BETA_K = 20.0  # the similarity's beta concentration (as shadowtutor.testing.gatesim)


@dataclass
class Stream:
    """One student's days: arrays with one row per day."""

    pairs: np.ndarray  # (days,) requests asked
    ok: np.ndarray  # (days,) answered without an error or a timeout
    below: np.ndarray  # (days,) answers at or under the P95 bar
    bin_counts: np.ndarray  # (days, 101) similarity bins 0.00 .. 1.00
    bin_sums: np.ndarray  # (days, 101)
    scores: np.ndarray  # (days, 5) review scores 1..5
    latencies: list[np.ndarray] | None = None  # per day, kept for decide_year
    sims: list[np.ndarray] | None = None


def draw(
    student: Student,
    rng: np.random.Generator,
    *,
    days: int,
    pairs: int,
    reviews: int,
    bar_ms: float,
    keep: bool = False,
    only: str = "",
) -> Stream:
    """``days`` days of one student: ``pairs`` requests and ``reviews`` reviews a day;
    ``keep`` keeps the latencies and similarities themselves (for :func:`decide_year`).
    ``only`` (a criterion's key): skip drawing what that criterion does not read (zeros);
    each part has its own generator, so the parts drawn are the same either way."""
    rngs = rng.spawn(4)
    ok = rngs[0].binomial(pairs, student.success, size=days)
    answered = np.arange(pairs)[None, :] < ok[:, None]  # (days, pairs)
    shape = (days, pairs) if only in ("", "p95_latency") else (days, 0)
    lat = rngs[1].lognormal(np.log(student.latency_median_ms), student.latency_sigma, shape)
    m = student.similarity_mean
    shape = (days, pairs) if only in ("", "similarity") else (days, 0)
    sims = rngs[2].beta(m * BETA_K, (1 - m) * BETA_K, size=shape)
    answered_sims = answered[:, : shape[1]]
    answered = answered[:, : lat.shape[1]]
    scores = rngs[3].multinomial(reviews, student.score_probs, size=days)
    below = np.count_nonzero(answered & (lat <= bar_ms), axis=1)
    keys = np.round(sims, 2)  # the bins of criteria.similarity_bins
    slot = np.rint(keys * 100).astype(np.int64) + 101 * np.arange(days)[:, None]
    flat, vals = slot[answered_sims], sims[answered_sims]
    counts = np.bincount(flat, minlength=101 * days).reshape(days, 101)
    sums = np.bincount(flat, weights=vals, minlength=101 * days).reshape(days, 101)
    return Stream(
        pairs=np.full(days, pairs),
        ok=ok,
        below=below,
        bin_counts=counts,
        bin_sums=sums,
        scores=scores,
        latencies=[lat[d, : ok[d]] for d in range(days)] if keep else None,
        sims=[sims[d, : ok[d]] for d in range(days)] if keep else None,
    )


def epochs(days: int, change: int) -> list[tuple[int, int, int]]:
    """(first day, last day + 1, epoch number) of each epoch: one, or two when the criteria
    change on day ``change`` (1-based; 0: never)."""
    if not change or change > days:
        return [(0, days, 1)]
    return [(0, change - 1, 1), (change - 1, days, 2)]


def running(stream: Stream, start: int, end: int) -> dict[str, np.ndarray]:
    """The epoch's growing evidence at each of its looks: running sums from ``start``."""
    part = slice(start, end)
    return {
        "pairs": np.cumsum(stream.pairs[part]),
        "ok": np.cumsum(stream.ok[part]),
        "below": np.cumsum(stream.below[part]),
        "bin_counts": np.cumsum(stream.bin_counts[part], axis=0),
        "bin_sums": np.cumsum(stream.bin_sums[part], axis=0),
        "scores": np.cumsum(stream.scores[part], axis=0),
    }


def _may_pass(values: np.ndarray, counts: np.ndarray, bar: float, lo: float, conf: float) -> bool:
    """Whether the betting capital against "mean <= bar" reached 1/alpha: a lower bound at
    or above the bar needs it (a hair of slack for rounding; the criterion then decides)."""
    keep = counts > 0
    if not keep.any() or values[keep] @ counts[keep] < bar * counts[keep].sum():
        return False
    capital = stats.log_capital(values[keep], counts[keep], np.asarray([bar]), lo)[0]
    return bool(capital >= math.log(1 / (1 - conf)) - 1e-6)


def status_at(
    config: GateConfig, key: str, sums: dict[str, np.ndarray], i: int, conf: float
) -> str:
    """The status of criterion ``key`` on look ``i`` of an epoch (its running ``sums``), by
    the function ``decide`` runs for it; INCONCLUSIVE without running it when it cannot PASS
    (:func:`_may_pass`)."""
    n, ok = int(sums["pairs"][i]), int(sums["ok"][i])
    if key == "success_rate":
        cells = np.asarray([n - ok, ok], dtype=float)
        if not _may_pass(np.asarray([0.0, 1.0]), cells, config.min_success_rate, 0.0, conf):
            return outcomes.INCONCLUSIVE
        agg = Aggregate(pairs=n, successes=ok)
        return serving.success(config, CATEGORY, agg, conf, project=False).status
    if key == "p95_latency":
        below = int(sums["below"][i])
        if below <= 0.95 * n:  # the bound's rank is above 95 % of the requests
            return outcomes.INCONCLUSIVE
        _, hi = stats.quantile_cs_ranks(n, 0.95, confidence=conf)
        return outcomes.PASS if hi is not None and below >= hi else outcomes.INCONCLUSIVE
    if key == "review_score":
        counts = sums["scores"][i]
        scale = np.arange(1.0, 6.0)
        if not _may_pass(scale, counts.astype(float), config.min_review_score, 1.0, conf):
            return outcomes.INCONCLUSIVE
        scores = {s + 1: int(c) for s, c in enumerate(counts) if c}
        agg = Aggregate(scores=scores)
        return means.review_score(config, CATEGORY, agg, conf, project=False).status
    if key == "similarity":
        counts, totals = sums["bin_counts"][i], sums["bin_sums"][i]
        bar = config.similarity_thresholds[METHOD]
        seen = counts > 0
        centres = totals[seen] / counts[seen]  # each bin at its members' mean
        if not _may_pass(centres, counts[seen].astype(float), bar, 0.0, conf):
            return outcomes.INCONCLUSIVE
        bins = {
            round(int(b) / 100, 2): [int(c), float(t)]
            for b, c, t in zip(np.nonzero(seen)[0], counts[seen], totals[seen], strict=True)
        }
        agg = Aggregate(similarity={METHOD: bins})
        return criteria._similarity(config, CATEGORY, agg, conf, project=False).status
    raise ValueError(f"no fast look for criterion {key!r}")


def first_pass(config: GateConfig, key: str, streams: list[Stream], change: int = 0) -> int | None:
    """The first day (1-based) on which criterion ``key`` PASSes for any of the students
    (each with its own ``streams``, sharing the error budget), looked at daily; None: never.
    A GO needs every criterion of the category to pass, so this is at or before any GO."""
    days = len(streams[0].pairs)
    for start, end, epoch in epochs(days, change):
        conf, _ = criteria.error_budget(config, len(streams), 1, epoch)
        all_sums = [running(s, start, end) for s in streams]
        for i in range(end - start):
            for sums in all_sums:
                if status_at(config, key, sums, i, conf) == outcomes.PASS:
                    return start + i + 1
    return None


def day_aggregate(stream: Stream, d: int) -> Aggregate:
    """Day ``d`` of a kept stream as the gate's evidence gatherer gives it."""
    assert stream.latencies is not None and stream.sims is not None, "draw(..., keep=True)"
    counts = stream.scores[d]
    return Aggregate(
        pairs=int(stream.pairs[d]),
        successes=int(stream.ok[d]),
        latencies_ms=stream.latencies[d].tolist(),
        similarity=criteria.similarity_bins(METHOD, stream.sims[d].tolist()),
        scores={s + 1: int(c) for s, c in enumerate(counts) if c},
    )


@dataclass(frozen=True)
class Agreement:
    first_go: int | None  # the first day decide said GO for any student (1-based)
    looks: int  # (student, look) pairs compared
    differ: int  # ... where the fast status of the criterion at its bar differed from decide's
    go_without_pass: int  # looks where decide said GO but the fast criterion did not PASS


def decide_year(config: GateConfig, key: str, streams: list[Stream], change: int = 0) -> Agreement:
    """The same days through :func:`~shadowtutor.gate.criteria.decide` (every criterion, as
    the gate runs them), look by look, compared with :func:`status_at` on every look."""
    days = len(streams[0].pairs)
    first_go = None
    looks = differ = go_without = 0
    for start, end, epoch in epochs(days, change):
        conf, _ = criteria.error_budget(config, len(streams), 1, epoch)
        totals = [Aggregate() for _ in streams]
        all_sums = [running(s, start, end) for s in streams]
        for i in range(end - start):
            for stream, total, sums in zip(streams, totals, all_sums, strict=True):
                total.add(day_aggregate(stream, start + i))
                window = Window(None, None, {CATEGORY: total})
                got = criteria.decide(
                    config, window, project=False, students=len(streams), epoch=epoch
                )
                row = next(c for c in got.criteria if c.key == key)
                fast = status_at(config, key, sums, i, conf)
                looks += 1
                # The fast look reports PASS or not: a FAIL is "not PASS" there.
                differ += (row.status == outcomes.PASS) != (fast == outcomes.PASS)
                if got.outcome == criteria.GO:
                    go_without += fast != outcomes.PASS
                    first_go = first_go or start + i + 1
    return Agreement(first_go, looks, differ, go_without)


def at_p95(bar_ms: float, sigma: float = 0.5, success: float = 1.0) -> float:
    """The log-normal median that puts the P95 of every request asked exactly at ``bar_ms``
    when a share ``1 - success`` of them fail (failures count as slowest): 95 % of the
    requests are answered at or under the bar."""
    return bar_ms / math.exp(NormalDist().inv_cdf(0.95 / success) * sigma)
