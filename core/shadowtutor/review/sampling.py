"""Choosing which logged pairs go to review.

Two halves: :func:`select_ids` is pure selection logic over plain rows (tested without any
database), and :func:`sample` reads candidate rows from the shadow log with DuckDB, selects,
and returns the chosen records as log-record dicts ready for ``review.enqueue_records``.

Strategies (all deterministic for a given seed):

- ``random``: a uniform sample.
- ``stratified``: equal shares of each language x category cell, so rare cells are seen;
  a cell with too few pairs gives its share to the others.
- ``lowest_similarity``: the pairs where the student differed most from the teacher.
- ``student_errors``: pairs where the student failed or timed out.
- ``negative_feedback``: pairs whose answer users reacted badly to (thumbs down, a low rating,
  a correction, a flag, a regenerate: :func:`shadowtutor.log.feedback.negative_sql`).
- ``router_sides``: pairs the request router scored (routed mode), from both sides of its
  threshold: equal shares of those at or above it, those below it, and those of categories
  without a certified threshold, each drawn uniformly within its side, so every pair's
  inclusion probability is known (its side's draws over its side's pairs) and each chosen pair
  carries its design weight like ``judge_unsure``'s: the router's audit and the next version's
  labels stay unbiased although the student served only one side.
- ``judge_unsure``: pairs the LLM judge is unsure of are picked more often (its two answer
  orders disagree, it prefers different answers in the two orders, its score disagrees with
  the similarity, or it has not scored the pair), yet the gate's estimate stays unbiased: half
  of the sampling weight is uniform, every pair's inclusion probability is known
  (:func:`inclusion_probabilities`, drawn exactly by systematic sampling), and each chosen pair
  carries its design weight (:func:`design_weights`) into the review item, which the gate's
  prediction-powered mean uses as an inverse-probability weight. The chosen pairs are queued in
  random order, so a queue that is only partly reviewed is still a random part of the sample.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import duckdb

from shadowtutor.errors import ShadowTutorError
from shadowtutor.judge import calibration
from shadowtutor.log import feedback
from shadowtutor.log.schema import DEFAULT_STUDENT, SOURCES

STRATEGIES = (
    "random",
    "stratified",
    "lowest_similarity",
    "student_errors",
    "judge_unsure",
    "negative_feedback",
    "router_sides",
)
STRATEGY_HELP = {
    "random": "a uniform random sample",
    "stratified": "equal shares of each language x category",
    "lowest_similarity": "lowest teacher-student similarity first",
    "student_errors": "student errors and timeouts",
    "judge_unsure": "more of the pairs the LLM judge is unsure of (weighted, so unbiased)",
    "negative_feedback": "pairs with negative feedback from users (thumbs down, a low rating, "
    "a correction, a flag, a regenerate)",
    "router_sides": "both sides of the request router's threshold (weighted, so unbiased)",
}
UNIFORM_SHARE = 0.5  # judge_unsure: the share of the sampling weight spread evenly
# judge_unsure trusts the judge's uncertainty only once the judge is calibrated: unequal
# weights cost variance, which only a judge that tracks people pays back. Below this weighted
# kappa (or with fewer pairs scored by both) the strategy samples uniformly and says so. The
# gate uses the judge by the same rule (shadowtutor.judge.calibration).
MIN_JUDGE_KAPPA = calibration.MIN_JUDGE_KAPPA
MIN_CALIBRATION_PAIRS = calibration.MIN_CALIBRATION_PAIRS
MAX_SIZE = 10_000


class SamplingError(ShadowTutorError, ValueError):
    """Sampling parameters that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class Filters:
    """Which pairs are candidates. Dates are inclusive days in UTC."""

    start: date | None = None
    end: date | None = None
    source: str | None = None
    language: str | None = None
    category: str | None = None
    student: str | None = None  # one student's pairs (``student_name``); None: all students

    def checked(self) -> Filters:
        if self.start and self.end and self.start > self.end:
            raise SamplingError(f"the start date {self.start} is after the end date {self.end}")
        if self.source and self.source not in SOURCES:
            raise SamplingError(f"unknown source {self.source!r}; use one of: {', '.join(SOURCES)}")
        return self


# --- pure selection ----------------------------------------------------------------------


def is_student_failure(row: dict[str, Any]) -> bool:
    """The student errored (timeouts are recorded as errors) or returned no answer."""
    if row.get("student_error"):
        return True
    return bool(row.get("student_model")) and row.get("student_response_missing", False)


