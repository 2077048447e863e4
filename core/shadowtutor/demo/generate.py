"""Realistic demo data: a travel agency's assistant shadowed for 60 days.

The log has daily growth, weekly and hourly traffic patterns, Italian / English / Indonesian
users, greeting / casual / business questions, real teacher model names priced from the price
table, and a Llama student whose answers drift from the teacher's more on business questions
and in Indonesian, with timeouts, errors and one outage. The database gets demo accounts, a
review queue with a few hundred reviews from three reviewers (tags, corrections, some items
reviewed twice), and a monthly budget. The same seed and end hour give the same data.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from shadowtutor import similarity
from shadowtutor.accounts import permissions
from shadowtutor.accounts.users import add_user, get_user
from shadowtutor.cost import pricing
from shadowtutor.demo import feedback, kinds, students
from shadowtutor.demo.students import ELIGIBLE
from shadowtutor.demo.text import (
    CONTACTS,
    NOTES,
    OPENERS,
    PHRASES,
    POLICY,
    SLOTS,
    SYSTEM,
    student_answer,
)
from shadowtutor.errors import ShadowTutorError
from shadowtutor.log import compaction, read, schema, write
from shadowtutor.tables import Budget, JudgeScore, Review, ReviewItem, User, UserCreate, row_id

LANGUAGES = {"it": 0.4, "en": 0.3, "id": 0.3}
CATEGORIES = {"greeting": 0.3, "casual": 0.2, "business": 0.5}
TEACHERS = {"gpt-4o": 0.5, "gpt-4o-mini": 0.2, "gpt-4.1": 0.15, "claude-sonnet-4": 0.15}
STUDENT = "llama3.1:8b"
# How close the student gets to the teacher (1 = same words), by category and language.
QUALITY = {"greeting": 0.92, "casual": 0.78, "business": 0.62}
# Business requests differ inside the category (the router's reason to exist): changing a date,
# a package price or adding a bag is easy for the student; refunds, visas and insurance are
# not. Per prompt of PHRASES[lang]["business"]; their mean is the category's QUALITY. The
# answer is drawn from its own random stream, so every other pair stays as it was.
BUSINESS_PROMPT_QUALITY = (0.9, 0.4, 0.88, 0.35, 0.92, 0.27)
LANG_SHIFT = {"it": 0.0, "en": 0.05, "id": -0.12}
PROGRESS_EVERY = 5_000  # pairs between two progress lines while generating
# Requests of the booking assistant and the extraction flow (demo.kinds), per plain pair
KINDS_SHARE = 0.1

DEMO_ACCOUNTS = [
    ("admin", permissions.ADMIN, "Alessandra", "demo-admin"),
    ("reviewer", permissions.REVIEWER, "Rita", "demo-reviewer"),
    ("manager", permissions.MANAGER, "Marco", "demo-manager"),
    ("giulia", permissions.REVIEWER, "Giulia", "demo-reviewer"),
    ("made", permissions.REVIEWER, "Made", "demo-reviewer"),
    ("sofia", permissions.REVIEWER, "Sofia", "demo-reviewer"),
]


class DemoError(ShadowTutorError):
    """The demo cannot be generated here; the message says what to change."""


@dataclass
class DemoPair:
    record: dict[str, Any]
    flaws: list[str] = field(default_factory=list)


# --- the log -----------------------------------------------------------------------------


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _hour_weight(ts: datetime, day_index: int, days: int) -> float:
    growth = 1.0 + 0.6 * day_index / max(days - 1, 1)
    weekday = 0.6 if ts.weekday() >= 5 else 1.0
    # Users are in Europe (UTC+1) and Indonesia (UTC+7): a broad day peak 07-18 UTC.
    hour = ts.hour
    daily = 0.15 + math.exp(-((hour - 10.5) ** 2) / 18) + 0.5 * math.exp(-((hour - 3) ** 2) / 6)
    return growth * weekday * daily


def _timestamps(rng: random.Random, n: int, end: datetime, days: int) -> list[datetime]:
    start = end - timedelta(days=days)
    slots = [start + timedelta(hours=h) for h in range(days * 24)]
    weights = [_hour_weight(s, (s - start).days, days) for s in slots]
    chosen = rng.choices(slots, weights=weights, k=n)
    stamps = [
        s + timedelta(seconds=rng.randrange(3600), milliseconds=rng.randrange(1000)) for s in chosen
    ]
    return sorted(t for t in stamps if t < end)


def _fill(text: str, slots: dict[str, str]) -> str:
    return text.format(**slots)


def _latency(rng: random.Random, base_ms: float, per_token_ms: float, tokens: int) -> float:
    return round(rng.lognormvariate(math.log(base_ms), 0.35) + per_token_ms * tokens, 1)


def generate_pairs(
    *, pairs: int = 20_000, days: int = 60, seed: int = 7, end: datetime | None = None
) -> Iterator[DemoPair]:
    """Yield demo pairs in time order, ending at ``end`` (default: the current hour)."""
    rng = random.Random(seed)
    end = (end or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    prices = pricing.load_table()
    # every demo teacher is in the bundled price table
    providers = {m: price.provider for m in TEACHERS if (price := prices.lookup(m)) is not None}
    users = [f"traveller{i}@example.com" for i in range(900)]
    outage_start = end - timedelta(days=max(days // 3, 1), hours=end.hour - 9)
    for count, ts in enumerate(_timestamps(rng, pairs, end, days)):
        lang = _pick(rng, LANGUAGES)
        cat = _pick(rng, CATEGORIES)
        index = rng.randrange(len(PHRASES[lang][cat]))
        slot = {k: rng.choice(v) for k, v in SLOTS.items()}
        slot["month_en"] = SLOTS["month_en"][SLOTS["month"].index(slot["month"])]
        slot["month_id"] = SLOTS["month_id"][SLOTS["month"].index(slot["month"])]
        slot["city_en"] = SLOTS["city_en"][SLOTS["city"].index(slot["city"])]
        prompt, answer = (_fill(t, slot) for t in PHRASES[lang][cat][index])
        english = _fill(PHRASES["en"][cat][index][1], slot)
        if cat == "business" and rng.random() < 0.06:
            prompt += rng.choice(CONTACTS[lang]).format(name_l=slot["name"].lower())
        user = users[min(int(rng.paretovariate(1.2)) - 1, len(users) - 1) * 7 % len(users)]
        messages = [{"role": "system", "content": SYSTEM[lang] + POLICY}]
        if cat != "greeting" and rng.random() < 0.3:  # a greeting exchange came first
            hello, reply = (_fill(t, slot) for t in rng.choice(OPENERS[lang]))
            messages += [
                {"role": "user", "content": hello},
                {"role": "assistant", "content": reply},
            ]
        messages.append({"role": "user", "content": prompt})
        teacher_model = _pick(rng, TEACHERS)
        p_tok = sum(pricing.estimate_tokens(m["content"]) + 4 for m in messages)
        c_tok = max(1, round(pricing.estimate_tokens(answer) * rng.uniform(0.9, 1.2)))
        teacher = {
            "model": teacher_model,
            "provider": providers[teacher_model],
            "response": answer,
            "latency_ms": _latency(rng, 650, 14, c_tok),
            "ttft_ms": round(rng.lognormvariate(math.log(420), 0.3), 1),
            "prompt_tokens": p_tok,
            "completion_tokens": c_tok,
            "cost_usd": prices.cost(teacher_model, p_tok, c_tok),
            "price_version": prices.version,
        }
        quality = QUALITY[cat] + LANG_SHIFT[lang]
        student_text, flaws = student_answer(rng, answer, english, lang, quality)
        if cat == "business":  # by prompt, from its own stream (see BUSINESS_PROMPT_QUALITY)
            own = random.Random(f"{seed}:business:{count}")
            quality = BUSINESS_PROMPT_QUALITY[index] + LANG_SHIFT[lang]
            student_text, flaws = student_answer(own, answer, english, lang, quality)
        s_tok = max(1, pricing.estimate_tokens(student_text))
        student: dict[str, Any] = {
            "model": STUDENT,
            "provider": "ollama",
            "prompt_tokens": p_tok,
            "price_version": prices.version,
        }
        in_outage = outage_start <= ts < outage_start + timedelta(hours=3)
        roll = rng.random()
        if in_outage:
            student["error"] = "connection refused: Ollama is not running at http://gpu-box:11434"
        elif roll < 0.0025:
            student["error"] = "timeout: no answer within 10.0 s"
            student["latency_ms"] = 10000.0
        elif roll < 0.004:
            student["error"] = "HTTP 500 from Ollama: model runner has unexpectedly stopped"
            student["latency_ms"] = _latency(rng, 120, 0, 0)
        else:
            student.update(
                response=student_text,
                latency_ms=_latency(rng, 380, 15, s_tok),
                ttft_ms=round(rng.lognormvariate(math.log(210), 0.35), 1),
                completion_tokens=s_tok,
                cost_usd=0.0,
            )
        score = similarity.lexical(answer, student.get("response"))
        record = schema.make_record(
            id=uuid.UUID(int=rng.getrandbits(128)).hex,
            ts=ts,
            source="demo",
            user_hash=schema.pseudonymize(user),
            conversation_id=f"c-{schema.pseudonymize(user)}-{ts:%Y%m%d}",
            category=cat,
            language=lang,
            messages=messages,
            teacher=teacher,
            student=student,
            similarity={"method": "lexical", "score": score},
            routing={
                "served_by": "teacher",
                "stage": 0,
                "bucket": None,
                "eligible": cat in ELIGIBLE,
            },
            metadata={
                "prompt_id": f"{lang}-{cat}-{index}",
                "app_version": "2.4.0" if ts > end - timedelta(days=days // 2) else "2.3.1",
            },
        )
        yield DemoPair(record, flaws if "error" not in student else [])


def write_log(log_dir: Path, pairs: list[DemoPair]) -> compaction.CompactReport:
    """Write the pairs to the log and compact closed days to Parquet (today stays JSONL)."""
    with write.LogWriter(log_dir) as writer:
        for i in range(0, len(pairs), 5000):
            writer.append_many(p.record for p in pairs[i : i + 5000])
    return compaction.compact(log_dir)


# --- the database ------------------------------------------------------------------------


def ensure_accounts(session: Session) -> dict[str, int]:
    """Create the demo accounts that do not exist yet (as the operator, ``permissions.SYSTEM``: the
    demo is built by whoever runs `shadowtutor demo` on the machine); return username -> id."""
    ids = {}
    for username, role, name, password in DEMO_ACCOUNTS:
        user = get_user(session=session, username=username) or add_user(
            session=session,
            user=UserCreate(username=username, role=role, display_name=name, password=password),
            actor_id=permissions.SYSTEM,
        )
        ids[username] = row_id(user)
    return ids


_CORRECTIONS = {
    "it": " Se preferisci, posso occuparmene io direttamente.",
    "en": " If you prefer, I can take care of it for you right away.",
    "id": " Kalau mau, saya bisa langsung bantu prosesnya.",
}


def seed_reviews(
    session: Session, pairs: list[DemoPair], accounts: dict[str, int], *, seed: int, end: datetime
) -> int:
    """Queue a stratified sample (as the demo admin) and review most of it; return the number
    of reviews. The reviews and the budget are written as rows, not through
    ``submit_review``/``set_budget``, because the demo backdates them into its history."""
    from shadowtutor.review import taxonomy, workflow

    rng = random.Random(seed + 1)
    taxonomy.seed_default_tags(session=session, actor_id=accounts["admin"])
    good = [p for p in pairs if schema.student_succeeded(p.record["student"])]
    by_stratum: dict[tuple[str, str], list[DemoPair]] = {}
    for p in good:
        by_stratum.setdefault((p.record["language"], p.record["category"]), []).append(p)
    # The categories the student may take first (ELIGIBLE) get a larger sample, so the gate
    # has the reviews it asks for there.
    size = {cat: 80 if cat in ELIGIBLE else 50 for cat in CATEGORIES}
    sample = [
        p
        for (_lang, cat), group in by_stratum.items()
        for p in rng.sample(group, min(size[cat], len(group)))
    ]
    rng.shuffle(sample)
    flaws = {p.record["id"]: p.flaws for p in sample}
    workflow.enqueue_records(
        session=session,
        records=[p.record for p in sample],
        strategy="stratified",
        required_reviews=1,
        enqueued_by=accounts["admin"],
    )
    items = list(session.exec(select(ReviewItem).where(col(ReviewItem.pair_id).in_(list(flaws)))))
    rng.shuffle(items)
    reviewers = {"giulia": 0.0, "made": -0.35, "sofia": 0.15}
    to_review = items[: int(len(items) * 0.7)]
    double = set(id(i) for i in to_review[:80])
    count = 0
    for item in to_review:
        names = rng.sample(list(reviewers), 2 if id(item) in double else 1)
        item.required_reviews = len(names)
        for name in names:
            session.add(_demo_review(rng, item, accounts[name], reviewers[name], flaws, end))
            count += 1
        item.reviews_done = len(names)
        item.status = "done"
        session.add(item)
    return count


def _demo_review(
    rng: random.Random,
    item: ReviewItem,
    reviewer_id: int,
    bias: float,
    flaws: dict[str, list[str]],
    end: datetime,
) -> Review:
    sim = item.similarity or 0.0
    tags = list(flaws.get(item.pair_id, []))
    raw = 1 + 4 * sim**0.7 + bias + rng.gauss(0, 0.45)
    if "wrong language" in tags:
        raw = min(raw, 1.6)
    if "factual error" in tags:
        raw = min(raw, 2.6)
    score = max(1, min(5, round(raw)))
    if score >= 4 and item.language != "en" and rng.random() < 0.5:
        tags.append("culturally appropriate")
    if score >= 4 and rng.random() < 0.4:
        tags.append("warm colleague-like tone")
    teacher_answer = item.snapshot["teacher"]["response"]
    corrected = None
    if rng.random() < 0.12:
        corrected = teacher_answer + _CORRECTIONS[item.language or "en"]
    decision = "reject" if rng.random() < 0.04 else "approve"
    when = end - timedelta(days=rng.uniform(0, 25), hours=rng.uniform(0, 8))
    return Review(
        item_id=row_id(item),
        pair_id=item.pair_id,
        reviewer_id=reviewer_id,
        student_score=score,
        teacher_score=max(3, min(5, round(4.5 + rng.gauss(0, 0.4)))),
        verdict="teacher"
        if score <= 3
        else ("tie" if score == 4 else rng.choice(["tie", "student"])),
        decision=decision,
        tags=sorted(set(tags)),
        note=_note(tags, rng),
        corrected_answer=corrected,
        seconds_spent=round(rng.lognormvariate(math.log(38), 0.5), 1),
        created_at=when,
    )


JUDGE_MODEL = "gpt-4o-mini"


def seed_judge(session: Session, pairs: list[DemoPair], *, seed: int, end: datetime) -> int:
    """Judge scores (the simulated LLM judge, both answer orders) for the eligible categories'
    pairs of the last 30 days, so Readiness and Review progress show the judge at work. Like
    the demo reviewers, it scores from the similarity; its own noise and a slight leniency
    make it agree with them well but not perfectly. Stored apart from the reviews."""
    from shadowtutor.judge import templates

    rng = random.Random(seed + 2)
    since = end - timedelta(days=30)
    rows = []
    for p in pairs:
        rec = p.record
        if rec["category"] not in ELIGIBLE or rec["student"]["response"] is None:
            continue
        ts = schema.parse_ts(rec["ts"])
        if ts < since:
            continue
        sim = (rec.get("similarity") or {}).get("score") or 0.0
        latent = 1 + 4 * sim**0.7 + 0.1 + rng.gauss(0, 0.3)
        if "wrong language" in p.flaws:
            latent = min(latent, 1.8)
        calls: list[dict[str, Any]] = []
        scores: list[tuple[int, int, str]] = []
        for order in ("teacher_first", "student_first"):
            student = max(1, min(5, round(latent + rng.gauss(0, 0.35))))
            teacher = max(3, min(5, round(4.6 + rng.gauss(0, 0.35))))
            a, b = (teacher, student) if order == "teacher_first" else (student, teacher)
            better = "A" if a > b else "B" if b > a else "tie"
            prompt, completion = rng.randint(380, 700), rng.randint(18, 30)
            cost = (prompt * 0.15 + completion * 0.6) / 1e6
            calls.append(
                {"order": order, "score_a": a, "score_b": b, "better": better,
                 "latency_ms": round(rng.lognormvariate(math.log(900), 0.3), 1),
                 "prompt_tokens": prompt, "completion_tokens": completion, "cost_usd": cost}
            )  # fmt: skip
            scores.append((student, teacher, better))
        (s1, t1, b1), (s2, t2, b2) = scores
        first = {"A": "teacher", "B": "student", "tie": "tie"}[b1]
        second = {"A": "student", "B": "teacher", "tie": "tie"}[b2]
        rows.append(
            JudgeScore(
                pair_id=rec["id"],
                template_version=templates.DEFAULT_VERSION,
                model=JUDGE_MODEL,
                category=rec["category"],
                language=rec["language"],
                pair_ts=ts,
                student_score=(s1 + s2) / 2,
                teacher_score=(t1 + t2) / 2,
                preferred=first if first == second else None,
                consistent=first == second,
                calls=calls,
                cost_usd=sum(c["cost_usd"] for c in calls),
                created_at=min(end, ts + timedelta(hours=rng.uniform(1, 20))),
            )
        )
    session.add_all(rows)
    return len(rows)


def _note(tags: list[str], rng: random.Random) -> str:
    notes = [NOTES[t] for t in tags if t in NOTES]
    return rng.choice(notes) if notes and rng.random() < 0.6 else ""


def seed_budget(session: Session, pairs: list[DemoPair], admin_id: int, end: datetime) -> float:
    """A monthly budget a little under the month's projection, so the alerts have a story."""
    month_start = end.replace(day=1, hour=0)
    last14 = [p for p in pairs if schema.parse_ts(p.record["ts"]) >= end - timedelta(days=14)]
    daily = sum(p.record["teacher"]["cost_usd"] or 0 for p in last14) / 14
    spent = sum(
        p.record["teacher"]["cost_usd"] or 0
        for p in pairs
        if schema.parse_ts(p.record["ts"]) >= month_start
    )
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    projection = spent + daily * (next_month - end).total_seconds() / 86400
    budget = max(1.0, round(projection * 0.9, 0))
    session.add(Budget(monthly_usd=budget, set_by=admin_id, set_at=end - timedelta(days=20)))
    return budget


