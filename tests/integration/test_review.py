"""The review store on SQLite and PostgreSQL: queue, claims, reviews, edits, tags, progress;
and, on PostgreSQL, claims and submissions from several threads at once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete
from sqlmodel import Session, select

from shadowtutor import db
from shadowtutor.auth import SYSTEM
from shadowtutor.log import analytics, schema
from shadowtutor.log.write import LogWriter
from shadowtutor.review import progress as review_progress
from shadowtutor.review import queue as review
from shadowtutor.review import tags
from shadowtutor.review.queue import Judgement, ReviewError
from shadowtutor.review.tags import TagError
from shadowtutor.tables import Review, ReviewItem, Tag, User
from tests.support.gatesim import add_review

T0 = datetime(2026, 3, 1, 9, tzinfo=UTC)


def rec(i: int, *, sim: float | None = 0.5, lang: str = "de", prefix: str = "pair") -> dict:
    return schema.make_record(
        id=f"{prefix}-{i:03d}",
        ts=T0 + timedelta(minutes=i),
        source="demo",
        language=lang,
        category="chat",
        messages=[
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": f"Question {i}?"},
        ],
        teacher={"model": "gpt-4o-mini", "response": f"Teacher {i}", "latency_ms": 900},
        student={"model": "llama3", "response": f"Student {i}", "latency_ms": 300},
        similarity={"method": "lexical", "score": sim},
    )


def make_user(session: Session, name: str, role: str = "reviewer") -> int:
    user = User(username=name, role=role, password_hash="not-a-login")
    session.add(user)
    session.flush()
    return user.id


def approve(score: int = 4, **kw) -> Judgement:
    return Judgement(decision="approve", student_score=score, **kw)


@pytest.fixture
def people(session: Session) -> dict[str, int]:
    review.seed_default_tags(session=session, actor_id=SYSTEM)
    return {n: make_user(session, n) for n in ("ana", "ben", "cy")}


# --- tags --------------------------------------------------------------------------------


def test_default_tags_seeded_once(session: Session) -> None:
    assert review.seed_default_tags(session=session, actor_id=SYSTEM) == 8
    assert review.seed_default_tags(session=session, actor_id=SYSTEM) == 0
    names = {t.name for t in review.list_tags(session=session)}
    assert {"natural phrasing in the user's language", "culturally appropriate",
            "warm colleague-like tone", "robotic", "factual error", "hallucination", "unsafe",
            "wrong language"} == names  # fmt: skip


def test_tag_crud(session: Session, people) -> None:
    tag = tags.add_tag(session=session, name="  too   long ", kind="tone", actor_id=SYSTEM)
    assert tag.name == "too long"
    with pytest.raises(TagError, match="exists already"):
        tags.add_tag(session=session, name="too long", actor_id=SYSTEM)
    with pytest.raises(TagError, match="unknown tag kind"):
        tags.add_tag(session=session, name="x", kind="mood", actor_id=SYSTEM)
    tags.update_tag(session=session, tag_id=tag.id, name="verbose", actor_id=SYSTEM)
    tags.update_tag(session=session, tag_id=tag.id, active=False, actor_id=SYSTEM)
    assert "verbose" not in {t.name for t in tags.list_tags(session=session)}
    assert "verbose" in {t.name for t in tags.list_tags(session=session, active_only=False)}
    tags.delete_tag(session=session, tag_id=tag.id, actor_id=SYSTEM)  # unused: may go
    assert session.get(Tag, tag.id) is None
    # A used tag can only be deactivated, so old reviews keep their meaning.
    (item_id,) = review.enqueue_records(
        session=session, enqueued_by=SYSTEM, records=[rec(1)]
    ).item_ids
    review.submit_review(session=session, item_id=item_id, reviewer_id=people["ana"],
                         judgement=approve(tags=["robotic"]))  # fmt: skip
    robotic = session.exec(select(Tag).where(Tag.name == "robotic")).one()
    with pytest.raises(TagError, match="deactivate it"):
        tags.delete_tag(session=session, tag_id=robotic.id, actor_id=SYSTEM)


# --- enqueue -----------------------------------------------------------------------------


def test_enqueue_snapshots_the_pair_and_never_twice(session: Session, people) -> None:
    admin = make_user(session, "ada", "admin")
    first = review.enqueue_records(session=session, records=[rec(1, sim=0.2), rec(2, sim=0.9)],
        strategy="lowest_similarity", required_reviews=2, enqueued_by=admin,
    )  # fmt: skip
    assert (first.added, first.already_queued) == (2, 0)
    again = review.enqueue_records(
        session=session, enqueued_by=SYSTEM, records=[rec(2), rec(3), rec(3)]
    )
    assert (again.added, again.already_queued) == (1, 1)
    items = {i.pair_id: i for i in session.exec(select(ReviewItem))}
    assert len(items) == 3
    item = items["pair-001"]
    snap = item.snapshot
    assert [m["role"] for m in snap["messages"]] == ["system", "user"]
    assert snap["teacher"]["response"] == "Teacher 1" and snap["student"]["latency_ms"] == 300
    assert (snap["similarity"], snap["language"], snap["category"], snap["source"]) == (
        0.2, "de", "chat", "demo",
    )  # fmt: skip
    assert snap["ts"] == "2026-03-01T09:01:00.000Z"
    assert item.pair_ts.astimezone(UTC) == T0 + timedelta(minutes=1)
    assert (item.required_reviews, item.enqueued_by, item.status) == (2, admin, "open")
    assert item.priority == pytest.approx(0.8)  # low similarity first


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "vibes"}, "unknown strategy"),
        ({"required_reviews": 0}, "reviews per item must be 1 to 20"),
        ({"records": [{"messages": []}]}, "needs an 'id'"),
    ],
)
def test_enqueue_rejects_bad_input(session: Session, kwargs, message) -> None:
    kwargs.setdefault("records", [rec(1)])
    with pytest.raises(ReviewError, match=message):
        review.enqueue_records(session=session, enqueued_by=SYSTEM, **kwargs)


def test_fill_queue_from_the_log(session: Session, tmp_path: Path) -> None:
    with LogWriter(tmp_path / "logs") as writer:
        writer.append_many([rec(i, sim=i / 20) for i in range(10)])
    con = analytics.connect(tmp_path / "logs")
    picked, result = review.fill_queue(
        session=session, con=con, strategy="lowest_similarity", size=3, enqueued_by=SYSTEM
    )
    assert [r["id"] for r in picked.records] == ["pair-000", "pair-001", "pair-002"]
    assert result.added == 3
    _, again = review.fill_queue(
        session=session, con=con, strategy="lowest_similarity", size=3, enqueued_by=SYSTEM
    )
    assert again.added == 3 and picked.candidates == 10  # the next three, none twice
    assert len(review.queued_pair_ids(session=session)) == 6


# --- claims ------------------------------------------------------------------------------


def test_claims_single_review_items(session: Session, people) -> None:
    review.enqueue_records(session=session, enqueued_by=SYSTEM,
                           records=[rec(1, sim=0.9), rec(2, sim=0.1)],
                           strategy="lowest_similarity")  # fmt: skip
    a = review.claim_next(session=session, reviewer_id=people["ana"], now=T0)
    assert a.pair_id == "pair-002"  # lowest similarity first
    assert a.claimed_by == people["ana"]
    assert review.claim_next(session=session, reviewer_id=people["ana"], now=T0).id == a.id
    b = review.claim_next(session=session, reviewer_id=people["ben"], now=T0)
    assert b.id != a.id
    assert review.claim_next(session=session, reviewer_id=people["cy"], now=T0) is None
    # Ana's claim lapses: the item returns to the queue for Cy, and Ana cannot renew it.
    later = T0 + timedelta(minutes=16)
    assert review.claim_next(session=session, reviewer_id=people["cy"], now=later).id == a.id
    assert review.claim_item(session=session, item_id=a.id, reviewer_id=people["ana"],
                             now=later) is None  # fmt: skip


def test_multi_review_items_go_to_several_reviewers_but_once_each(session, people) -> None:
    (item_id,) = review.enqueue_records(
        session=session, enqueued_by=SYSTEM, records=[rec(1)], required_reviews=2
    ).item_ids
    got = [review.claim_next(session=session, reviewer_id=people[n], now=T0) for n in people]
    assert [g.id if g else None for g in got] == [item_id, item_id, item_id]
    for name in ("ana", "ben"):
        review.submit_review(session=session, item_id=item_id, reviewer_id=people[name],
                             judgement=approve())  # fmt: skip
    item = session.get(ReviewItem, item_id)
    session.refresh(item)
    assert (item.reviews_done, item.status) == (2, "done")
    assert review.claim_next(session=session, reviewer_id=people["cy"], now=T0) is None


def test_a_reviewer_never_gets_an_item_again_after_skipping(session, people) -> None:
    (item_id,) = review.enqueue_records(
        session=session, enqueued_by=SYSTEM, records=[rec(1)]
    ).item_ids
    review.claim_next(session=session, reviewer_id=people["ana"], now=T0)
    review.submit_review(session=session, item_id=item_id, reviewer_id=people["ana"],
                         judgement=Judgement(decision="skip", seconds_spent=3))  # fmt: skip
    assert review.claim_next(session=session, reviewer_id=people["ana"], now=T0) is None
    item = review.claim_next(session=session, reviewer_id=people["ben"], now=T0)
    assert item.id == item_id and item.reviews_done == 0  # a skip counts for nothing


# --- submit and edit ---------------------------------------------------------------------


def test_submit_records_everything(session: Session, people) -> None:
    (item_id,) = review.enqueue_records(
        session=session, enqueued_by=SYSTEM, records=[rec(1)]
    ).item_ids
    review.claim_next(session=session, reviewer_id=people["ana"], now=T0)
    saved = review.submit_review(
        session=session, item_id=item_id, reviewer_id=people["ana"],
        judgement=Judgement(
            decision="reject", student_score=2, teacher_score=5, verdict="teacher",
            tags=["robotic", "wrong language", "robotic"], note=" stiff ",
            corrected_answer="Better answer", seconds_spent=41.5, blind=True,
        ),
    )  # fmt: skip
    assert (saved.decision, saved.student_score, saved.teacher_score, saved.verdict) == (
        "reject", 2, 5, "teacher",
    )  # fmt: skip
    assert saved.tags == ["robotic", "wrong language"] and saved.note == "stiff"
    assert (saved.corrected_answer, saved.seconds_spent, saved.blind) == (
        "Better answer",
        41.5,
        True,
    )
    item = session.get(ReviewItem, item_id)
    session.refresh(item)
    assert (item.status, item.claimed_by, item.reviews_done) == ("done", None, 1)
    with pytest.raises(ReviewError, match="reviewed this item already"):
        review.submit_review(session=session, item_id=item_id, reviewer_id=people["ana"],
                             judgement=approve())  # fmt: skip


@pytest.mark.parametrize(
    ("judgement", "message"),
    [
        (Judgement(decision="maybe"), "decision must be one of"),
        (Judgement(decision="approve"), "give the student a score"),
        (Judgement(decision="approve", student_score=6), "student score must be 1 to 5"),
        (Judgement(decision="approve", student_score=3, teacher_score=0), "teacher score"),
        (Judgement(decision="approve", student_score=3, verdict="both"), "verdict must be"),
        (Judgement(decision="approve", student_score=3, tags=["nice"]), "unknown or inactive tag"),
    ],
)
def test_submit_rejects_bad_judgements(session, people, judgement, message) -> None:
    (item_id,) = review.enqueue_records(
        session=session, enqueued_by=SYSTEM, records=[rec(1)]
    ).item_ids
    with pytest.raises(ReviewError, match=message):
        review.submit_review(session=session, item_id=item_id, reviewer_id=people["ana"],
                             judgement=judgement)  # fmt: skip


def test_edit_appends_a_version_and_keeps_the_old_one(session: Session, people) -> None:
    (item_id,) = review.enqueue_records(
        session=session, enqueued_by=SYSTEM, records=[rec(1)]
    ).item_ids
    first = review.submit_review(session=session, item_id=item_id, reviewer_id=people["ana"],
                                 judgement=Judgement(decision="skip"))  # fmt: skip
    second = review.edit_review(session=session, review_id=first.id, reviewer_id=people["ana"],
                                judgement=approve(5, note="on second look"))  # fmt: skip
    session.refresh(first)
    assert (first.is_current, second.is_current, second.previous_id) == (False, True, first.id)
    item = session.get(ReviewItem, item_id)
    session.refresh(item)
    assert (item.reviews_done, item.status) == (1, "done")  # skip -> approve now counts
    with pytest.raises(ReviewError, match="changed already"):
        review.edit_review(session=session, review_id=first.id, reviewer_id=people["ana"],
                           judgement=approve(1))  # fmt: skip
    with pytest.raises(ReviewError, match="only change your own"):
        review.edit_review(session=session, review_id=second.id, reviewer_id=people["ben"],
                           judgement=approve(1))  # fmt: skip
    third = review.edit_review(session=session, review_id=second.id, reviewer_id=people["ana"],
                               judgement=Judgement(decision="reject", student_score=1))  # fmt: skip
    assert [r.id for r in review.history(session=session, review_id=third.id)] == [
        third.id, second.id, first.id,
    ]  # fmt: skip
    mine = review.recent_reviews(session=session, reviewer_id=people["ana"])
    assert [(r.id, i.id) for r, i in mine] == [(third.id, item_id)]


def test_progress(session: Session, people) -> None:
    ids = review.enqueue_records(
        session=session, enqueued_by=SYSTEM, records=[rec(i) for i in range(4)]
    ).item_ids
    for item_id, secs in zip(ids[:3], (10, 20, 60), strict=True):
        review.submit_review(session=session, item_id=item_id, reviewer_id=people["ana"],
                             judgement=approve(seconds_spent=secs))  # fmt: skip
    review.submit_review(session=session, item_id=ids[3], reviewer_id=people["ben"],
                         judgement=Judgement(decision="skip", seconds_spent=2))  # fmt: skip
    old = session.exec(select(Review).where(Review.item_id == ids[0])).one()
    old.created_at = datetime.now(UTC) - timedelta(days=2)  # not today
    session.add(old)
    session.flush()
    prog = review_progress.progress(session=session)
    assert (prog.queue_open, prog.items_done, prog.items_total) == (1, 3, 4)
    assert (prog.reviews_total, prog.reviewed_today, prog.median_seconds) == (3, 2, 20)
    ana, ben = prog.per_reviewer
    assert (ana.reviewer, ana.reviews, ana.approved, ana.today, ana.median_seconds) == (
        "ana", 3, 3, 2, 20,
    )  # fmt: skip
    assert (ben.reviews, ben.skipped, ben.median_seconds) == (0, 1, None)


def test_content_text_of_multipart_messages() -> None:
    assert review.content_text([{"type": "text", "text": "hi"}, {"type": "image_url"}]) == (
        "hi\n[image_url]"
    )
    assert review.content_text(None) == ""


# --- PostgreSQL: several reviewers at the same moment -------------------------------------


@pytest.fixture
def pg_people(pg_migrated: str):
    """Committed users and a clean queue on the session's PostgreSQL database."""
    url = pg_migrated
    tag = f"cc{datetime.now(UTC).strftime('%H%M%S%f')}"
    with db.session_scope(url) as s:
        review.seed_default_tags(session=s, actor_id=SYSTEM)
        ids = [make_user(s, f"{tag}-{i}") for i in range(6)]
    yield url, tag, ids
    with db.session_scope(url) as s:
        s.execute(delete(Review).where(Review.reviewer_id.in_(ids)))
        s.execute(delete(ReviewItem).where(ReviewItem.pair_id.like(f"{tag}%")))
        s.execute(delete(User).where(User.id.in_(ids)))


