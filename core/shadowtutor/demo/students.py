"""Demo students: the demo's Llama plus two more on the same requests, so the Students,
Leaderboard and learning-curve views have content. They are registered as demo students:
listed and ranked, never called by a collector (their server, gpu-box, does not exist), so a
collector on a demo home shadows the settings' student as before.

* ``llama`` (llama3.1:8b): the demo's original student; its records are the primary ones;
* ``qwen`` (qwen2.5:7b), a second base model, shadowed for the last 30 days: a little
  better on business questions, a little worse on greetings;
* ``qwen-v2``: qwen fine-tuned on the demo's approved pairs (an export), shadowed for the last
  12 days: clearly better on greeting and casual, the same on business.

Each extra answer is a record of its own that shares the request's id (schema version 2); a
sample of them is queued and reviewed, and the judge scores the eligible ones.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from shadowtutor import auth, similarity
from shadowtutor.log import schema
from shadowtutor.tables import Review, ReviewItem, Student, row_id


@dataclass(frozen=True)
class DemoStudent:
    name: str
    model: str
    version: str
    days: int  # shadowed for the last N days (0: the primary student, every day)
    shift: dict[str, float]  # quality change by category against the demo's Llama
    base_ms: float
    monthly_cost_usd: float | None = None
    trained: bool = False


PRIMARY = "llama"
STUDENTS = (
    DemoStudent(PRIMARY, "llama3.1:8b", "", 0, {}, 380),
    DemoStudent(
        "qwen", "qwen2.5:7b", "v1", 30, {"greeting": -0.03, "casual": 0.0, "business": 0.04}, 420
    ),
    DemoStudent(
        "qwen-v2",
        "qwen2.5:7b-travel-v2",
        "v2",
        12,
        {"greeting": 0.05, "casual": 0.12, "business": 0.04},
        430,
        monthly_cost_usd=120.0,
        trained=True,
    ),
)


def export_version(seed: int) -> str:
    """The dataset version of the (simulated) export qwen-v2 was fine-tuned on."""
    return hashlib.sha256(f"shadowtutor-demo-export-{seed}".encode()).hexdigest()[:16]


def _answer(rng: random.Random, teacher: str, lang: str, quality: float) -> str:
    """The same kinds of flaws as the demo's Llama (dropped words, wrong figures, filler)."""
    from shadowtutor.demo.generate import _student_answer

    return _student_answer(rng, teacher, teacher, lang, quality)[0]


def extra_records(
    primary: list[dict[str, Any]],
    *,
    seed: int,
    end: datetime,
    quality: dict[str, float],
    lang_shift: dict[str, float],
) -> Iterator[dict[str, Any]]:
    """The other demo students' records for the primary records of their shadowed days."""
    rng = random.Random(seed + 11)
    for rec in primary:
        ts = schema.parse_ts(rec["ts"])
        teacher = rec["teacher"]["response"]
        for s in STUDENTS[1:]:
            if ts < end - timedelta(days=s.days) or not teacher:
                continue
            q = (
                quality[rec["category"]]
                + lang_shift.get(rec["language"], 0.0)
                + s.shift.get(rec["category"], 0.0)
            )
            student: dict[str, Any] = {"model": s.model, "provider": "ollama"}
            if rng.random() < 0.006:
                student["error"] = "timeout: no answer within 10.0 s"
                student["latency_ms"] = 10000.0
            else:
                text = _answer(rng, teacher, rec["language"], q)
                student.update(
                    response=text,
                    latency_ms=round(rng.lognormvariate(math.log(s.base_ms), 0.35), 1)
                    + 15 * len(text.split()),
                    cost_usd=0.0,
                )
            yield schema.make_record(
                **{k: rec[k] for k in ("source", "user_hash", "conversation_id", "category",
                                       "language", "messages", "teacher", "routing", "metadata")},
                id=schema.secondary_id(rec["id"], s.name),
                ts=ts,
                student=student,
                similarity={
                    "method": "lexical",
                    "score": similarity.lexical(teacher, student.get("response")),
                },
                request_id=rec["id"],
                student_name=s.name,
            )  # fmt: skip


def register(session: Session, *, seed: int, end: datetime, admin_id: int) -> None:
    """The demo students as registered rows (backdated to when each began)."""
    for s in STUDENTS:
        session.add(
            Student(
                name=s.name,
                backend="ollama",
                base_url="http://gpu-box:11434",
                model=s.model,
                version=s.version,
                monthly_cost_usd=s.monthly_cost_usd,
                trained_on=export_version(seed) if s.trained else None,
                created_by=admin_id,
                created_at=end - timedelta(days=s.days or 60),
                demo=True,
            )
        )


def seed_reviews(
    session: Session,
    records: list[dict[str, Any]],
    *,
    seed: int,
    end: datetime,
    reviewers: list[int],
) -> int:
    """Queue and review a sample of each extra student's eligible answers; leave a few open."""
    from shadowtutor.demo.generate import ELIGIBLE
    from shadowtutor.review import queue as review

    rng = random.Random(seed + 12)
    chosen = []
    for s in STUDENTS[1:]:
        mine = [
            r
            for r in records
            if r["student_name"] == s.name
            and r["category"] in ELIGIBLE
            and schema.student_succeeded(r["student"])
        ]
        chosen += rng.sample(mine, min(90, len(mine)))
    review.enqueue_records(
        session=session, records=chosen, strategy="random", enqueued_by=auth.SYSTEM
    )
    ids = {r["id"] for r in chosen}
    items = [i for i in session.exec(_items(ids))]
    count = 0
    for item in items[: int(len(items) * 0.85)]:
        raw = 1 + 4 * (item.similarity or 0.0) ** 0.7 + rng.gauss(0, 0.45)
        score = max(1, min(5, round(raw)))
        session.add(
            Review(
                item_id=row_id(item),
                pair_id=item.pair_id,
                reviewer_id=rng.choice(reviewers),
                student_score=score,
                teacher_score=max(3, min(5, round(4.5 + rng.gauss(0, 0.4)))),
                verdict="teacher" if score <= 3 else "tie",
                decision="approve",
                tags=[],
                created_at=end - timedelta(days=rng.uniform(0, 10)),
            )
        )
        item.reviews_done, item.status = 1, "done"
        session.add(item)
        count += 1
    return count


def _items(ids: set[str]) -> SelectOfScalar[ReviewItem]:
    return select(ReviewItem).where(col(ReviewItem.pair_id).in_(list(ids)))
