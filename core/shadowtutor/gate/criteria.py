"""The deploy gate: criteria from a versioned TOML file, and ``decide(config, window)``.

``decide`` is a pure function over plain data (the window's aggregates, gathered from the log
and the review database by :mod:`shadowtutor.gate.evidence`), so the same decision can be
replayed over any past window. Each criterion is PASS only when its confidence bound clears the
threshold, FAIL only when the bound on the other side misses it, INCONCLUSIVE otherwise (too few
samples or no data is never PASS). Storing decisions and approvals is
:mod:`shadowtutor.gate.decisions`.
"""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from shadowtutor.errors import ShadowTutorError
from shadowtutor.gate import guard_config, means, outcomes, serving, simbar, stats
from shadowtutor.gate.outcomes import (
    FAIL,
    INCONCLUSIVE,
    LEFT_OUT,
    PASS,
    Criterion,
    inconclusive,
    mean_missing,
    scaled_needed,
    three_way,
)

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "data" / "gate.toml"
GO, NO_GO = "GO", "NO_GO"
# How an outcome reads to people (CLI, pages, charts): the one place these words are written.
LABELS = {GO: "GO", NO_GO: "NO-GO", INCONCLUSIVE: "NOT ENOUGH DATA"}
ALL = "all"  # the category label of criteria that look at every category
PLAIN = "plain"
# The traffic kinds of a request (the record's ``request.kind``; collect.openai_shape).
KINDS = ("plain", "tools", "json_object", "json_schema", "images")


class GateConfigError(ShadowTutorError, ValueError):
    """The gate's criteria file cannot be used; the message names the file and the key."""


def label(outcome: str | None, default: str = "not evaluated") -> str:
    """The outcome as people read it (``NO_GO`` -> ``NO-GO``); ``default`` for no decision."""
    return LABELS.get(outcome or "", default)


# --- config ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    percent: int
    min_requests: int = 0
    min_hours: float = 0.0


@dataclass(frozen=True)
class GateConfig:
    version: str
    hash: str
    path: str
    confidence: float
    window_days: float
    review_window_days: float
    bootstrap_resamples: int
    bootstrap_seed: int
    min_pairs: int
    min_reviews: int
    min_review_score: float
    max_p95_latency_ms: float
    min_success_rate: float
    min_similarity_pairs: int
    similarity_thresholds: Mapping[str, float]
    critical_review_tags: tuple[str, ...]
    critical_review_tag_kinds: tuple[str, ...]
    critical_error_kinds: tuple[str, ...]
    critical_max_allowed: int
    categories: tuple[str, ...]
    salt: str
    failures_to_rollback: int
    stages: tuple[Stage, ...]
    # The judge and the teacher comparison (defaults keep older criteria files loading).
    use_judge: bool = True  # combine judge scores with human reviews (prediction-powered)
    compare_with_teacher: bool = False  # the optional paired non-inferiority criterion
    teacher_margin: float = 0.3  # the student may be at most this much worse (1..5 scale)
    # Requests other than plain chat, gated per kind (gate.kinds): the kinds the gate may
    # release and the thresholds of their own criteria.
    kinds: tuple[str, ...] = KINDS
    min_tool_agreement: float = 0.9  # share of tools pairs whose calls agree in full
    min_json_validity: float = 0.98  # share of JSON answers that parse and fit the schema
    # Users' reactions during a rollout, student-served against teacher-served (gate.guard).
    guard: guard_config.GuardConfig = field(default_factory=guard_config.GuardConfig)

    def stage_index(self, percent: int) -> int:
        for i, stage in enumerate(self.stages):
            if stage.percent == percent:
                return i
        raise GateConfigError(f"stage {percent}% is not one of the stages in {self.path}")


def load_config(path: str | Path | None = None) -> GateConfig:
    """Read and check a criteria file (the shipped defaults when ``path`` is empty)."""
    path = Path(path).expanduser() if path else DEFAULT_CONFIG
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise GateConfigError(
            f"cannot read the gate config {path} ({exc.strerror}); fix SHADOWTUTOR_GATE_CONFIG "
            "or unset it to use the shipped defaults"
        ) from None
    try:
        data = tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise GateConfigError(f"{path} is not valid TOML: {exc}") from None
    return parse_config(data, hash_=hashlib.sha256(raw).hexdigest(), path=str(path))