def select_ids(
    rows: Iterable[dict[str, Any]], *, strategy: str, size: int, seed: int = 0
) -> list[str]:
    """Pick up to ``size`` ids from candidate rows (dicts with at least ``id``; also
    ``language``, ``category``, ``similarity``, ``student_error`` as the strategy needs).

    The result does not depend on the order of ``rows``: they are sorted by id first.
    """
    if strategy not in STRATEGIES:
        raise SamplingError(f"unknown strategy {strategy!r}; use one of: {', '.join(STRATEGIES)}")
    if size < 1 or size > MAX_SIZE:
        raise SamplingError(f"the sample size must be 1 to {MAX_SIZE:,}, not {size}")
    ordered = _ordered(rows)
    rng = random.Random(seed)
    if strategy == "random":
        return [str(r["id"]) for r in rng.sample(ordered, min(size, len(ordered)))]
    if strategy == "lowest_similarity":
        scored = [r for r in ordered if r.get("similarity") is not None]
        scored.sort(key=lambda r: (float(r["similarity"]), str(r["id"])))
        return [str(r["id"]) for r in scored[:size]]
    if strategy == "student_errors":
        failed = [r for r in ordered if is_student_failure(r)]
        return [str(r["id"]) for r in rng.sample(failed, min(size, len(failed)))]
    if strategy == "negative_feedback":
        disliked = [r for r in ordered if r.get("negative_feedback")]
        return [str(r["id"]) for r in rng.sample(disliked, min(size, len(disliked)))]
    if strategy == "judge_unsure":
        return _systematic(ordered, inclusion_probabilities(ordered, size), rng)
    if strategy == "router_sides":
        sides = router_sides(ordered)
        taken = side_allocation({k: len(v) for k, v in sides.items()}, size)
        return [str(r["id"]) for k, v in sides.items() for r in rng.sample(v, taken[k])]
    return _stratified(ordered, size, rng)


def side_of(row: dict[str, Any]) -> str | None:
    """``above`` / ``below`` the router's threshold, ``uncertified`` (its category had no
    threshold), or None (no router scored the pair)."""
    score, limit = row.get("router_score"), row.get("router_threshold")
    if score is None:
        return None
    if limit is None:
        return "uncertified"
    return "above" if float(score) >= float(limit) else "below"