def _run_threads(target, args_list) -> list:
    results: list = [None] * len(args_list)
    errors: list = []
    barrier = threading.Barrier(len(args_list))

    def run(i, args):
        try:
            barrier.wait(timeout=20)
            results[i] = target(*args)
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(args_list)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


@pytest.mark.postgres
def test_concurrent_claims_never_share_a_single_review_item(pg_people) -> None:
    url, tag, reviewers = pg_people
    with db.session_scope(url) as s:
        review.enqueue_records(
            session=s, enqueued_by=SYSTEM, records=[rec(i, prefix=tag) for i in range(30)]
        )

    def work(reviewer_id: int) -> list[int]:
        got = []
        while True:
            with db.session_scope(url) as s:
                item = review.claim_next(session=s, reviewer_id=reviewer_id)
                if item is None or not item.pair_id.startswith(tag):
                    return got
                got.append(item.id)
            with db.session_scope(url) as s:
                review.submit_review(session=s, item_id=item.id, reviewer_id=reviewer_id,
                                     judgement=approve(seconds_spent=1))  # fmt: skip

    per_reviewer = _run_threads(work, [(r,) for r in reviewers])
    claimed = [i for got in per_reviewer for i in got]
    assert len(claimed) == 30 and len(set(claimed)) == 30  # every item once, none twice
    with db.session_scope(url) as s:
        items = s.exec(select(ReviewItem).where(ReviewItem.pair_id.like(f"{tag}%"))).all()
        assert {(i.status, i.reviews_done) for i in items} == {("done", 1)}