def parse_config(data: Mapping[str, Any], *, hash_: str = "", path: str = "<dict>") -> GateConfig:
    def get(section: str | None, key: str, kind: type, default: Any = ...) -> Any:
        table = data if section is None else data.get(section, {})
        name = key if section is None else f"[{section}] {key}"
        if key not in table:
            if default is ...:
                raise GateConfigError(f"{path}: missing {name}")
            return default
        value = table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise GateConfigError(f"{path}: {name} must be a {kind.__name__}, got {value!r}")
        return value

    confidence = get(None, "confidence", float, 0.95)
    if not 0.5 <= confidence < 1:
        raise GateConfigError(f"{path}: confidence must be between 0.5 and 1, got {confidence}")
    kinds = tuple(str(k) for k in get("eligibility", "kinds", list, list(KINDS)))
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise GateConfigError(
            f"{path}: [eligibility] kinds has unknown kind(s) {', '.join(unknown)}; "
            f"use {', '.join(KINDS)}"
        )
    sim = data.get("similarity", {}).get("thresholds", {})
    for method, value in sim.items():
        if not isinstance(value, int | float) or not 0 <= value <= 1:
            raise GateConfigError(f"{path}: [similarity.thresholds] {method} must be in 0..1")
    rollout = data.get("rollout", {})
    stages = tuple(
        Stage(
            int(s.get("percent", -1)), int(s.get("min_requests", 0)), float(s.get("min_hours", 0))
        )
        for s in rollout.get("stages", [{"percent": p} for p in (0, 10, 25, 50, 100)])
    )
    percents = [s.percent for s in stages]
    if not percents or percents[0] != 0 or percents[-1] != 100 or percents != sorted(set(percents)):
        raise GateConfigError(
            f"{path}: [[rollout.stages]] percents must rise strictly from 0 to 100, got {percents}"
        )

    def strs(section: str, key: str) -> tuple[str, ...]:
        return tuple(str(x) for x in get(section, key, list, []))

    try:
        guard = guard_config.parse(data.get("guard", {}))
    except guard_config.GuardConfigError as exc:
        raise GateConfigError(f"{path}: {exc}") from None

    return GateConfig(
        version=str(get(None, "version", str, "unversioned")),
        hash=hash_
        or hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest(),
        path=path,
        confidence=confidence,
        window_days=get(None, "window_days", float, 14.0),
        review_window_days=get(
            None, "review_window_days", float, get(None, "window_days", float, 14.0)
        ),
        bootstrap_resamples=get(None, "bootstrap_resamples", int, 2000),
        bootstrap_seed=get(None, "bootstrap_seed", int, 0),
        min_pairs=get("criteria", "min_pairs", int, 1000),
        min_reviews=get("criteria", "min_reviews", int, 100),
        min_review_score=get("criteria", "min_review_score", float, 4.0),
        max_p95_latency_ms=get("criteria", "max_p95_latency_ms", float, 1500.0),
        min_success_rate=get("criteria", "min_success_rate", float, 0.98),
        min_similarity_pairs=get("criteria", "min_similarity_pairs", int, 30),
        similarity_thresholds={str(k): float(v) for k, v in sim.items()},
        critical_review_tags=strs("critical", "review_tags"),
        critical_review_tag_kinds=strs("critical", "review_tag_kinds"),
        critical_error_kinds=tuple(k.lower() for k in strs("critical", "error_kinds")),
        critical_max_allowed=get("critical", "max_allowed", int, 0),
        categories=strs("eligibility", "categories"),
        salt=str(get("rollout", "salt", str, "shadowtutor-rollout-1")),
        failures_to_rollback=max(1, get("rollout", "failures_to_rollback", int, 3)),
        stages=stages,
        use_judge=get("judge", "use", bool, True),
        compare_with_teacher=get("criteria", "compare_with_teacher", bool, False),
        teacher_margin=get("criteria", "teacher_margin", float, 0.3),
        kinds=kinds,
        min_tool_agreement=_share(get("criteria", "min_tool_agreement", float, 0.9), path),
        min_json_validity=_share(get("criteria", "min_json_validity", float, 0.98), path),
        guard=guard,
    )


