"""The Review, Review queue and Review progress pages in AppTest, as each relevant role."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlmodel import select, update

from shadowtutor import db
from shadowtutor.accounts import permissions
from shadowtutor.log import schema
from shadowtutor.log.write import LogWriter
from shadowtutor.review import taxonomy, workflow
from shadowtutor.tables import Review, ReviewItem
from tests.support.apputil import app_as, make_user, page_as, switch
from tests.support.tcpgate import TcpGate

NOW = datetime.now(UTC)
HOSTILE = (
    "<script>alert('pwned')</script>\n# Not a heading\n**not bold** "
    "<img src=x onerror=alert(1)> [link](javascript:alert(1))\n"
)
HUGE = HOSTILE + ("lorem ipsum dolor sit amet " * 8000)  # > 200 KB


def records(n: int = 3) -> list[dict]:
    out = []
    for i in range(n):
        out.append(
            schema.make_record(
                id=f"pair-{i}",
                ts=NOW - timedelta(hours=i + 1),
                source="demo",
                language="de",
                category="chat",
                messages=[
                    {"role": "system", "content": "You are helpful."},
                    {"role": "user", "content": f"<b>Frage {i}</b>"},
                ],
                teacher={
                    "model": "gpt-4o-mini",
                    "response": HUGE if i == 0 else f"Lehrer {i}",
                    "latency_ms": 1200,
                },  # fmt: skip
                student={
                    "model": "llama3",
                    "response": HOSTILE if i == 0 else f"Schüler {i}",
                    "latency_ms": 400,
                },  # fmt: skip
                similarity={"method": "lexical", "score": 0.1 * i},
            )
        )
    return out


@pytest.fixture
def queued(migrated):
    """A migrated home with three pairs in the log and in the queue, default tags."""
    recs = records()
    with LogWriter(migrated.log_path) as writer:
        writer.append_many(recs)
    with db.session_scope(migrated.db_url) as s:
        taxonomy.seed_default_tags(session=s, actor_id=permissions.SYSTEM)
        workflow.enqueue_records(
            session=s, records=recs, strategy="lowest_similarity", enqueued_by=permissions.SYSTEM
        )
    return migrated


def reviews(url: str) -> list[Review]:
    with db.session_scope(url) as s:
        return list(s.exec(select(Review).order_by(Review.id)))


def item_id(at) -> int:
    return at.session_state["review_item_id"]


def test_untrusted_output_is_shown_as_text(queued) -> None:
    at = page_as("pages/review.py", queued.db_url, "reviewer").run()
    assert not at.exception
    with db.session_scope(queued.db_url) as s:
        first = s.get(ReviewItem, item_id(at))
    assert first.pair_id == "pair-0"  # lowest similarity first
    codes = [c.value for c in at.code]
    assert HUGE in codes and HOSTILE.rstrip() in codes and len(HUGE) > 200_000
    assert "<b>Frage 0</b>" in codes
    rendered = [m.value for m in at.markdown] + [c.value for c in at.caption]
    assert not any("<script>" in v or "onerror" in v for v in rendered)
    assert ["Student", "Teacher"] == [h.value for h in at.subheader][0:2]
    assert any("model llama3" in c.value for c in at.caption)  # not blind: models shown
    assert any("**A** approve" in c.value for c in at.caption)  # shortcuts are listed


def test_review_approve_then_next_item_then_skip(queued) -> None:
    url = queued.db_url
    at = page_as("pages/review.py", url, "reviewer").run()
    first = item_id(at)
    p = f"q{first}_"
    at.button(key=f"{p}approve").click().run()
    assert "give the student a score" in at.error[0].value  # nothing saved without a score
    assert reviews(url) == []
    at.radio(key=f"{p}left").set_value(4)
    at.radio(key=f"{p}right").set_value(5)
    at.radio(key=f"{p}verdict").set_value("right")
    at.multiselect(key=f"{p}tags").set_value(["robotic", "wrong language"])
    at.text_area(key=f"{p}note").input("Stiff but right.")
    at.text_area(key=f"{p}corrected").input("Ein besseres Beispiel.")
    at.button(key=f"{p}approve").click().run()
    assert not at.exception
    (saved,) = reviews(url)
    assert (saved.item_id, saved.decision, saved.student_score, saved.teacher_score) == (
        first, "approve", 4, 5,
    )  # fmt: skip
    assert (saved.verdict, saved.tags, saved.note) == ("teacher", ["robotic", "wrong language"],
                                                       "Stiff but right.")  # fmt: skip
    assert saved.corrected_answer == "Ein besseres Beispiel." and saved.seconds_spent >= 0
    assert "Saved: approve" in at.success[0].value
    second = item_id(at)
    assert second != first  # the next item at once
    at.button(key=f"q{second}_skip").click().run()
    assert [r.decision for r in reviews(url)] == ["approve", "skip"]
    assert item_id(at) not in (first, second)


def test_edit_an_earlier_review_keeps_the_old_version(queued) -> None:
    url = queued.db_url
    at = page_as("pages/review.py", url, "reviewer").run()
    p = f"q{item_id(at)}_"
    at.radio(key=f"{p}left").set_value(2)
    at.button(key=f"{p}reject").click().run()
    (old,) = reviews(url)
    at.radio(key="review_view").set_value("My recent reviews").run()
    assert not at.exception
    assert at.dataframe[0].value["decision"].tolist() == ["reject"]
    # no teacher score or verdict given: a dash, not a raw None (issue 14 item 10)
    assert at.dataframe[0].value[["teacher score", "verdict"]].to_numpy().tolist() == [["—", "—"]]
    e = f"e{old.id}_"
    assert at.radio(key=f"{e}left").value == 2  # the form starts from the review
    at.radio(key=f"{e}left").set_value(4)
    at.radio(key=f"{e}decision").set_value("approve")
    at.button(key=f"{e}save").click().run()
    assert not at.exception
    old_again, new = reviews(url)
    assert (old_again.is_current, old_again.decision, old_again.student_score) == (
        False,
        "reject",
        2,
    )
    assert (new.is_current, new.decision, new.student_score, new.previous_id) == (
        True, "approve", 4, old.id,
    )  # fmt: skip
    assert "earlier version" in at.success[0].value
    assert at.selectbox(key="review_edit_id").value == new.id


def test_blind_mode_hides_models_until_submitted(queued, monkeypatch) -> None:
    monkeypatch.setenv("SHADOWTUTOR_REVIEW_BLIND", "true")
    url = queued.db_url
    at = page_as("pages/review.py", url, "reviewer").run()
    assert not at.exception
    first = item_id(at)
    assert [h.value for h in at.subheader][0:2] == ["Answer A", "Answer B"]
    captions = " ".join(c.value for c in at.caption)
    assert "llama3" not in captions and "gpt-4o-mini" not in captions
    assert "Blind review" in captions
    p = f"q{first}_"
    at.radio(key=f"{p}left").set_value(2)  # A
    at.button(key=f"{p}approve").click().run()
    assert "Score both answers" in at.error[0].value
    at.radio(key=f"{p}right").set_value(5)  # B
    at.radio(key=f"{p}verdict").set_value("right")  # B better
    at.button(key=f"{p}approve").click().run()
    (saved,) = reviews(url)
    a_is_teacher = workflow.blind_order(first, saved.reviewer_id)
    # A scored 2, B scored 5 and judged better.
    expected = (2, 5, "student") if a_is_teacher else (5, 2, "teacher")
    assert (saved.teacher_score, saved.student_score, saved.verdict) == expected
    assert saved.blind is True
    reveal = at.success[0].value
    assert "Answer A was the" in reveal and "llama3" in reveal and "gpt-4o-mini" in reveal


def test_a_claimed_item_is_not_shown_to_another_reviewer(queued) -> None:
    url = queued.db_url
    rita = page_as("pages/review.py", url, "reviewer").run()
    make_user(url, "admin", "olga")
    olga = page_as("pages/review.py", url, "admin")
    olga.session_state["user_id"] = make_user(url, "admin", "olga")
    olga.run()
    assert item_id(olga) != item_id(rita)


def test_manager_is_refused_review_and_queue_admin(queued) -> None:
    at = app_as(queued.db_url, "manager").run()
    switch(at, "pages/review.py")
    assert any("may not open Review" in e.value for e in at.error)
    switch(at, "pages/review_admin.py")
    assert any("may not open Review queue" in e.value for e in at.error)
    assert reviews(queued.db_url) == []


def test_empty_queue_says_how_to_fill_it(migrated) -> None:
    at = page_as("pages/review.py", migrated.db_url, "reviewer").run()
    assert "shadowtutor review enqueue" in at.info[0].value


def test_admin_fills_the_queue_and_edits_tags(migrated) -> None:
    with LogWriter(migrated.log_path) as writer:
        writer.append_many(records(5))
    at = page_as("pages/review_admin.py", migrated.db_url, "admin").run()
    assert not at.exception
    at.selectbox[0].set_value("lowest_similarity")
    at.number_input[0].set_value(2)
    at.number_input[1].set_value(2)  # reviews per pair
    at.button[0].click().run()  # Add to queue
    assert not at.exception
    assert "Added 2 pairs" in at.success[0].value
    with db.session_scope(migrated.db_url) as s:
        items = s.exec(select(ReviewItem).order_by(ReviewItem.id)).all()
        assert [(i.pair_id, i.required_reviews) for i in items] == [("pair-0", 2), ("pair-1", 2)]
    at.button[0].click().run()  # again: the next two, never the same pair twice
    assert "Added 2 pairs" in at.success[0].value
    at.button(key="seed_tags").click().run()
    at.text_input(key="tag_name").input("too formal")
    at.button(key="FormSubmitter:add_tag-Add tag").click().run()
    assert not at.exception
    with db.session_scope(migrated.db_url) as s:
        names = {t.name for t in taxonomy.list_tags(session=s)}
    assert "too formal" in names and "warm colleague-like tone" in names


def test_admin_fills_a_judge_unsure_queue_before_the_judge_is_calibrated(migrated) -> None:
    """The judge_unsure strategy is offered; with no calibrated judge it samples uniformly
    (design weight 1 for every item) and the page says why."""
    with LogWriter(migrated.log_path) as writer:
        writer.append_many(records(5))
    at = page_as("pages/review_admin.py", migrated.db_url, "admin").run()
    assert any(o.startswith("judge_unsure: ") for o in at.selectbox[0].options)
    at.selectbox[0].set_value("judge_unsure")
    at.number_input[0].set_value(3)
    at.button[0].click().run()
    assert not at.exception, at.exception
    assert "Added 3 pairs" in at.success[0].value
    assert any("sampled uniformly" in i.value for i in at.info)
    with db.session_scope(migrated.db_url) as s:
        items = s.exec(select(ReviewItem)).all()
        assert {i.strategy for i in items} == {"judge_unsure"}
        assert {i.snapshot.get("design_weight", 1.0) for i in items} == {1.0}


@pytest.mark.parametrize("role", ["manager", "reviewer", "admin"])
def test_progress_and_agreement_for_every_role(queued, role) -> None:
    url = queued.db_url
    uids = [make_user(url, "reviewer", name) for name in ("ana", "ben")]
    with db.session_scope(url) as s:
        # two reviewers each: the pairs need two reviews (a third is refused since issue 12)
        s.execute(update(ReviewItem).values(required_reviews=2))
        ids = [i.id for i in s.exec(select(ReviewItem).order_by(ReviewItem.id))]
        for n, uid in enumerate(uids):
            for k, item in enumerate(ids):
                judgement = workflow.Judgement(
                    decision="approve" if k or not n else "reject",
                    student_score=1 + k * 2 if n else 1 + k,
                    seconds_spent=30,
                )
                workflow.submit_review(
                    session=s, item_id=item, reviewer_id=uid, judgement=judgement
                )
    at = page_as("pages/review_progress.py", url, role).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Reviews"] == "6"
    assert metrics["Median time per review"] == "30 s"
    assert metrics["Krippendorff's alpha (ordinal) on student scores"] != "n/a"
    assert "**Items where reviewers disagree: 2**" in [m.value for m in at.markdown]


def test_a_student_failure_is_shown_with_its_error(migrated) -> None:
    record = schema.make_record(
        id="failed-pair",
        messages=[{"role": "user", "content": [{"type": "text", "text": "Wie spät ist es?"}]}],
        teacher={"model": "gpt-4o-mini", "response": "Es ist drei Uhr."},
        student={"model": "llama3", "response": None, "error": "timeout after 10 s"},
    )
    with db.session_scope(migrated.db_url) as s:
        workflow.enqueue_records(
            session=s, records=[record], strategy="student_errors", enqueued_by=permissions.SYSTEM
        )
    at = page_as("pages/review.py", migrated.db_url, "reviewer").run()
    assert not at.exception
    codes = [c.value for c in at.code]
    assert "Wie spät ist es?" in codes and "timeout after 10 s" in codes and "(empty)" in codes
    assert any(c.value.startswith("Similarity n/a") for c in at.caption)  # failed pair


def test_enter_in_the_queue_form_does_not_submit_it(migrated) -> None:  # noqa: ANN001
    at = page_as("pages/review_admin.py", migrated.db_url, "admin").run()
    assert not at.exception, at.exception
    (fill,) = [f for f in at.get("form") if f.proto.form.form_id == "fill"]
    assert fill.proto.form.enter_to_submit is False  # Enter + the button had added the pairs twice


def test_progress_charts_kappa_explained_and_display_names(queued) -> None:  # noqa: ANN001
    from shadowtutor.tables import User

    url = queued.db_url
    uids = [make_user(url, "reviewer", name) for name in ("ana", "ben")]
    with db.session_scope(url) as s:
        for uid, shown in zip(uids, ("Ana Rossi", "Ben Okafor"), strict=True):
            s.get(User, uid).display_name = shown
        s.execute(update(ReviewItem).values(required_reviews=2))  # two reviewers each
        ids = [i.id for i in s.exec(select(ReviewItem).order_by(ReviewItem.id))]
        for uid in uids:
            for item in ids:
                workflow.submit_review(session=s, item_id=item, reviewer_id=uid,
                                     judgement=workflow.Judgement(decision="approve",
                                                                student_score=4,
                                                                seconds_spent=12.6))  # fmt: skip
    at = page_as("pages/review_progress.py", url, "manager").run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 2  # reviews per reviewer per day, agreement over time
    per_reviewer = at.dataframe[0].value
    assert set(per_reviewer["reviewer"]) == {"Ana Rossi", "Ben Okafor"}
    assert list(per_reviewer["median seconds"]) == ["13", "13"]  # rounded
    pairs = at.dataframe[1].value
    assert {pairs["reviewer A"][0], pairs["reviewer B"][0]} == {"Ana Rossi", "Ben Okafor"}
    # Both always approved: kappa is undefined, said in words (issue 14 item 10: raw None)
    assert pairs["Cohen's kappa"].tolist() == ["n/a (one decision)"]
    assert any("removes the agreement expected by chance" in c.value for c in at.caption)


@pytest.fixture
def own_pg(pg_url: str) -> Iterator[URL]:
    """A migrated PostgreSQL database of this test alone (the session's one is shared)."""
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    name = f"shadowtutor_restart_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_url).set(database=name)
    db.upgrade(url.render_as_string(hide_password=False))
    try:
        yield url
    finally:
        db.dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
def test_a_review_submitted_while_postgresql_is_down_is_kept_and_saved_on_retry(
    own_pg: URL, home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 27 item 6: a review submitted while PostgreSQL restarted raised a raw
    OperationalError; the page now says it was not saved, keeps the scores, and a retry saves."""
    url = own_pg
    with TcpGate(url.port or 5432) as gate:
        through = url.set(host="127.0.0.1", port=gate.port).render_as_string(hide_password=False)
        monkeypatch.setenv("DATABASE_URL", through)
        recs = records()
        with LogWriter(home / "logs") as writer:
            writer.append_many(recs)
        with db.session_scope(through) as s:
            workflow.enqueue_records(session=s, records=recs, enqueued_by=permissions.SYSTEM)
        at = page_as("pages/review.py", through, "reviewer").run()
        p = f"q{item_id(at)}_"
        at.radio(key=f"{p}left").set_value(4)
        at.radio(key=f"{p}right").set_value(5)
        gate.down()  # the server restarts
        at.button(key=f"{p}approve").click().run()
        assert not at.exception, at.exception
        error = " ".join(e.value for e in at.error)
        assert "Your review was not saved" in error and "cannot use the database" in error
        assert (at.radio(key=f"{p}left").value, at.radio(key=f"{p}right").value) == (4, 5)
        gate.up()  # back: the same click saves it
        at.button(key=f"{p}approve").click().run()
        assert not at.exception, at.exception
        assert "Saved: approve" in at.success[0].value
        assert [(r.decision, r.student_score) for r in reviews(through)] == [("approve", 4)]