@pytest.mark.postgres
def test_first_claims_at_the_same_moment_are_distinct(pg_people) -> None:
    url, tag, reviewers = pg_people
    with db.session_scope(url) as s:
        review.enqueue_records(
            session=s, enqueued_by=SYSTEM, records=[rec(i, prefix=tag) for i in range(3)]
        )

    def claim(reviewer_id: int) -> int | None:
        with db.session_scope(url) as s:
            item = review.claim_next(session=s, reviewer_id=reviewer_id)
            return item.id if item else None

    got = _run_threads(claim, [(r,) for r in reviewers])  # six reviewers, three items
    taken = [g for g in got if g is not None]
    assert len(taken) == 3 and len(set(taken)) == 3


@pytest.mark.postgres
def test_concurrent_submissions_lose_nothing(pg_people) -> None:
    url, tag, reviewers = pg_people
    with db.session_scope(url) as s:
        (item_id,) = review.enqueue_records(
            session=s, enqueued_by=SYSTEM, records=[rec(0, prefix=tag)], required_reviews=6
        ).item_ids

    def submit(reviewer_id: int, score: int) -> int:
        with db.session_scope(url) as s:
            return review.submit_review(session=s, item_id=item_id, reviewer_id=reviewer_id,
                                        judgement=approve(score)).id  # fmt: skip

    ids = _run_threads(submit, [(r, 1 + i % 5) for i, r in enumerate(reviewers)])
    assert len(set(ids)) == 6
    with db.session_scope(url) as s:
        item = s.get(ReviewItem, item_id)
        assert (item.reviews_done, item.status) == (6, "done")
        rows = s.exec(select(Review).where(Review.item_id == item_id)).all()
        assert sorted(r.reviewer_id for r in rows) == sorted(reviewers)