def _share(value: float, path: str) -> float:
    if not 0 <= value <= 1:
        raise GateConfigError(f"{path}: [criteria] shares must be in 0..1, got {value}")
    return value


# --- the window: plain aggregates --------------------------------------------------------

# A key of ``Aggregate.ratings``: (human student, human teacher, judge student, judge teacher)
# scores, None where missing, and a fifth element, the design weight, when it is not 1.
RatingKey = tuple[float | None, ...]


@dataclass
class Aggregate:
    """What the gate needs to know about one category in one stretch of time: its plain
    requests, and in ``kinds`` one aggregate per other kind of request (tools, json_schema...)
    that the category had."""

    pairs: int = 0  # pairs where the student was asked (and its server took the request)
    successes: int = 0  # ... and answered without an error or a timeout
    latencies_ms: list[float] = field(default_factory=list)  # of the successful answers
    similarity: dict[str, dict[float, list[float]]] = field(
        default_factory=dict
    )  # method -> bin -> [count, sum]
    scores: dict[int, int] = field(default_factory=dict)  # review student_score -> count
    critical: int = 0
    critical_examples: list[str] = field(default_factory=list)
    # Scores of the pairs people reviewed or the judge scored, as
    # (human student, human teacher, judge student, judge teacher) -> count; None where that
    # score is missing. Human scores also count in ``scores``; judge ones never do.
    ratings: dict[RatingKey, int] = field(default_factory=dict)
    # The student's server refused the request's feature (an error "unsupported: ..."):
    # counted apart, neither a pair of the success rate nor a failure.
    unsupported: int = 0
    tools_compared: int = 0  # answered pairs compared by their tool calls
    tools_agreed: int = 0  # ... whose calls agree in full (same functions, same arguments)
    json_checked: int = 0  # answered pairs of a JSON request, checked against the schema
    json_valid: int = 0  # ... whose JSON parses and validates
    kinds: dict[str, Aggregate] = field(default_factory=dict)  # kind -> its aggregate
    # The reviewed pairs' (similarity rounded to 0.01, human score) -> count, per similarity
    # method: the similarity criterion's calibration (:mod:`shadowtutor.gate.simbar`). None:
    # not gathered (simulated windows, older callers): the criteria file's bar applies as is.
    sim_reviews: dict[str, dict[tuple[float, float], int]] | None = None

    def of_kind(self, kind: str) -> Aggregate:
        """The aggregate of ``kind``'s requests: this one for plain, else its own."""
        return self if kind == PLAIN else self.kinds.setdefault(kind, Aggregate())

    def add(self, other: Aggregate) -> Aggregate:
        self.pairs += other.pairs
        self.successes += other.successes
        self.unsupported += other.unsupported
        self.tools_compared += other.tools_compared
        self.tools_agreed += other.tools_agreed
        self.json_checked += other.json_checked
        self.json_valid += other.json_valid
        for kind, sub in other.kinds.items():
            self.of_kind(kind).add(sub)
        self.latencies_ms.extend(other.latencies_ms)
        for method, bins in other.similarity.items():
            mine = self.similarity.setdefault(method, {})
            for key, (count, total) in bins.items():
                slot = mine.setdefault(key, [0, 0.0])
                slot[0] += count
                slot[1] += total
        for score, count in other.scores.items():
            self.scores[score] = self.scores.get(score, 0) + count
        for rating, count in other.ratings.items():
            self.ratings[rating] = self.ratings.get(rating, 0) + count
        if other.sim_reviews is not None:
            mine_sr = self.sim_reviews = self.sim_reviews or {}
            for method, cells in other.sim_reviews.items():
                slots = mine_sr.setdefault(method, {})
                for cell, count in cells.items():
                    slots[cell] = slots.get(cell, 0) + count
        self.critical += other.critical
        self.critical_examples.extend(
            other.critical_examples[: max(0, 5 - len(self.critical_examples))]
        )
        return self

    @property
    def reviews(self) -> int:
        return sum(self.scores.values())


