"""The router's labelled pairs: people's reviews, and the judge's verdicts debiased against them.

A pair is **acceptable** when its current human reviews' mean student score is at least the
review bar of the criteria file (``min_review_score``); a review without a score counts by its
decision (``approve`` acceptable, ``reject`` not; ``skip`` says nothing). Only people's labels
decide the threshold's guarantee (:mod:`shadowtutor.router.threshold`); they are split by a
stable hash of the pair id, half to learn from and half held out, so a retrained version never
tests on a pair an earlier version learned from. A pair queued with a design weight (sampled
unevenly: ``judge_unsure``, ``router_sides``) is only learned from, weighted by it: the
threshold's test needs pairs drawn as the traffic comes.

The LLM judge's verdicts (score at least the bar) only add training examples, and only once
the judge is measured against people: on the pairs both scored, ``q1 = P(person says
acceptable | judge says acceptable)`` and ``q0 = P(... | judge says not)`` (add-one smoothed).
A pair only the judge scored becomes two examples, acceptable with weight ``JUDGE_WEIGHT * q``
and not with ``JUDGE_WEIGHT * (1 - q)`` (``q`` the rate for its verdict): the judge's bias is
replaced by what people said of its verdicts, and a judge pair weighs at most half a review.
Below ``MIN_JUDGE_PAIRS`` pairs scored by both, the judge is left out (counted).

Users' feedback on answers the **student served** (the user saw its answer) is used the same
way: a liked answer (latest thumbs up, a rating of at least 80 % of its scale) or a disliked one
(:data:`shadowtutor.log.feedback.DISLIKED_SQL`: thumbs down, a low rating, a correction, a
flag, a regenerate) is debiased against people's reviews of the pairs that have both (``q1`` =
P(person says acceptable | liked), ``q0`` = the same for disliked) and becomes two examples
weighing ``FEEDBACK_WEIGHT`` in all; below ``MIN_FEEDBACK_PAIRS`` such pairs, feedback is left
out (counted). Users rate the answers they care to rate, so feedback only adds training
examples, never held-out ones.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from shadowtutor.log.schema import DEFAULT_STUDENT
from shadowtutor.router.features import request_text, validator_text
from shadowtutor.router.model import Example
from shadowtutor.tables import JudgeScore, Review, ReviewItem, as_utc

JUDGE_WEIGHT = 0.5
MIN_JUDGE_PAIRS = 20
FEEDBACK_WEIGHT = 0.5
MIN_FEEDBACK_PAIRS = 20
HELD_OUT_SHARE = 0.5


@dataclass(frozen=True)
class Labelled:
    pair_id: str
    category: str
    text: str
    acceptable: bool
    at: datetime | None  # when the label was given (the newest review)
    weight: float = 1.0  # the review item's design weight (1: sampled uniformly)
    answer_text: str = ""  # what the validator reads (answer_text_of); "": the student failed


@dataclass
class Labels:
    """Everything the router learns and is tested from, with the counts of each source."""

    train: list[Example] = field(default_factory=list)
    train_categories: list[str] = field(default_factory=list)
    held_out: list[Labelled] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)
    newest: datetime | None = None


def held_out(pair_id: str) -> bool:
    """Stable half of the pairs, the same for every version of every router."""
    digest = hashlib.sha256(f"router-split:{pair_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < HELD_OUT_SHARE


def text_of(snapshot: Mapping[str, Any]) -> str:
    request = snapshot.get("request") or {}
    return request_text(
        snapshot.get("messages") or [],
        category=snapshot.get("category"),
        kind=request.get("kind") or "plain",
        tools=len(request.get("tools") or []),
    )


def answer_text_of(snapshot: Mapping[str, Any]) -> str:
    """The validator's text of a record (request and the student's answer); "" when the
    student gave no answer (an error, nothing said): such a pair is never served by a
    cascade, whatever its scores."""
    student = snapshot.get("student") or {}
    if not isinstance(student, Mapping) or student.get("error"):
        return ""
    if not student.get("response") and not student.get("tool_calls"):
        return ""
    request = snapshot.get("request") or {}
    return validator_text(
        snapshot.get("messages") or [],
        student,
        category=snapshot.get("category"),
        kind=request.get("kind") or "plain",
        tools=len(request.get("tools") or []),
    )


def human_labels(session: Session, *, student: str, bar: float) -> list[Labelled]:
    """One label per reviewed pair of ``student`` (current reviews, skips left out)."""
    rows = session.exec(
        select(Review, ReviewItem)
        .join(ReviewItem, col(ReviewItem.id) == col(Review.item_id))
        .where(col(Review.is_current).is_(True), col(Review.decision) != "skip")
    ).all()
    by_pair: dict[str, list[Review]] = defaultdict(list)
    items: dict[str, ReviewItem] = {}
    for review, item in rows:
        if (item.snapshot.get("student_name") or DEFAULT_STUDENT) != student:
            continue
        if item.snapshot.get("source") == "playground":
            continue  # a Playground turn is no traffic the router will see
        by_pair[item.pair_id].append(review)
        items[item.pair_id] = item
    out = []
    for pair_id, reviews in sorted(by_pair.items()):
        scores = [r.student_score for r in reviews if r.student_score is not None]
        if scores:
            ok = sum(scores) / len(scores) >= bar
        else:
            ok = all(r.decision == "approve" for r in reviews)
        snap = items[pair_id].snapshot
        when = max(as_utc(r.created_at) for r in reviews)
        weight = float(snap.get("design_weight") or 1.0)
        cat = snap.get("category") or "unknown"
        out.append(Labelled(pair_id, cat, text_of(snap), ok, when, weight, answer_text_of(snap)))
    return out


def judge_rates(
    human: Mapping[str, bool], judged: Mapping[str, bool], least: int = MIN_JUDGE_PAIRS
) -> tuple[float, float, int] | None:
    """(q1, q0, pairs): people's acceptable rate where the judge (or users' feedback) said
    acceptable / not, on the pairs both labelled (add-one smoothed); None below ``least``
    such pairs."""
    both = [(judged[p], human[p]) for p in human if p in judged]
    if len(both) < least:
        return None
    yes = [h for j, h in both if j]
    no = [h for j, h in both if not j]
    return (sum(yes) + 1) / (len(yes) + 2), (sum(no) + 1) / (len(no) + 2), len(both)


def judge_scores(session: Session, *, bar: float) -> dict[str, bool]:
    """pair id -> the judge's verdict (its student score at least the bar), newest first."""
    rows = session.exec(
        select(JudgeScore)
        .where(col(JudgeScore.student_score).is_not(None))
        .order_by(col(JudgeScore.id).desc())
    ).all()
    out: dict[str, bool] = {}
    for row in rows:
        out.setdefault(row.pair_id, float(row.student_score or 0) >= bar)
    return out