@pytest.mark.postgres
def test_a_double_submit_by_one_reviewer_keeps_one_review(pg_people) -> None:
    url, tag, reviewers = pg_people
    with db.session_scope(url) as s:
        (item_id,) = review.enqueue_records(
            session=s, enqueued_by=SYSTEM, records=[rec(0, prefix=tag)]
        ).item_ids

    def submit() -> str:
        try:
            with db.session_scope(url) as s:
                review.submit_review(session=s, item_id=item_id, reviewer_id=reviewers[0],
                                     judgement=approve())  # fmt: skip
            return "saved"
        except ReviewError:
            return "refused"

    assert sorted(_run_threads(submit, [(), ()])) == ["refused", "saved"]
    with db.session_scope(url) as s:
        item = s.get(ReviewItem, item_id)
        assert item.reviews_done == 1


# --- CLI ---------------------------------------------------------------------------------


def test_cli_enqueue_stats_and_tags(migrated) -> None:
    from click.testing import CliRunner

    from shadowtutor.cli import main

    def run(*args: str):
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    with LogWriter(migrated.log_path) as writer:
        writer.append_many([rec(i, sim=i / 10, lang="de" if i % 2 else "id") for i in range(8)])
    out = run("review", "enqueue", "--strategy", "lowest_similarity", "--size", "3",
              "--reviews", "2")  # fmt: skip
    assert out.exit_code == 0 and "added 3 pairs" in out.output, out.output
    out = run("review", "enqueue", "--strategy", "stratified", "--size", "50",
              "--from", "2026-03-01", "--to", "2026-03-01", "--source", "demo")  # fmt: skip
    assert "added 5 pairs" in out.output  # the other five; never the same pair twice
    out = run("review", "enqueue", "--size", "5")
    assert "added 0 pairs" in out.output and "nothing added" in out.output
    bad = run("review", "enqueue", "--from", "2026-03-02", "--to", "2026-03-01")
    assert bad.exit_code == 1 and "after the end date" in bad.output
    assert "Traceback" not in bad.output
    stats = run("review", "stats").output
    assert "queue: 8 open, 0 done of 8 items" in stats
    assert "n/a (too few items with two reviews)" in stats
    assert "no tags" in run("review", "tags", "list").output
    assert "added 8 default tags" in run("review", "tags", "add", "--defaults").output
    assert (
        "added tag 'too formal' (tone)"
        in run("review", "tags", "add", "too formal", "--kind", "tone").output
    )
    listing = run("review", "tags", "list").output
    assert "too formal" in listing and "warm colleague-like tone" in listing
    dup = run("review", "tags", "add", "too formal")
    assert dup.exit_code == 1 and "exists already" in dup.output