def similarity_bins(method: str, scores: Iterable[float]) -> dict[str, dict[float, list[float]]]:
    """Group similarity scores into 0.01-wide bins keeping each bin's count and sum, so the
    bootstrap can work on a hundred bins (each at its members' mean) instead of every pair."""
    values = np.asarray(list(scores), dtype=float)
    keys, inverse = np.unique(np.round(values, 2), return_inverse=True)
    counts = np.bincount(inverse, minlength=len(keys))
    sums = np.bincount(inverse, weights=values, minlength=len(keys))
    bins = {float(k): [int(c), float(t)] for k, c, t in zip(keys, counts, sums, strict=True)}
    return {method: bins}


@dataclass
class Window:
    start: datetime | None
    end: datetime | None
    categories: dict[str, Aggregate]
    judge: dict[str, Any] | None = None  # the judge behind ``ratings``: version, calibration

    def fingerprint(self) -> str:
        """Hash of the data (not of the dates): the same evidence gives the same fingerprint."""
        h = hashlib.sha256()
        for name in sorted(self.categories):
            _hash_aggregate(h, name, self.categories[name])
        return h.hexdigest()[:32]


def _hash_aggregate(h: Any, name: str, agg: Aggregate) -> None:
    """Add one aggregate (and its kinds') to the hash ``h``; a window without the newer
    counts (unsupported, tool and JSON checks, kinds) hashes as it did before them."""
    h.update(name.encode())
    h.update(json.dumps([agg.pairs, agg.successes, agg.critical]).encode())
    h.update(np.sort(np.asarray(agg.latencies_ms, dtype=float)).tobytes())
    sim = {
        m: sorted((k, v[0], round(v[1], 9)) for k, v in b.items())
        for m, b in agg.similarity.items()
    }
    h.update(json.dumps(sim, sort_keys=True).encode())
    h.update(json.dumps(sorted(agg.scores.items())).encode())
    if agg.ratings:  # (absent from older windows: their fingerprints do not change)
        h.update(json.dumps(sorted(agg.ratings.items(), key=str)).encode())
    if agg.sim_reviews:
        cells = {m: sorted(c.items()) for m, c in agg.sim_reviews.items()}
        h.update(json.dumps(cells, sort_keys=True).encode())
    extra = [agg.unsupported, agg.tools_compared, agg.tools_agreed, agg.json_checked]
    if any(extra) or agg.json_valid:
        h.update(json.dumps([*extra, agg.json_valid]).encode())
    for kind in sorted(agg.kinds):
        _hash_aggregate(h, f"{name}/{kind}", agg.kinds[kind])


# --- criteria and decisions --------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    outcome: str  # GO | NO_GO | INCONCLUSIVE
    eligible: tuple[str, ...]  # categories whose criteria all PASS
    category_status: dict[str, str]
    criteria: tuple[Criterion, ...]
    critical_failure: bool
    summary: str
    config_version: str
    config_hash: str
    data_fingerprint: str
    window_start: datetime | None
    window_end: datetime | None
    judge: dict[str, Any] | None = None  # judge version and calibration, when one was used
    budget: str = ""  # how the error budget is split (:func:`error_budget`)
    epoch: dict[str, str] | None = None  # since when the evidence accumulated, and why
    # Per category, the other kinds of request it had (tools, json_schema...), each decided
    # on its own criteria: kind -> PASS | FAIL | INCONCLUSIVE, and the kinds that PASS (a
    # GO for (student, category, kind); ``eligible`` is the plain requests' GO).
    kind_status: dict[str, dict[str, str]] = field(default_factory=dict)
    eligible_kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def evidence(self) -> dict[str, Any]:
        """JSON-ready evidence stored with the decision."""
        out = {
            "summary": self.summary,
            "eligible": list(self.eligible),
            "category_status": self.category_status,
            "critical_failure": self.critical_failure,
            "criteria": [_clean(asdict(c)) for c in self.criteria],
        }
        if self.judge:
            out["judge"] = self.judge
        if self.budget:
            out["budget"] = self.budget
        if self.epoch:
            out["epoch"] = self.epoch
        if self.kind_status:
            out["kind_status"] = self.kind_status
            out["eligible_kinds"] = {c: list(k) for c, k in self.eligible_kinds.items()}
        return out


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


