"""The rollout guard: users' reactions to the student's answers against the teacher's.

During a rollout the stable hash of each user (``gate.routing``) decides who the student
serves, so student-served and teacher-served answers are the two arms of a randomized
experiment. Per category and signal (thumbs down of rated answers, regenerates and errors of
answers; :mod:`shadowtutor.gate.guard_config`) the guard bounds the difference of the two
rates, student minus teacher (higher is worse), against the criteria file's margin:

- **WORSE**: the lower bound of the difference is above the margin: the student is worse
  than the margin allows, beyond doubt. The rollout rolls back (``gate.rollout``).
- **NO_WORSE**: the upper bound is below the margin: shown no worse than the margin allows;
  the next stage's advance can require it (``[guard] require_no_worse``).
- **UNDECIDED**: neither yet, or fewer than ``min_events`` per arm.

The bounds are confidence sequences: each arm's rate has an exact betting confidence sequence
(the constant-bet mixture of :mod:`shadowtutor.gate.stats`, on a grid of bets sized for the
small differences the guard looks for), and the difference's bound is the student's bound
minus the teacher's on the other side, each arm spending half the side's error. Each holds at
every sample size at once, so looking every hour for months keeps the guarantee; the capital
depends on the counts only, so plain counts per arm are all the guard needs.

Error budget: a wrong WORSE is a needless rollback; the gate's family budget (1 -
``confidence``) is spent on them the way the gate spends it (80 % in the first evidence epoch,
16 % in the second, ...), split over the categories times the signals compared, so the
chance of any needless rollback in an epoch stays within it. A NO_WORSE is part of the claim
"ready for the next stage" about one (student, category), which also needs the gate's GO:
an intersection-union test, so it shares that claim's part of the budget
(:func:`shadowtutor.gate.criteria.error_budget`) and needs no split of its own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from shadowtutor.gate import criteria
from shadowtutor.gate.guard_config import OUT_OF, SIGNAL_WORDS

WORSE, NO_WORSE, UNDECIDED = "WORSE", "NO_WORSE", "UNDECIDED"
LABELS = {WORSE: "WORSE", NO_WORSE: "NO WORSE", UNDECIDED: "UNDECIDED"}
STUDENT, TEACHER = "student", "teacher"

# The fractions of the largest safe bet that each rate's mixture averages over: geometric from
# 0.2 % to 90 %. The gate's grid (stats.BET_FRACTIONS) spends most of its weight on large
# fractions, right for a student far above a bar; the guard looks for differences of a few
# points at rates of 1-20 %, where the best fraction lies between 0.3 % and 40 %.
FRACTIONS = np.geomspace(0.002, 0.9, 20)
# The share of each arm's capital kept out of the bets. A product of the two arms' capitals
# suffers when one arm's bets lose at the teacher rate where the other arm's evidence is
# weakest; keeping 10 % aside bounds that loss (an error rate of 5 of 2,000 against 45 of
# 18,000: the upper bound of the difference is +0.9 points with it, +2.1 without).
HOLD = 0.1


# --- counts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmCounts:
    """What one arm's users did with its answers (cumulative over the evidence)."""

    answers: int = 0  # answers served to users
    rated: int = 0  # answers users rated with a thumb
    thumbs_down: int = 0  # ... thumbs down
    regenerates: int = 0  # answers users asked again for (regenerate)
    errors: int = 0  # answers that were an error

    def events(self, signal: str) -> tuple[int, int]:
        """(events, out of) for ``signal``."""
        match signal:
            case "thumbs_down":
                return self.thumbs_down, self.rated
            case "regenerate":
                return self.regenerates, self.answers
            case "error":
                return self.errors, self.answers
        raise ValueError(f"unknown signal {signal!r}")

    def add(self, other: ArmCounts) -> ArmCounts:
        return ArmCounts(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


def astuple(c: ArmCounts) -> tuple[int, ...]:
    return (c.answers, c.rated, c.thumbs_down, c.regenerates, c.errors)


@dataclass(frozen=True)
class Arms:
    """One category's two arms."""

    student: ArmCounts = field(default_factory=ArmCounts)
    teacher: ArmCounts = field(default_factory=ArmCounts)


# --- the bounds --------------------------------------------------------------------------
#
# For the WORSE side the null is "student rate <= teacher rate + d". Were the teacher's rate q
# known, the student's answers alone would test it: a mixture of constant bets that the
# student's rate exceeds q + d (log capital ``_log_above``). It is not known, so the teacher's
# answers bet that the teacher's rate is below q (``_log_below``): at the true q both are
# test martingales (the arms are different answers), so is their product, and the smallest
# product over every q is at most the one at the true q. Rejecting when that smallest product
# reaches 1/alpha is therefore a level-alpha test at every look at once (Ville's inequality),
# and the d it rejects form the lower bound of the difference: an anytime-valid confidence
# sequence. The NO_WORSE side is the same test on the complementary rates (1 - rate). The
# capitals depend on the counts only (constant bets), so cumulative counts are all it needs.


def _log_mix(logs: np.ndarray) -> np.ndarray:
    """log of the bets' mixture: ``HOLD`` of the capital kept, the rest spread evenly over
    the fractions (the mean of exp over the last axis)."""
    top = np.maximum(logs.max(axis=-1), 0.0)
    spread = np.exp(logs - top[..., None]).sum(axis=-1) * ((1 - HOLD) / len(FRACTIONS))
    out: np.ndarray = top + np.log(HOLD * np.exp(-top) + spread)
    return out


def _log_above(ones: np.ndarray, zeros: np.ndarray, m: np.ndarray) -> np.ndarray:
    """log capital of the bets that the rate is above ``m`` (rows x candidates)."""
    m = np.clip(m, 1e-12, 1 - 1e-12)[..., None]
    up = np.log1p(FRACTIONS * (1 - m) / m)
    return _log_mix(ones[:, None, None] * up + zeros[:, None, None] * np.log1p(-FRACTIONS))


def _log_below(ones: np.ndarray, zeros: np.ndarray, q: np.ndarray) -> np.ndarray:
    """log capital of the bets that the rate is below ``q`` (rows x candidates)."""
    return _log_above(zeros, ones, 1 - q)


def _grid(kt: np.ndarray, nt: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Candidate teacher rates per row in [lo, hi], sorted: evenly spread, and dense where
    the teacher's own rate lies (where the smallest product is)."""
    rate = np.where(nt > 0, kt / np.maximum(nt, 1), 0.5)
    spread = 6 * np.sqrt(rate * (1 - rate) / np.maximum(nt, 1)) + 0.004
    even = lo[:, None] + (hi - lo)[:, None] * np.linspace(0, 1, 33)
    near = (rate - spread)[:, None] + (2 * spread)[:, None] * np.linspace(0, 1, 64)
    near = np.clip(near, lo[:, None], hi[:, None])
    return np.sort(np.concatenate([even, near], axis=1), axis=1)


def worse_evidence(
    ks: ArrayLike, ns: ArrayLike, kt: ArrayLike, nt: ArrayLike, margin: ArrayLike
) -> np.ndarray:
    """log of the smallest capital, over every teacher rate, against "student rate <=
    teacher rate + margin" (rows of counts; the test rejects at ``log(1 / alpha)``).

    The smallest is bounded from below, not just sampled: between two candidates q1 < q2 the
    student's capital is at least its value at q2 and the teacher's at least its value at q1
    (one falls and the other rises with q), so the grid never overstates the evidence."""
    ks_, ns_, kt_, nt_ = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (ks, ns, kt, nt))
    d = np.broadcast_to(np.asarray(margin, dtype=float), ks_.shape)
    lo, hi = np.maximum(0.0, -d), np.minimum(1.0, 1.0 - d)
    q = _grid(kt_, nt_, lo, hi)
    student = _log_above(ks_, ns_ - ks_, q + d[:, None])
    teacher = _log_below(kt_, nt_ - kt_, q)
    out: np.ndarray = np.minimum(
        (student[:, 1:] + teacher[:, :-1]).min(axis=1),  # each gap between candidates
        np.minimum(student[:, 0] + teacher[:, 0], student[:, -1] + teacher[:, -1]),
    )
    return out


def no_worse_evidence(
    ks: ArrayLike, ns: ArrayLike, kt: ArrayLike, nt: ArrayLike, margin: ArrayLike
) -> np.ndarray:
    """log of the smallest capital against "student rate >= teacher rate + margin": the
    WORSE test on the complementary rates (1 - rate), whose difference is at most -margin."""
    ns_, nt_ = np.asarray(ns, dtype=float), np.asarray(nt, dtype=float)
    return worse_evidence(
        ns_ - np.asarray(ks, dtype=float), ns_, nt_ - np.asarray(kt, dtype=float), nt_,
        -np.asarray(margin, dtype=float),
    )  # fmt: skip


def difference_bounds(
    student: tuple[ArrayLike, ArrayLike],
    teacher: tuple[ArrayLike, ArrayLike],
    alpha_lower: float,
    alpha_upper: float,
    *,
    strata: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Anytime-valid bounds of (student rate - teacher rate), from (events, n) per arm: the
    lower bound holds with probability 1 - ``alpha_lower`` at every look, the upper with 1 -
    ``alpha_upper``: the largest difference the WORSE test rejects, the smallest the
    NO_WORSE test rejects (bisection; 2**-24 precision). Each element is a comparison of its
    own; with ``strata`` the elements are the strata of one comparison (one bound)."""
    ks, ns = (np.atleast_1d(np.asarray(x, dtype=float)) for x in student)
    kt, nt = (np.atleast_1d(np.asarray(x, dtype=float)) for x in teacher)
    size = 1 if strata else len(ks)

    def search(test: Any, target: float, rising: bool) -> np.ndarray:
        left, right = np.full(size, -1.0), np.full(size, 1.0)
        for _ in range(24):
            mid = (left + right) / 2
            value = test(ks, ns, kt, nt, mid)
            hit = (value.sum(keepdims=True) if strata else value) >= target
            # WORSE rejects small differences (the bound is the last one it rejects);
            # NO_WORSE rejects large ones (the bound is the first one it rejects).
            left, right = (
                (np.where(hit, mid, left), np.where(hit, right, mid))
                if not rising
                else (np.where(hit, left, mid), np.where(hit, mid, right))
            )
        return left if not rising else right

    lower = search(worse_evidence, math.log(1 / alpha_lower), rising=False)
    upper = search(no_worse_evidence, math.log(1 / alpha_upper), rising=True)
    # Where no difference at all is rejected, the bound is the edge of what is possible.
    return lower, upper


# --- one comparison ------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One category's one signal: the two rates, the bounds of their difference (student
    minus teacher, in proportions) and the verdict."""

    category: str
    signal: str
    outcome: str  # WORSE | NO_WORSE | UNDECIDED
    student_events: int
    student_n: int
    teacher_events: int
    teacher_n: int
    lower: float | None  # lower bound of the difference (None: below min_events)
    upper: float | None
    margin: float  # proportion (0.01 = one point)
    why: str = ""  # what is missing, for UNDECIDED

    @property
    def student_rate(self) -> float | None:
        return self.student_events / self.student_n if self.student_n else None

    @property
    def teacher_rate(self) -> float | None:
        return self.teacher_events / self.teacher_n if self.teacher_n else None


def stratified_evidence(test: Any, strata: Sequence[Arms], signal: str, margin: float) -> float:
    """The log capital of ``test`` (:func:`worse_evidence` or :func:`no_worse_evidence`)
    over strata: the sum of each stratum's. Each rollout stage is a stratum: the student's
    share changes between stages while the users' rates may drift, so pooling the stages
    would compare the student's later days with the teacher's earlier ones (Simpson's
    paradox: at stages 10 -> 25 -> 50 % and rates doubling over 70 days, a pooled test rolled
    an equal student back in 14 % of the runs). Within a stage the split is fixed, so both
    arms see the same days; a stage's capital, frozen when it ends, times the next one's is
    still below a test supermartingale, so the sum keeps the guarantee."""
    rows = np.array([[*a.student.events(signal), *a.teacher.events(signal)] for a in strata])
    ks, ns, kt, nt = rows.T.astype(float)
    return float(test(ks, ns, kt, nt, margin).sum())


def strata_of(arms: Arms | Sequence[Arms]) -> tuple[Arms, ...]:
    """One category's counts per stratum (one ``Arms``: one stratum)."""
    return (arms,) if isinstance(arms, Arms) else tuple(arms) or (Arms(),)


def pooled(arms: Arms | Sequence[Arms]) -> Arms:
    """The strata's counts added up (what people read: the rates over the epoch)."""
    rows = strata_of(arms)
    student, teacher = rows[0].student, rows[0].teacher
    for a in rows[1:]:
        student, teacher = student.add(a.student), teacher.add(a.teacher)
    return Arms(student, teacher)


def compare(
    category: str,
    signal: str,
    arms: Arms | Sequence[Arms],
    *,
    margin_points: float,
    min_events: int,
    alpha_worse: float,
    alpha_no_worse: float,
) -> Comparison:
    """The verdict on one signal of one category (see the module docstring); ``arms``: the
    counts, or the counts per rollout stage (:func:`stratified_evidence`)."""
    strata = strata_of(arms)
    total = pooled(strata)
    ks, ns = total.student.events(signal)
    kt, nt = total.teacher.events(signal)
    margin = margin_points / 100
    row = Comparison(category, signal, UNDECIDED, ks, ns, kt, nt, None, None, margin)
    short = [f"{min_events - n:,} more {who} {OUT_OF[signal]}"
             for who, n in ((STUDENT, ns), (TEACHER, nt)) if n < min_events]  # fmt: skip
    if short:
        return replace(row, why=" and ".join(short) + f" needed (at least {min_events:,} each)")
    cols = np.array([[*a.student.events(signal), *a.teacher.events(signal)] for a in strata]).T
    lo, hi = difference_bounds(
        (cols[0], cols[1]), (cols[2], cols[3]), alpha_worse, alpha_no_worse, strata=True
    )
    row = replace(row, lower=float(lo[0]), upper=float(hi[0]))
    # The verdicts are the tests at the margin itself (the bounds are for reading).
    if stratified_evidence(worse_evidence, strata, signal, margin) >= math.log(1 / alpha_worse):
        return replace(row, outcome=WORSE)
    no_worse = stratified_evidence(no_worse_evidence, strata, signal, margin)
    if no_worse >= math.log(1 / alpha_no_worse):
        return replace(row, outcome=NO_WORSE)
    return replace(row, why="the bounds still straddle the margin: more answers needed")


# --- the report --------------------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    alpha_worse: float  # each WORSE test's error (a needless rollback)
    alpha_no_worse: float  # each NO_WORSE test's error (a claim shared with the gate's GO)
    words: str


def budget(
    config: criteria.GateConfig,
    categories: int,
    *,
    epoch: int = 1,
    students: int = 1,
    kinds: int = 0,
) -> Budget:
    """How the guard spends the family's error budget (see the module docstring)."""
    alpha = 1 - config.confidence
    signals = max(1, len(config.guard.signals))
    spent = 0.8 * 0.2 ** (max(1, epoch) - 1)
    tests = max(1, categories) * signals
    worse = alpha * spent / tests
    conf, _ = criteria.error_budget(config, students, categories, epoch, kinds)
    no_worse = 1 - conf
    words = (
        f"needless rollbacks: error budget {alpha:.0%}, epoch {max(1, epoch)} spends "
        f"{spent:.0%} of it over {max(1, categories)} categor"
        f"{'y' if categories == 1 else 'ies'} x {signals} signal(s) = {tests} test(s): "
        f"{worse:.3%} each; NO WORSE shares each category's GO claim: {no_worse:.3%} each"
    )
    return Budget(worse, no_worse, words)


@dataclass(frozen=True)
class Report:
    """The guard's verdicts for one student: per category, WORSE if any signal is WORSE,
    NO_WORSE if every signal is, UNDECIDED otherwise."""

    student: str
    comparisons: tuple[Comparison, ...]
    budget: str
    confidence: float  # the family's (what the bounds hold at together)
    since: str = ""  # where the evidence starts (the epoch), in words

    def of(self, category: str) -> str:
        rows = [c for c in self.comparisons if c.category == category]
        if any(c.outcome == WORSE for c in rows):
            return WORSE
        if rows and all(c.outcome == NO_WORSE for c in rows):
            return NO_WORSE
        return UNDECIDED

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.category for c in self.comparisons))

    @property
    def worse(self) -> tuple[Comparison, ...]:
        return tuple(c for c in self.comparisons if c.outcome == WORSE)

    def reason(self) -> str:
        """Why the rollout rolls back, in words (empty when nothing is WORSE)."""
        parts = [
            f"{c.category} {SIGNAL_WORDS[c.signal]}: student {pct(c.student_rate)} vs teacher "
            f"{pct(c.teacher_rate)} ({c.student_events:,}/{c.student_n:,} vs "
            f"{c.teacher_events:,}/{c.teacher_n:,} {OUT_OF[c.signal]}), difference >= "
            f"{points(c.lower)}, beyond the {c.margin * 100:g}-point margin"
            for c in self.worse
        ]
        if not parts:
            return ""
        return "users' feedback: the student's answers are worse than the teacher's: " + "; ".join(
            parts
        )

    def evidence(self) -> dict[str, Any]:
        """JSON-ready: stored with the rollback it causes."""
        return {
            "student": self.student,
            "since": self.since,
            "budget": self.budget,
            "confidence": self.confidence,
            "comparisons": [asdict(c) for c in self.comparisons],
        }