# --- submit checks the claim and the need (issue 12, item 12) ------------------------------


def test_k_reviews_are_never_exceeded(session: Session, people) -> None:
    (item_id,) = review.enqueue_records(
        session=session, records=[rec(0)], required_reviews=2, enqueued_by=SYSTEM
    ).item_ids
    for name in ("ana", "ben", "cy"):  # k = 2: all three may hold it at once
        assert review.claim_next(session=session, reviewer_id=people[name]).id == item_id
    for name in ("ana", "ben"):
        review.submit_review(
            session=session, item_id=item_id, reviewer_id=people[name], judgement=approve()
        )
    with pytest.raises(ReviewError, match="all its 2 review"):
        review.submit_review(
            session=session, item_id=item_id, reviewer_id=people["cy"], judgement=approve()
        )
    item = session.get(ReviewItem, item_id)
    session.refresh(item)
    assert (item.reviews_done, item.status) == (2, "done")
    rows = session.exec(select(Review).where(Review.item_id == item_id)).all()
    assert len(rows) == 2
    # a skip still counts nothing and is recorded (cy is not offered it again)
    review.submit_review(
        session=session, item_id=item_id, reviewer_id=people["cy"],
        judgement=Judgement(decision="skip"),
    )  # fmt: skip
    session.refresh(item)
    assert item.reviews_done == 2