def error_budget(
    config: GateConfig, students: int, categories: int, epoch: int = 1, kinds: int = 0
) -> tuple[float, str]:
    """The confidence of each bound and the budget in words. One error budget (1 -
    ``confidence``) for the family: a wrong GO is a wrong claim about one (student, category),
    so the budget is split evenly over the students under test times the candidate categories
    (Bonferroni). Within a category every criterion must PASS (an intersection-union test):
    a category wrongly declared ready needs the criterion it misses to pass wrongly, so the
    criteria need no split of their own. Each evidence epoch of a student is a new test: the
    ``epoch``-th (1-based) spends ``0.8 * 0.2**(epoch - 1)`` of the budget (80 %, 16 %, 3.2 %,
    ...: the shares add up to 1; new epochs are rare, so the first keeps most). ``kinds``:
    the (category, kind) cells of requests other than plain under test, each a claim of its
    own (a GO for a kind is a claim about (student, category, kind))."""
    alpha = 1 - config.confidence
    claims = max(1, students) * (max(1, categories) + max(0, kinds))
    spent = 0.8 * 0.2 ** (max(1, epoch) - 1)
    each = alpha * spent / claims
    words = (
        f"error budget {alpha:.0%} for the family: epoch {max(1, epoch)} spends {spent:.0%} "
        f"of it, over {max(1, students)} student(s) x {max(1, categories)} "
        f"categor{'y' if categories == 1 else 'ies'}"
        + (f" (+ {kinds} category/kind cell{'' if kinds == 1 else 's'})" if kinds > 0 else "")
        + f" = {claims} claim(s): {each:.3%} each; "
        "within a category every criterion must pass, so criteria share their category's part"
    )
    return 1 - each, words


def decide(
    config: GateConfig,
    window: Window,
    *,
    project: bool = True,
    students: int = 1,
    epoch: int = 1,
) -> Decision:
    """The gate's decision for one window. Pure: same config and data, same decision.

        Every bound is anytime valid (see :mod:`shadowtutor.gate.stats`): it holds however often
        the gate is evaluated, so a GO reached early stands. ``students``: how many students are
        under test at once and ``epoch`` is the student's how-manieth evidence epoch (both spend the
    error budget, :func:`error_budget`). ``project=False``
        skips working out how many more samples each undecided criterion needs (simulations)."""
    candidates = list(config.categories) or sorted(window.categories)
    cells = {cat: gated_kinds(config, window.categories.get(cat)) for cat in candidates}
    conf, budget = error_budget(
        config, students, len(candidates), epoch, kinds=sum(map(len, cells.values()))
    )
    criteria: list[Criterion] = [_critical(config, window)]
    status: dict[str, str] = {}
    kind_status: dict[str, dict[str, str]] = {}
    for cat in candidates:
        agg = window.categories.get(cat, Aggregate())
        rows = [
            _pairs(config, cat, agg),
            _similarity(config, cat, agg, conf, project),
            means.review_score(config, cat, agg, conf, project),
            serving.p95(config, cat, agg, conf, project),
            serving.success(config, cat, agg, conf, project),
        ]
        if config.compare_with_teacher:
            rows.append(means.teacher_gap(config, cat, agg, conf, project))
        criteria.extend(rows)
        status[cat] = _status(rows)
        for kind in cells[cat]:
            rows = kind_rows(config, cat, kind, window.categories[cat].of_kind(kind), conf, project)
            criteria.extend(rows)
            kind_status.setdefault(cat, {})[kind] = _status(rows)
    critical_failure = criteria[0].status == FAIL
    eligible = () if critical_failure else tuple(c for c in candidates if status[c] == PASS)
    eligible_kinds = {
        cat: ready
        for cat, states in kind_status.items()
        if not critical_failure and (ready := tuple(k for k, v in states.items() if v == PASS))
    }
    released = [*eligible, *(f"{c} {k}" for c, ks in eligible_kinds.items() for k in ks)]
    failing = FAIL in status.values() or any(FAIL in v.values() for v in kind_status.values())
    if critical_failure:
        outcome, summary = NO_GO, f"{LABELS[NO_GO]}: critical errors. {criteria[0].missing}"
    elif released:
        outcome, summary = (
            GO,
            f"GO for {', '.join(released)}: every criterion's bound clears its threshold.",
        )
    elif failing:
        failed = [c for c in criteria if c.status == FAIL]
        outcome = NO_GO
        summary = (
            f"{LABELS[NO_GO]}: "
            + "; ".join(
                f"{c.category}{'' if c.kind == PLAIN else ' ' + c.kind} {c.label.lower()}"
                for c in failed
            )
            + " failed."
        )
    else:
        outcome = INCONCLUSIVE
        first = next((c for c in criteria if c.status == INCONCLUSIVE), None)
        summary = LABELS[INCONCLUSIVE] + (f": {first.missing}" if first else "")
    return Decision(
        outcome=outcome,
        eligible=eligible,
        category_status=status,
        criteria=tuple(criteria),
        critical_failure=critical_failure,
        summary=summary,
        config_version=config.version,
        config_hash=config.hash,
        data_fingerprint=window.fingerprint(),
        window_start=window.start,
        window_end=window.end,
        judge=window.judge,
        budget=budget,
        kind_status=kind_status,
        eligible_kinds=eligible_kinds,
    )