def _debiased(
    labels: Labels,
    by_source: Counter[str],
    source: str,
    people: Mapping[str, bool],
    said: Mapping[str, bool],
    records: list[Mapping[str, Any]],
    least: int,
    weight: float,
) -> None:
    """Add ``source``'s verdicts (``said``: pair id -> acceptable) on ``records`` as examples
    debiased against people (see the module docstring), or count them left out."""
    rates = judge_rates(people, said, least)
    if rates is None:
        by_source[f"{source}_left_out"] = len(records)
        labels.counts[source] = f"left out: fewer than {least} pairs scored by both"
        return
    q1, q0, both = rates
    labels.counts[source] = {"q_if_acceptable": q1, "q_if_not": q0, "pairs_both": both}
    for rec in records:
        q = q1 if said[str(rec["id"])] else q0
        text, answer = text_of(rec), answer_text_of(rec)
        labels.train.append(Example(text, True, weight * q, answer))
        labels.train.append(Example(text, False, weight * (1 - q), answer))
        labels.train_categories += [rec.get("category") or "unknown"] * 2
        by_source[f"{source}_train"] += 1


def assemble(
    human: list[Labelled],
    judged: Mapping[str, bool],
    judge_records: Iterable[Mapping[str, Any]],
    liked: Mapping[str, bool] | None = None,
    feedback_records: Iterable[Mapping[str, Any]] = (),
) -> Labels:
    """Split people's labels, add the judge's and users' feedback's debiased examples, count
    everything. Pure. ``judge_records``: the log records (snapshot form) of pairs only the
    judge scored; ``liked``: pair id -> users liked the student's served answer (True) or
    disliked it; ``feedback_records``: the records of such pairs that people did not review."""
    labels = Labels()
    by_source: Counter[str] = Counter()
    for lab in human:
        if lab.weight != 1.0:  # sampled unevenly: learned from (weighted), never a test pair
            labels.train.append(Example(lab.text, lab.acceptable, lab.weight, lab.answer_text))
            labels.train_categories.append(lab.category)
            by_source["human_train_weighted"] += 1
        elif held_out(lab.pair_id):
            labels.held_out.append(lab)
            by_source["human_held_out"] += 1
        else:
            labels.train.append(Example(lab.text, lab.acceptable, 1.0, lab.answer_text))
            labels.train_categories.append(lab.category)
            by_source["human_train"] += 1
        by_source["human_acceptable"] += int(lab.acceptable)
        if lab.at is not None and (labels.newest is None or lab.at > labels.newest):
            labels.newest = lab.at
    people = {lab.pair_id: lab.acceptable for lab in human}
    for source, said, recs, least, weight in (
        ("judge", judged, judge_records, MIN_JUDGE_PAIRS, JUDGE_WEIGHT),
        ("feedback", liked or {}, feedback_records, MIN_FEEDBACK_PAIRS, FEEDBACK_WEIGHT),
    ):
        _debiased(labels, by_source, source, people, said, list(recs), least, weight)
    labels.counts |= dict(by_source)
    per_cat: Counter[str] = Counter(lab.category for lab in labels.held_out)
    labels.counts["held_out_by_category"] = dict(sorted(per_cat.items()))
    return labels