def test_a_review_on_a_claim_someone_else_took_is_refused(session: Session, people) -> None:
    (item_id,) = review.enqueue_records(
        session=session, records=[rec(0)], enqueued_by=SYSTEM
    ).item_ids
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    assert review.claim_next(session=session, reviewer_id=people["ana"], now=long_ago)
    assert review.claim_next(session=session, reviewer_id=people["ben"]).id == item_id
    with pytest.raises(ReviewError, match="another reviewer holds this pair"):
        review.submit_review(
            session=session, item_id=item_id, reviewer_id=people["ana"], judgement=approve()
        )
    review.submit_review(
        session=session, item_id=item_id, reviewer_id=people["ben"], judgement=approve()
    )
    item = session.get(ReviewItem, item_id)
    session.refresh(item)
    assert (item.reviews_done, item.status, item.claimed_by) == (1, "done", None)


def test_an_edit_from_skip_never_exceeds_k(session: Session, people) -> None:
    (item_id,) = review.enqueue_records(
        session=session, records=[rec(0)], enqueued_by=SYSTEM
    ).item_ids
    skipped = review.submit_review(
        session=session, item_id=item_id, reviewer_id=people["ana"],
        judgement=Judgement(decision="skip"),
    )  # fmt: skip
    review.submit_review(
        session=session, item_id=item_id, reviewer_id=people["ben"], judgement=approve()
    )
    with pytest.raises(ReviewError, match="all its 1 review"):
        review.edit_review(
            session=session, review_id=skipped.id, reviewer_id=people["ana"], judgement=approve()
        )