def _status(rows: list[Criterion]) -> str:
    states = {r.status for r in rows} - {LEFT_OUT}  # a criterion left out: the rest decide
    return FAIL if FAIL in states else (PASS if states == {PASS} else INCONCLUSIVE)


def gated_kinds(config: GateConfig, agg: Aggregate | None) -> tuple[str, ...]:
    """The kinds other than plain that ``agg``'s category had (with any evidence) and the
    criteria file lets the gate release (``[eligibility] kinds``), in :data:`KINDS` order."""
    if agg is None:
        return ()
    return tuple(
        k
        for k in KINDS
        if k != PLAIN
        and k in config.kinds
        and (sub := agg.kinds.get(k)) is not None
        and (sub.pairs or sub.unsupported or sub.reviews or sub.ratings)
    )


def kind_rows(
    config: GateConfig, cat: str, kind: str, agg: Aggregate, conf: float, project: bool = True
) -> list[Criterion]:
    """The criteria of one (category, kind) cell. Every kind: pairs, the P95 latency and the
    success rate. Tool requests: the tool-call agreement (the share of pairs compared by tool
    calls whose calls agree in full). JSON requests: the share of JSON answers that parse and
    validate against the request's schema. Image requests are answered in text: the plain
    criteria (similarity, review score). The review score and similarity are for text, so
    tool and JSON requests are gated by their agreement instead."""
    name = f"{cat} {kind}"  # what the criteria's words call the cell
    rows = [_pairs(config, name, agg)]
    if kind == "tools":
        rows.append(
            outcomes.rate(
                "tool_agreement", "Tool-call agreement", name, agg.tools_agreed,
                agg.tools_compared, config.min_tool_agreement, conf,
                what="pairs compared by tool calls", project=project,
                note="agree: the same functions with JSON-equal arguments",
            )
        )  # fmt: skip
    elif kind in ("json_object", "json_schema"):
        label = "Schema validity" if kind == "json_schema" else "Valid JSON"
        rows.append(
            outcomes.rate(
                "json_validity", label, name, agg.json_valid, agg.json_checked,
                config.min_json_validity, conf, what="JSON answers", project=project,
                note="valid: the answer parses as JSON and fits the request's schema",
            )
        )  # fmt: skip
    else:
        rows.append(_similarity(config, name, agg, conf, project))
        rows.append(means.review_score(config, name, agg, conf, project))
    rows.append(serving.p95(config, name, agg, conf, project))
    rows.append(serving.success(config, name, agg, conf, project))
    return [replace(r, category=cat, kind=kind) for r in rows]


def _pairs(config: GateConfig, cat: str, agg: Aggregate) -> Criterion:
    need = config.min_pairs - agg.pairs
    return Criterion(
        "pairs",
        "Pairs",
        cat,
        PASS if need <= 0 else INCONCLUSIVE,
        agg.pairs,
        float(agg.pairs),
        float(agg.pairs),
        float(config.min_pairs),
        "count of pairs the student answered or failed",
        "" if need <= 0 else f"{need:,} more {cat} pairs needed",
    )