def assess(
    config: criteria.GateConfig,
    counts: Mapping[str, Arms | Sequence[Arms]],
    *,
    student: str,
    categories: tuple[str, ...] | None = None,
    epoch: int = 1,
    students: int = 1,
    since: str = "",
) -> Report:
    """The guard's report on ``counts`` (category -> both arms' counts, cumulative since the
    epoch began, or per rollout stage since then). ``categories``: those under comparison
    (default: the criteria file's eligible categories, else every category counted)."""
    cats = categories or config.categories or tuple(sorted(counts))
    spend = budget(config, len(cats), epoch=epoch, students=students)
    rows = [
        compare(
            cat,
            signal,
            counts.get(cat, Arms()),
            margin_points=config.guard.margins[signal],
            min_events=config.guard.min_events,
            alpha_worse=spend.alpha_worse,
            alpha_no_worse=spend.alpha_no_worse,
        )
        for cat in cats
        for signal in config.guard.signals
    ]
    return Report(student, tuple(rows), spend.words, config.confidence, since)


# --- words -------------------------------------------------------------------------------


def pct(rate: float | None) -> str:
    """A rate as people read it: "11.8 %" ("n/a" without data)."""
    return "n/a" if rate is None else f"{rate * 100:.1f} %"


def points(diff: float | None) -> str:
    """A difference of rates in percentage points, signed: "+1.2 pts"."""
    return "n/a" if diff is None else f"{diff * 100:+.1f} pts"
