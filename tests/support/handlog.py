"""The hand-worked five-pair log the analytics, spend and budget tests share: every figure
the tests expect is worked out from this table (see the comments next to the asserts)."""

from __future__ import annotations

from pathlib import Path

from shadowtutor.log import schema
from shadowtutor.log.analytics import Filters
from shadowtutor.log.write import LogWriter

# id, ts (UTC), teacher model, teacher cost, category, language, source, teacher ms,
# student ms, student cost, student error, similarity
FIXTURE = [
    ("p1", "2026-01-10T09:00Z", "gpt-4o", 1.00, "greeting", "en", "live", 100, 50, 0.01, None, 0.9),
    ("p2", "2026-01-10T10:00Z", "gpt-4o", 2.00, "business", "de", "live", 200, 150, 0.0, None, 0.5),
    ("p3", "2026-01-11T09:30Z", "gpt-4o-mini", 0.50, "greeting", "de", "live", 300, None, None,
     "student timed out after 10 s", None),
    ("p4", "2026-01-11T23:30Z", "mystery-model", None, "casual", "en", "live", 400, None, None,
     "HTTP 500 from student", None),
    ("p5", "2026-01-12T12:00Z", "gpt-4o", 3.00, "business", "en", "replay", 500, 250, 0.0, None,
     0.7),
]  # fmt: skip
ALL = Filters()


def record(row: tuple) -> dict:
    pid, ts, model, cost, cat, lang, source, t_ms, s_ms, s_cost, s_err, sim = row
    return schema.make_record(
        id=pid,
        ts=schema.parse_ts(ts),
        source=source,
        category=cat,
        language=lang,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": f"ask {pid}"},
        ],
        teacher={"model": model, "response": "answer", "latency_ms": t_ms, "cost_usd": cost},
        student={
            "model": "llama3",
            "response": None if s_err else "student answer",
            "latency_ms": s_ms,
            "cost_usd": s_cost,
            "error": s_err,
        },
        similarity={"method": "lexical", "score": sim} if sim is not None else None,
    )


def write(folder: Path) -> Path:
    """The five pairs as a JSONL log in ``folder``."""
    with LogWriter(folder) as writer:
        writer.append_many(record(r) for r in FIXTURE)
    return folder