def _similarity(
    config: GateConfig, cat: str, agg: Aggregate, conf: float, project: bool = True
) -> Criterion:
    label = "Mean similarity"
    if not agg.similarity:
        return Criterion(
            "similarity",
            label,
            cat,
            INCONCLUSIVE,
            0,
            None,
            None,
            None,
            "betting confidence sequence",
            f"no {cat} pairs with a similarity score yet",
        )
    # The method with the most pairs: scores of different methods are never mixed.
    method, bins = max(agg.similarity.items(), key=lambda kv: sum(v[0] for v in kv[1].values()))
    counts = np.asarray([int(v[0]) for v in bins.values()], dtype=float)
    means = np.asarray([v[1] / v[0] for v in bins.values()], dtype=float)
    n = int(counts.sum())
    threshold = config.similarity_thresholds.get(method)
    est = float(means @ counts / n)
    how = f"betting confidence sequence, lower bound ({method})"
    if agg.sim_reviews is not None:  # calibrated from the category's reviewed pairs
        cal = simbar.calibrate(
            agg.sim_reviews.get(method, {}),
            method=method,
            target=config.min_review_score,
            confidence=conf,
            min_pairs=max(30, config.min_similarity_pairs),
            min_reviews=config.min_reviews,
        )
        said = cal.words(config.min_review_score)
        if not cal.used:
            why = (
                f"left out: similarity does not (yet) predict the review score here ({said}); "
                "the reviews decide"
            )
            return Criterion("similarity", label, cat, LEFT_OUT, n, est, None, None, how, why)
        if cal.bar is not None:
            threshold = cal.bar
            how += f"; bar calibrated from reviews: {said}"
        else:
            how += f"; bar from {Path(config.path).name} ({said})"
    if threshold is None:
        why = (
            f"no threshold for similarity method '{method}': add it under "
            f"[similarity.thresholds] in {Path(config.path).name}"
        )
        return inconclusive("similarity", label, cat, n, est, None, how, why)
    if n < config.min_similarity_pairs:
        return Criterion(
            "similarity",
            label,
            cat,
            INCONCLUSIVE,
            n,
            est,
            None,
            threshold,
            how,
            f"{config.min_similarity_pairs - n} more {cat} pairs with a similarity needed",
            needed=config.min_similarity_pairs - n,
        )
    bounds = stats.betting_mean_bounds(means, counts, lo=0.0, hi=1.0, confidence=conf)
    assert bounds is not None  # every bin holds at least one pair
    lo, hi = bounds
    status = three_way(lo, hi, threshold, True)
    need = None
    if status == INCONCLUSIVE and project and est > threshold:

        def passes(k: float) -> bool:
            b = stats.betting_mean_bounds(means, counts * k, lo=0.0, hi=1.0, confidence=conf)
            return b is not None and b[0] >= threshold

        need = scaled_needed(passes, n)
    missing = mean_missing(status, est, threshold, n, need, f"{cat} pairs", "similarity", project)
    return Criterion(
        "similarity",
        label,
        cat,
        status,
        n,
        est,
        lo,
        threshold,
        how,
        missing,
        needed=None if need is None else max(need - n, 1),
        upper=hi,
    )


def _critical(config: GateConfig, window: Window) -> Criterion:
    every = [s for a in window.categories.values() for s in (a, *a.kinds.values())]
    total = sum(a.critical for a in every)
    reviews, pairs = sum(a.reviews for a in every), sum(a.pairs for a in every)
    allowed = config.critical_max_allowed
    examples = [e for a in every for e in a.critical_examples][:3]
    # n is what the count looks through: the reviews for a tag, and the pairs only when
    # student errors can be critical (n once read 5,756 "reviews tagged unsafe" with 674
    # reviews in all: the pairs were counted though no error kind was configured).
    tags = "/".join(config.critical_review_tags or ("(none)",))
    checked = reviews + (pairs if config.critical_error_kinds else 0)
    what = f"reviews tagged {tags} (n: reviews)"
    if config.critical_error_kinds:
        kinds = "/".join(config.critical_error_kinds)
        what = f"reviews tagged {tags} or student errors {kinds} (n: reviews + pairs)"
    key, label = "critical_errors", "Critical errors"
    count, limit = float(total), float(allowed)
    if total > allowed:
        why = f"{total} critical error(s) ({'; '.join(examples)}); cannot be overridden"
        return Criterion(
            key, label, ALL, FAIL, checked, count, count, limit, what, why, critical=True
        )
    if reviews + pairs == 0:
        why = "no pairs or reviews in the window yet"
        return inconclusive(key, label, ALL, 0, None, limit, what, why)
    return Criterion(key, label, ALL, PASS, checked, count, count, limit, what)