# --- eight reviewers at once, on SQLite and PostgreSQL --------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_db(request: pytest.FixtureRequest, tmp_path: Path):
    """(url, tag, reviewer ids): a committed database that threads share; on PostgreSQL the
    session's database, with this test's rows told apart by ``tag`` (the items' category)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shared.db'}"
        db.upgrade(url)
    else:
        url = request.getfixturevalue("pg_migrated")
    tag = f"q{datetime.now(UTC).strftime('%H%M%S%f')}"
    with db.session_scope(url) as s:
        ids = [make_user(s, f"{tag}-{i}") for i in range(8)]
    yield url, tag, ids
    with db.session_scope(url) as s:
        s.execute(delete(Review).where(Review.reviewer_id.in_(ids)))
        s.execute(delete(ReviewItem).where(ReviewItem.category == tag))
        s.execute(delete(User).where(User.id.in_(ids)))


@pytest.mark.parametrize("k", [1, 2])
def test_eight_reviewers_never_see_a_false_empty_queue_nor_k_plus_one(shared_db, k) -> None:
    url, tag, reviewers = shared_db
    n = 60
    records = [{**rec(i, prefix=tag), "category": tag} for i in range(n)]
    with db.session_scope(url) as s:
        review.enqueue_records(session=s, records=records, required_reviews=k, enqueued_by=SYSTEM)

    def work(reviewer_id: int) -> tuple[int, int]:
        done = refused = 0
        while True:
            with db.session_scope(url) as s:
                item = review.claim_next(
                    session=s, reviewer_id=reviewer_id, filters={"category": tag}
                )
                if item is None:  # must mean: nothing left this reviewer may review
                    return done, refused
                item_id = item.id
            try:
                with db.session_scope(url) as s:
                    review.submit_review(session=s, item_id=item_id, reviewer_id=reviewer_id,
                                         judgement=approve(seconds_spent=1))  # fmt: skip
                done += 1
            except ReviewError:  # k > 1: others finished it meanwhile
                refused += 1

    results = _run_threads(work, [(r,) for r in reviewers])
    assert sum(d for d, _ in results) == n * k
    with db.session_scope(url) as s:
        items = s.exec(select(ReviewItem).where(ReviewItem.category == tag)).all()
        assert len(items) == n and {(i.status, i.reviews_done) for i in items} == {("done", k)}
        for item in items:
            rows = s.exec(select(Review).where(Review.item_id == item.id)).all()
            assert len(rows) == k and len({r.reviewer_id for r in rows}) == k


def test_sqlite_claims_stay_right_when_others_take_the_first_twenty(tmp_path: Path) -> None:
    """The race behind the false "queue empty" on SQLite, made deterministic: between a
    reviewer reading the queue and claiming, others claim the first twenty open items."""
    import sqlite3

    from sqlalchemy import event

    path = tmp_path / "race.db"
    url = f"sqlite:///{path}"
    db.upgrade(url)
    with db.session_scope(url) as s:
        ana, ben = make_user(s, "ana"), make_user(s, "ben")
        review.enqueue_records(session=s, records=[rec(i) for i in range(30)], enqueued_by=SYSTEM)
    fired = []

    def others_claim_first(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if fired or not statement.lstrip().upper().startswith("UPDATE REVIEW_ITEM"):
            return
        fired.append(statement)
        other = sqlite3.connect(path, timeout=10)
        until = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
        other.execute(
            "UPDATE review_item SET claimed_by = ?, claimed_until = ? WHERE id IN "
            "(SELECT id FROM review_item ORDER BY id LIMIT 20)",
            (ana, until),
        )
        other.commit()
        other.close()

    engine = db.get_engine(url)
    event.listen(engine, "before_cursor_execute", others_claim_first)
    try:
        with db.session_scope(url) as s:
            item = review.claim_next(session=s, reviewer_id=ben)
    finally:
        event.remove(engine, "before_cursor_execute", others_claim_first)
    assert fired and item is not None  # ten items are still open: never "nothing to review"
    with db.session_scope(url) as s:
        held = s.exec(select(ReviewItem).where(ReviewItem.claimed_by == ana)).all()
        assert item.id not in {i.id for i in held} and len(held) == 20


def test_fill_queue_judge_unsure_stores_design_weights_the_gate_reads(
    session: Session, tmp_path: Path, people
) -> None:
    """Issue 13: the queue favours pairs the judge is unsure of, and each item carries the
    design weight the gate's estimate needs to stay unbiased."""
    from shadowtutor.gate import evidence
    from shadowtutor.gate.criteria import parse_config
    from shadowtutor.tables import JudgeScore

    with LogWriter(tmp_path / "logs") as writer:
        writer.append_many([rec(i, sim=0.75) for i in range(40)])
    for i in range(40):  # the judge's two orders disagree by 2 points on every 4th pair
        second = 2.0 if i % 4 == 0 else 4.0
        session.add(
            JudgeScore(
                pair_id=f"pair-{i:03d}",
                template_version="pairwise-v1",
                model="judge",
                category="chat",
                pair_ts=T0 + timedelta(minutes=i),
                student_score=(4.0 + second) / 2,
                teacher_score=5.0,
                consistent=True,
                calls=[
                    {"order": "teacher_first", "score_a": 5, "score_b": 4},
                    {"order": "student_first", "score_a": second, "score_b": 5},
                ],
            )  # fmt: skip
        )
    session.flush()
    con = analytics.connect(tmp_path / "logs")
    # Not calibrated yet (no pair scored by both): uniform, and it says so.
    picked, result = review.fill_queue(
        session=session, con=con, strategy="judge_unsure", size=2, enqueued_by=SYSTEM
    )
    assert "sampled uniformly" in picked.note and set(picked.weights.values()) == {1.0}
    session.execute(delete(ReviewItem))
    # 36 calibration pairs the judge scored exactly as a reviewer did: kappa 1.
    for i in range(36):
        done = add_review(
            session, pair_id=f"cal-{i}", category="chat", similarity=0.7, pair_ts=T0,
            method="lexical", reviewer_id=people["ben"], score=3 + i % 3, decision="approve",
        )  # fmt: skip
        session.add(
            JudgeScore(
                pair_id=done.pair_id,
                template_version="pairwise-v1",
                model="judge",
                category="chat",
                pair_ts=T0,
                student_score=float(3 + i % 3),
                teacher_score=5.0,
                consistent=True,
            )  # fmt: skip
        )
    session.flush()
    picked, result = review.fill_queue(
        session=session, con=con, strategy="judge_unsure", size=10, enqueued_by=SYSTEM
    )
    assert result.added == 10 and picked.candidates == 40 and picked.note == ""
    items = session.exec(select(ReviewItem).where(ReviewItem.strategy == "judge_unsure")).all()
    weights = {i.pair_id: i.snapshot["design_weight"] for i in items}
    assert {i.strategy for i in items} == {"judge_unsure"}
    unsure = [w for p, w in weights.items() if int(p[-3:]) % 4 == 0]
    sure = [w for p, w in weights.items() if int(p[-3:]) % 4]
    assert all(w < 1 for w in unsure) and all(w > 1 for w in sure)  # picked more / less often
    first = items[0]
    review.submit_review(
        session=session, item_id=first.id, reviewer_id=people["ana"],
        judgement=Judgement(decision="approve", student_score=5),
    )  # fmt: skip
    rows = evidence.review_rows(session=session, config=parse_config({}))
    mine = [r.weight for r in rows if r.pair_id == first.pair_id]
    assert mine == [pytest.approx(weights[first.pair_id])]
    assert {r.weight for r in rows if r.pair_id.startswith("cal-")} == {1.0}