@dataclass
class DemoSummary:
    pairs: int
    reviews: int
    budget_usd: float
    compacted_days: int
    log_dir: Path
    judged: int = 0  # pairs scored by the (simulated) LLM judge
    kinds: int = 0  # records of tool and JSON-schema requests (demo.kinds)
    feedback: int = 0  # users' feedback events (demo.feedback)


def build(
    *,
    url: str,
    log_dir: Path,
    pairs: int = 20_000,
    days: int = 60,
    seed: int = 7,
    end: datetime | None = None,
    progress: Callable[[str], None] | None = None,
) -> DemoSummary:
    """Generate the whole demo into an empty log folder and a migrated database.

    ``progress`` is told what is being done, phase by phase (15-25 s at 20,000 pairs on two
    cores)."""
    if read.jsonl_files(log_dir) or read.parquet_files(log_dir):
        raise DemoError(
            f"the log folder {log_dir} already holds data; the demo only writes into an empty "
            "one (set SHADOWTUTOR_HOME to a new folder)"
        )
    say = progress or _silent
    end = (end or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    say(f"generating {pairs:,} pairs over {days} days")
    generated = []
    for pair in generate_pairs(pairs=pairs, days=days, seed=seed, end=end):
        generated.append(pair)
        if len(generated) % PROGRESS_EVERY == 0 and len(generated) < pairs:
            say(f"  {len(generated):,} of {pairs:,} pairs")
    say("a canary of the last four weeks (the student serves some users)")
    served = feedback.serve([p.record for p in generated], end=end, eligible=ELIGIBLE)
    say("answers of the other two demo students")
    for p in generated:  # the demo's Llama is a registered student, not the settings' one
        p.record["student_name"] = students.PRIMARY
    extra = [
        DemoPair(r)
        for r in students.extra_records(
            [p.record for p in generated],
            seed=seed,
            end=end,
            quality=QUALITY,
            lang_shift=LANG_SHIFT,
        )
    ]
    say("tool calls and JSON-schema requests (booking assistant, extraction)")
    rng = random.Random(seed + 31)
    stamps = _timestamps(rng, round(pairs * KINDS_SHARE), end, days)
    users = [f"traveller{i}@example.com" for i in range(900)]
    tooling = [DemoPair(r) for r in kinds.records(stamps, seed=seed, end=end, users=users)]
    written = generated + extra + tooling
    say(f"writing {len(written):,} records to {log_dir}, closed days to Parquet")
    compacted = write_log(log_dir, sorted(written, key=lambda p: p.record["ts"]))
    reactions = feedback.events([p.record for p in generated], end=end, seed=seed)
    say(f"{len(reactions):,} users' feedback events ({served:,} answers served by the student)")
    feedback.write_events(log_dir, reactions)
    say("accounts, reviews, budget, judge scores and students in the database")
    from shadowtutor import db

    with db.session_scope(url) as session:
        accounts = ensure_accounts(session)
        session.flush()
        reviews = seed_reviews(session, generated, accounts, seed=seed, end=end)
        budget = seed_budget(session, generated, accounts["admin"], end)
        judged = seed_judge(session, generated, seed=seed, end=end)
        students.register(session, seed=seed, end=end, admin_id=accounts["admin"])
        reviews += students.seed_reviews(
            session,
            [p.record for p in extra],
            seed=seed,
            end=end,
            reviewers=[accounts[n] for n in ("giulia", "made", "sofia")],
        )
        judged += seed_judge(session, extra, seed=seed + 3, end=end)
        queue_kinds(session, tooling, accounts["admin"], seed=seed)
    summary = DemoSummary(len(generated), reviews, budget, len(compacted.days), log_dir, judged)
    summary.kinds = len(tooling)
    summary.feedback = len(reactions)
    return summary


def queue_kinds(session: Session, pairs: list[DemoPair], admin_id: int, *, seed: int) -> int:
    """Put a few of the Llama's tool-call and JSON pairs in the review queue (left open), so
    the Review page has them to show; the number queued."""
    from shadowtutor.review import workflow

    rng = random.Random(seed + 37)
    mine = [
        p.record
        for p in pairs
        if p.record["student_name"] == students.PRIMARY
        and schema.student_succeeded(p.record["student"])
    ]
    picked = [
        r
        for kind, n in (("tools", 16), ("json_schema", 8))
        for r in rng.sample(
            [r for r in mine if r["request"]["kind"] == kind],
            min(n, sum(r["request"]["kind"] == kind for r in mine)),
        )
    ]
    result = workflow.enqueue_records(
        session=session, records=picked, strategy="random", enqueued_by=admin_id
    )
    return result.added


def _silent(message: str) -> None:
    """The default progress: say nothing (tests and scripts)."""


def has_reviews(session: Session) -> bool:
    return session.exec(select(Review.id).limit(1)).first() is not None


def has_accounts(session: Session) -> bool:
    return session.exec(select(User.id).limit(1)).first() is not None
