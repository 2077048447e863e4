"""The demo's canary and its users' feedback.

For the last four weeks the student (the demo's Llama) serves a share of the eligible
categories' users, picked by a stable hash of the user as routing picks them: 25 % from 28 to
15 days ago, 50 % since. A request whose student answer failed fell back to the teacher (its
``metadata.fallback`` says why). The DB's rollout state is not touched: the log shows what a
canary looked like.

Users react to the answers (the teacher's all along, both sides' in the canary's weeks): a
share rate them (thumbs, some a 1-5 rating), thumbs down more often in business than in
greeting, some regenerate; the
student's answers are liked as often as the teacher's in greeting and a little less in casual
(:data:`STUDENT_WORSE`), so the comparison of the two sides has something to find there.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shadowtutor.log import feedback, schema, write

CANARY = ((28, 15, 25.0), (15, 0, 50.0))  # (from days ago, to days ago, percent served)
SALT = "shadowtutor-demo-canary"
RATED = 0.15  # answers rated with a thumbs
RATING = 0.03  # answers rated 1-5
THUMBS_DOWN = {"greeting": 0.07, "casual": 0.09, "business": 0.13}
STUDENT_WORSE = {"casual": 0.06}  # the student's answers: this much more often thumbed down
REGENERATE = 0.03
STUDENT_REGENERATE = {"casual": 0.04}


def _bucket(key: str) -> float:
    digest = hashlib.sha256(f"{SALT}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100


def _stage(ts: datetime, end: datetime) -> float:
    for start, stop, percent in CANARY:
        if end - timedelta(days=start) <= ts < end - timedelta(days=stop):
            return percent
    return 0.0


def serve(records: list[dict[str, Any]], *, end: datetime, eligible: tuple[str, ...]) -> int:
    """Route the canary's weeks (in place), as routing logs them: every eligible request gets
    the stage and its user's bucket; those below the stage were the student's to serve (one
    whose student answer failed fell back to the teacher). How many the student served."""
    served = 0
    for rec in records:
        stage = _stage(schema.parse_ts(rec["ts"]), end)
        if not stage or rec["category"] not in eligible or not rec["user_hash"]:
            continue
        bucket = _bucket(rec["user_hash"])
        error = rec["student"].get("error")
        student = bucket < stage and not error
        rec["routing"] = {
            "served_by": "student" if student else "teacher",
            "stage": stage,
            "bucket": round(bucket, 4),
            "eligible": True,
        }
        if bucket < stage and error:
            rec["metadata"] = {**rec["metadata"], "fallback": error}
        served += student
    return served


def events(records: list[dict[str, Any]], *, end: datetime, seed: int) -> list[dict[str, Any]]:
    """The users' feedback on the answers (the teacher's all along, both sides' in the
    canary's weeks)."""
    rng = random.Random(seed + 53)
    out = []
    for rec in records:
        ts = schema.parse_ts(rec["ts"])
        cat = rec["category"]
        student = rec["routing"]["served_by"] == "student"
        later = min(end, ts + timedelta(minutes=rng.uniform(0.2, 20)))
        base = {"request_id": rec["request_id"], "ts": schema.format_ts(later)}
        roll = rng.random()
        down = THUMBS_DOWN.get(cat, 0.1) + (STUDENT_WORSE.get(cat, 0.0) if student else 0.0)
        if roll < RATED:
            event = base | {"kind": "thumbs", "value": "down" if rng.random() < down else "up"}
            out.append(event)
            if event["value"] == "down" and rng.random() < 0.1:
                fix = rec["teacher"]["response"] if student else None
                if fix:
                    out.append(base | {"kind": "correction", "value": fix})
        elif roll < RATED + RATING:
            low = rng.random() < down * 2
            out.append(base | {"kind": "rating", "value": rng.choice([1, 2] if low else [3, 4, 5])})
        regen = REGENERATE + (STUDENT_REGENERATE.get(cat, 0.0) if student else 0.0)
        if rng.random() < regen:
            out.append(base | {"kind": "regenerate"})
    return [feedback.event(e, source="demo", matched=True) for e in out]


def write_events(log_dir: Path, recs: list[dict[str, Any]]) -> int:
    """Write the feedback records to the log's feedback part; how many."""
    with write.LogWriter(log_dir, part=feedback.PART) as writer:
        return writer.append_many(recs)