def router_sides(rows: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    sides: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        side = side_of(row)
        if side is not None:
            sides.setdefault(side, []).append(row)
    return dict(sorted(sides.items()))


def side_allocation(counts: Mapping[str, int], size: int) -> dict[str, int]:
    """Draws per side: equal shares of ``size``, a side with fewer pairs giving the rest to
    the others. Depends on the counts only, so each pair's inclusion probability is known."""
    taken = dict.fromkeys(counts, 0)
    left = min(size, sum(counts.values()))
    while left > 0:
        open_ = [k for k in sorted(counts) if taken[k] < counts[k]]
        share = max(1, left // len(open_))
        for k in open_:
            step = min(share, counts[k] - taken[k], left)
            taken[k] += step
            left -= step
            if left == 0:
                break
    return taken


def side_weights(rows: Iterable[dict[str, Any]], size: int) -> dict[str, float]:
    """id -> design weight of every pair the router scored: the overall rate over its side's
    inclusion probability (draws / pairs of its side)."""
    sides = router_sides(_ordered(rows))
    counts = {k: len(v) for k, v in sides.items()}
    taken = side_allocation(counts, size)
    total = sum(counts.values())
    rate = min(1.0, size / total) if total else 1.0
    return {
        str(r["id"]): rate / (taken[k] / counts[k])
        for k, v in sides.items()
        if taken[k] > 0
        for r in v
    }


def _ordered(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per id, sorted by id: selection never depends on the order rows came in."""
    return sorted({str(r["id"]): r for r in rows}.values(), key=lambda r: str(r["id"]))


def judge_trusted(kappa: float | None, pairs: int) -> tuple[bool, str]:
    """Whether ``judge_unsure`` may follow the judge's uncertainty, and if not, why (the
    judge's weighted kappa against people on ``pairs`` pairs both scored)."""
    if pairs < MIN_CALIBRATION_PAIRS:
        return False, (
            f"judge_unsure sampled uniformly: only {pairs:,} pairs are scored by both the judge "
            f"and a reviewer (it needs {MIN_CALIBRATION_PAIRS}) to know the judge is calibrated"
        )
    if kappa is None or kappa != kappa or kappa < MIN_JUDGE_KAPPA:
        shown = "n/a" if kappa is None or kappa != kappa else f"{kappa:.2f}"
        return False, (
            f"judge_unsure sampled uniformly: the judge's weighted kappa against reviewers is "
            f"{shown}, below {MIN_JUDGE_KAPPA}; its uncertainty would only add variance"
        )
    return True, ""


def judge_uncertainty(row: dict[str, Any]) -> float:
    """How unsure the LLM judge is about a pair, in [0, 1] (1: it knows nothing).

    From the row's ``judge_student`` (the judge's student score, mean of both orders, 1..5),
    ``judge_spread`` (|order 1 - order 2| of that score), ``judge_consistent`` (the same
    answer preferred in both orders) and ``similarity``: the largest of the orders'
    disagreement (2 points or more: 1), a flipped preference (0.5), and the gap between the
    judge's score and the similarity on one 0..1 scale. A pair the judge has not scored: 1.
    """
    score = row.get("judge_student")
    if score is None:
        return 1.0
    parts = [min(1.0, float(row.get("judge_spread") or 0.0) / 2)]
    if row.get("judge_consistent") is False:
        parts.append(0.5)
    if row.get("similarity") is not None:
        parts.append(min(1.0, abs((float(score) - 1) / 4 - float(row["similarity"]))))
    return max(parts)


def inclusion_probabilities(
    rows: list[dict[str, Any]], size: int, *, uniform_share: float = UNIFORM_SHARE
) -> list[float]:
    """Each row's probability of being picked by ``judge_unsure`` (summing to ``size``, or to
    every row when there are fewer): proportional to ``uniform_share + (1 - uniform_share) *
    u / mean(u)`` of the judge's uncertainty ``u``, capped at 1 (the excess goes to the
    others). The uniform share bounds every design weight by ``1 / uniform_share``."""
    n = len(rows)
    if n == 0:
        return []
    if size >= n:
        return [1.0] * n
    u = [judge_uncertainty(r) for r in rows]
    mean_u = sum(u) / n
    raw = [uniform_share + (1 - uniform_share) * (x / mean_u if mean_u > 0 else 1.0) for x in u]
    probs = [0.0] * n
    free, budget = list(range(n)), float(size)
    while True:  # cap at 1 and share the excess among the rest, until nothing is capped
        total = sum(raw[i] for i in free)
        capped = [i for i in free if budget * raw[i] / total >= 1.0]
        if not capped:
            for i in free:
                probs[i] = budget * raw[i] / total
            return probs
        for i in capped:
            probs[i] = 1.0
        budget -= len(capped)
        free = [i for i in free if i not in set(capped)]


def design_weights(rows: Iterable[dict[str, Any]], size: int) -> dict[str, float]:
    """id -> design weight of every candidate: the uniform rate ``size / len(rows)`` over its
    inclusion probability (1 for every pair under uniform sampling; below 1 for the pairs
    picked more often). The gate weights each review by it."""
    rows = _ordered(rows)
    probs = inclusion_probabilities(rows, size)
    rate = min(1.0, size / len(rows)) if rows else 1.0
    return {str(r["id"]): rate / p for r, p in zip(rows, probs, strict=True) if p > 0}


def _systematic(rows: list[dict[str, Any]], probs: list[float], rng: random.Random) -> list[str]:
    """Exactly ``round(sum(probs))`` rows, each with its probability: systematic sampling
    over a random order (one random start, then every whole step of the running total)."""
    order = list(range(len(rows)))
    rng.shuffle(order)
    start, total, chosen = rng.random(), 0.0, []
    for i in order:
        before, total = total, total + probs[i]
        if math.floor(total - start) > math.floor(before - start) or probs[i] >= 1.0:
            chosen.append(str(rows[i]["id"]))
    return chosen


def stratum(row: dict[str, Any]) -> tuple[str, str]:
    return (row.get("language") or "unknown", row.get("category") or "unknown")


def _stratified(rows: list[dict[str, Any]], size: int, rng: random.Random) -> list[str]:
    cells: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        cells[stratum(row)].append(row)
    queues = []
    for key in sorted(cells):
        members = cells[key][:]
        rng.shuffle(members)
        queues.append(members)
    chosen: list[str] = []
    # Round robin: each cell gives one pair a turn, so shares stay equal until a cell runs
    # out and the remaining cells fill its place.
    depth = 0
    while len(chosen) < size and any(depth < len(q) for q in queues):
        for members in queues:
            if depth < len(members) and len(chosen) < size:
                chosen.append(str(members[depth]["id"]))
        depth += 1
    return chosen


# --- reading the log ---------------------------------------------------------------------

_CANDIDATES = """
SELECT id, ts, source, language, category, similarity, student_error, student_model,
       student_response IS NULL AS student_response_missing, router_score, router_threshold,
       {disliked} AS negative_feedback
FROM pairs
WHERE id IS NOT NULL
"""
# read only for the rule that needs it: the users' feedback is another part of the log
_DISLIKED = f"request_id IN ({feedback.DISLIKED_SQL})"


def _day_bounds(filters: Filters) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    params: list[Any] = []
    if filters.start:
        where.append("ts >= ?")
        params.append(datetime.combine(filters.start, time()))
    if filters.end:
        where.append("ts < ?")
        params.append(datetime.combine(filters.end + timedelta(days=1), time()))
    for column in ("source", "language", "category"):
        value = getattr(filters, column)
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if filters.student:
        where.append("student_name = ?")
        params.append(filters.student)
    return where, params


def candidates(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    exclude: set[str] | None = None,
    *,
    feedback: bool = False,
) -> list[dict[str, Any]]:
    """Candidate rows from the ``pairs`` view that match the filters and are not excluded
    (with ``feedback``: whether users disliked each, from the ``feedback`` view)."""
    where, params = _day_bounds(filters.checked())
    select = _CANDIDATES.format(disliked=_DISLIKED if feedback else "false")
    sql = select + "".join(f" AND {w}" for w in where)
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    exclude = exclude or set()
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall() if row[0] not in exclude]


def fetch_records(con: duckdb.DuckDBPyConnection, ids: list[str]) -> list[dict[str, Any]]:
    """The full records for ``ids``, in the order of ``ids``, as log-record dicts."""
    if not ids:
        return []
    cur = con.execute(
        "SELECT id, ts, source, user_hash, conversation_id, category, language, messages, "
        "teacher, student, similarity, routing, metadata, coalesce(request_id, id) AS request_id, "
        f"coalesce(student_name, '{DEFAULT_STUDENT}') AS student_name, "
        "coalesce(protocol, 'openai.chat') AS protocol, request, agreement FROM raw_pairs "
        "WHERE id IN (SELECT unnest(?::VARCHAR[]))",
        [ids],
    )
    names = [d[0] for d in cur.description]
    found: dict[str, dict[str, Any]] = {}
    for row in cur.fetchall():
        record = dict(zip(names, row, strict=True))
        for key in ("messages", "metadata"):
            if isinstance(record[key], str):
                record[key] = json.loads(record[key])
        record["metadata"] = record["metadata"] or {}
        _decode_nested(record)
        found.setdefault(record["id"], record)
    return [found[i] for i in ids if i in found]


def _decode_nested(record: dict[str, Any]) -> None:
    """The JSON members of the record's structs (DuckDB gives them as text), decoded; a
    record before version 3 gets the plain request it asked."""
    nested = (("teacher", "tool_calls"), ("student", "tool_calls"))
    more = (("request", "tools"), ("request", "features"), ("agreement", "details"))
    for outer, inner in (*nested, *more):
        part = record.get(outer)
        if isinstance(part, dict) and isinstance(part.get(inner), str):
            part[inner] = json.loads(part[inner])
    request = record.get("request")
    if not isinstance(request, dict) or request.get("kind") is None:
        record["request"] = dict.fromkeys(("tools", "tools_hash", "schema_hash", "features")) | {
            "kind": "plain"
        }


@dataclass(frozen=True)
class Sample:
    strategy: str
    candidates: int
    records: list[dict[str, Any]]
    weights: dict[str, float] = field(default_factory=dict)  # id -> design weight (judge_unsure)
    note: str = ""  # what the strategy did differently, in words (e.g. a uniform fallback)


def sample(
    con: duckdb.DuckDBPyConnection,
    *,
    strategy: str,
    size: int,
    seed: int = 0,
    filters: Filters | None = None,
    exclude: set[str] | None = None,
    judged: Mapping[str, Mapping[str, Any]] | None = None,
    note: str = "",
) -> Sample:
    """Select pairs from the log (skipping ``exclude``, e.g. ids already queued).

    ``judged`` (pair id -> ``judge_student``, ``judge_spread``, ``judge_consistent``) is what
    ``judge_unsure`` weighs; the chosen pairs' design weights come back in ``weights``."""
    rows = candidates(con, filters or Filters(), exclude, feedback=strategy == "negative_feedback")
    if judged:
        for row in rows:
            row.update(judged.get(str(row["id"]), {}))
    ids = select_ids(rows, strategy=strategy, size=size, seed=seed)
    weights = {}
    if strategy in ("judge_unsure", "router_sides"):
        every = (
            design_weights(rows, size) if strategy == "judge_unsure" else side_weights(rows, size)
        )
        weights = {i: every[i] for i in ids}
    return Sample(
        strategy=strategy,
        candidates=len(rows),
        records=fetch_records(con, ids),
        weights=weights,
        note=note,
    )


def today_utc() -> date:
    return datetime.now(UTC).date()
