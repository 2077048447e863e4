"""The feedback record (issue 30): what an app sends read into one record, checked like a
pair; the desk counts every event's outcome, never keeping or dropping one silently."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shadowtutor.collect.feedback import FeedbackDesk
from shadowtutor.collect.implicit import Conversations
from shadowtutor.log import feedback, read, sql
from shadowtutor.log.write import LogWriter

RID = "0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sent", "value", "scale", "text"),
    [
        ({"kind": "thumbs", "value": "down"}, -1.0, None, None),
        ({"kind": "thumbs", "value": "UP"}, 1.0, None, None),
        ({"kind": "thumbs", "value": True}, 1.0, None, None),
        ({"kind": "thumbs", "value": -1}, -1.0, None, None),
        ({"kind": "rating", "value": 4}, 4.0, 5.0, None),
        ({"kind": "rating", "value": 7.5, "scale": 10}, 7.5, 10.0, None),
        ({"kind": "correction", "value": "Open 9 to 5"}, None, None, "Open 9 to 5"),
        ({"kind": "flag", "value": "rude"}, None, None, "rude"),
        ({"kind": "flag"}, None, None, None),
        ({"kind": "regenerate"}, None, None, None),
    ],
)
def test_an_event_reads_into_one_record(
    sent: dict[str, Any], value: float | None, scale: float | None, text: str | None
) -> None:
    rec = feedback.event({"request_id": RID} | sent, now=NOW)
    assert (rec["value"], rec["scale"], rec["text"]) == (value, scale, text)
    assert rec["ts"] == "2026-12-07T12:00:00.000Z" and rec["record"] == "feedback"
    assert feedback.validate(rec) == rec


@pytest.mark.parametrize(
    ("sent", "why"),
    [
        ({"kind": "thumbs", "value": "meh"}, "up or down"),
        ({"kind": "thumbs", "value": 0}, "up or down"),
        ({"kind": "rating", "value": 6}, "from 0 to its scale"),
        ({"kind": "rating", "value": float("nan")}, "finite number"),
        ({"kind": "rating", "value": "5"}, "finite number"),
        ({"kind": "correction", "value": "  "}, "corrected answer"),
        ({"kind": "like", "value": 1}, "'kind' must be one of"),
        ({"kind": "regenerate", "value": 1}, "has no 'value'"),
        ({"kind": "thumbs", "value": "up", "colour": "red"}, "unknown field"),
        ({"kind": "thumbs", "value": "up", "comment": "x" * 5000}, "at most 4000"),
        ({"kind": "thumbs", "value": "up", "ts": "yesterday"}, "ISO 8601"),
    ],
)
def test_a_malformed_event_says_what_is_wrong(sent: dict[str, Any], why: str) -> None:
    with pytest.raises(feedback.FeedbackError, match=why):
        feedback.event({"request_id": RID} | sent)


@pytest.mark.parametrize("rid", [None, "", "x" * 65, "a b", "<img src=x>", 42])
def test_a_request_id_must_look_like_one(rid: Any) -> None:
    with pytest.raises(feedback.FeedbackError, match="request_id"):
        feedback.event({"request_id": rid, "kind": "flag"})


def test_the_same_event_has_the_same_id_and_an_event_id_overrides_content() -> None:
    a = feedback.event({"request_id": RID, "kind": "thumbs", "value": "down"})
    b = feedback.event({"request_id": RID, "kind": "thumbs", "value": -1})
    c = feedback.event({"request_id": RID, "kind": "thumbs", "value": "up"})
    assert a["id"] == b["id"] != c["id"]
    d1 = feedback.event({"request_id": RID, "kind": "thumbs", "value": "up", "event_id": "e1"})
    d2 = feedback.event({"request_id": RID, "kind": "thumbs", "value": "down", "event_id": "e1"})
    assert d1["id"] == d2["id"]


def test_the_user_and_conversation_are_pseudonymised() -> None:
    rec = feedback.event(
        {"request_id": RID, "kind": "flag", "user": "bob@example.com", "conversation_id": "c-1"}
    )
    assert rec["user_hash"] and "bob" not in str(rec)
    assert rec["conversation_id"] and "c-1" not in str(rec)


def test_the_desk_counts_every_outcome_and_writes_only_new_events(tmp_path: Path) -> None:
    desk = FeedbackDesk(tmp_path)
    desk.answered(RID)
    other = "f" * 32
    outcomes = desk.take(
        [
            {"request_id": RID, "kind": "thumbs", "value": "down"},
            {"request_id": RID, "kind": "thumbs", "value": "down"},  # the same, in one batch
            {"request_id": other, "kind": "rating", "value": 2},  # not answered here
            {"request_id": RID, "kind": "thumbs", "value": "sideways"},
            "not an object",
        ]
    )
    assert [o.status for o in outcomes] == [
        "accepted", "duplicate", "accepted", "malformed", "malformed",
    ]  # fmt: skip
    assert [o.matched for o in outcomes[:3]] == [True, True, False]
    again = desk.take([{"request_id": RID, "kind": "thumbs", "value": -1}])
    assert again[0].status == "duplicate"
    stats = desk.stats()
    assert {k: stats[k] for k in ("accepted", "duplicate", "malformed", "unknown_id")} == {
        "accepted": 2, "duplicate": 2, "malformed": 2, "unknown_id": 1,
    }  # fmt: skip
    assert "JSON object" in stats["last_malformed"] and "up or down" in outcomes[3].error
    desk.close()
    con = sql.connect(tmp_path)
    read.create_views(con, tmp_path)
    rows = con.execute("SELECT request_id, kind, value, matched FROM feedback ORDER BY value")
    assert rows.fetchall() == [(RID, "thumbs", -1.0, True), (other, "rating", 2.0, False)]
    assert read.validate_log(tmp_path).bad == []  # the pairs' readers never see feedback


def test_the_view_keeps_an_event_written_twice_once(tmp_path: Path) -> None:
    rec = feedback.event({"request_id": RID, "kind": "flag"}, now=NOW)
    with LogWriter(tmp_path, part=feedback.PART) as w:
        w.append_many([rec, rec])
    with LogWriter(tmp_path, part=feedback.PART) as w:  # another process, after a restart
        w.append(rec)
    con = sql.connect(tmp_path)
    read.create_views(con, tmp_path)
    assert con.execute("SELECT count(*) FROM feedback").fetchone() == (1,)


def test_an_empty_log_has_an_empty_feedback_view(tmp_path: Path) -> None:
    con = sql.connect(tmp_path)
    read.create_views(con, tmp_path)
    assert con.execute("SELECT count(*), count(request_id) FROM feedback").fetchone() == (0, 0)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_regenerate_is_the_same_last_message_again_within_the_window() -> None:
    clock = Clock()
    conv = Conversations(regenerate_window_s=60, abandon_after_s=0, clock=clock)
    assert conv.request("c1", "what time is it", "r1") == []
    clock.t += 30
    assert conv.request("c1", "what time is it", "r2") == [
        {"request_id": "r1", "kind": "regenerate", "conversation_id": "c1"}
    ]
    clock.t += 61  # past the window: a new question that happens to be the same
    assert conv.request("c1", "what time is it", "r3") == []
    clock.t += 1
    assert conv.request("c1", "something else", "r4") == []
    assert conv.request("c2", "something else", "r5") == []  # another conversation


def test_a_quiet_conversation_is_abandoned_on_its_last_answer() -> None:
    clock = Clock()
    conv = Conversations(regenerate_window_s=0, abandon_after_s=100, clock=clock)
    conv.request("c1", "hello", "r1")
    clock.t += 50
    conv.request("c1", "and then?", "r2")
    conv.request("c2", "hi", "r3")
    clock.t += 60
    assert not conv.due() and conv.expired() == []
    clock.t += 50
    assert conv.due()
    assert conv.expired() == [
        {"request_id": "r2", "kind": "abandoned", "conversation_id": "c1"},
        {"request_id": "r3", "kind": "abandoned", "conversation_id": "c2"},
    ]
    assert conv.expired() == []


def _pair(i: int, category: str = "greeting", served_by: str = "teacher") -> dict[str, Any]:
    from shadowtutor.log import schema

    return schema.make_record(
        id=f"{i:032x}",
        ts=datetime(2026, 12, 1, 12, i % 60, tzinfo=UTC),
        messages=[{"role": "user", "content": f"q{i}"}],
        teacher={"model": "gpt-4o-mini", "response": "a"},
        student={"model": "llama3", "response": "b"},
        category=category,
        routing={"served_by": served_by, "stage": 10, "bucket": 1.0, "eligible": True},
    )


def test_the_review_queue_can_sample_the_pairs_users_disliked(tmp_path: Path) -> None:
    from shadowtutor.review import sampling

    with LogWriter(tmp_path) as w:
        w.append_many([_pair(i) for i in range(20)])
    desk = FeedbackDesk(tmp_path)
    disliked = [f"{i:032x}" for i in (3, 7, 11)]
    desk.take(
        [{"request_id": disliked[0], "kind": "thumbs", "value": "down"}]
        + [{"request_id": disliked[1], "kind": "rating", "value": 1}]
        + [{"request_id": disliked[2], "kind": "correction", "value": "better"}]
        + [{"request_id": f"{5:032x}", "kind": "thumbs", "value": "up"}]  # liked: not picked
        + [{"request_id": f"{6:032x}", "kind": "rating", "value": 4}]
    )
    desk.close()
    con = sql.connect(tmp_path)
    read.create_views(con, tmp_path)
    picked = sampling.sample(con, strategy="negative_feedback", size=10)
    assert sorted(r["id"] for r in picked.records) == disliked and picked.candidates == 20


def test_arm_counts_fold_each_answers_feedback_by_who_served_it(tmp_path: Path) -> None:
    from shadowtutor.views.feedback import ArmCounts, arm_counts

    pairs = [_pair(i, served_by="student" if i % 2 else "teacher") for i in range(12)]
    pairs.append(_pair(12, category="casual"))
    pairs[4]["teacher"] = {**pairs[4]["teacher"], "response": None, "error": "HTTP 500"}
    with LogWriter(tmp_path) as w:
        w.append_many(pairs)
    desk = FeedbackDesk(tmp_path)
    rid = [p["request_id"] for p in pairs]
    desk.take(
        [
            {"request_id": rid[1], "kind": "thumbs", "value": "up", "ts": "2026-12-01T13:00:00Z"},
            {"request_id": rid[1], "kind": "thumbs", "value": "down", "ts": "2026-12-02T00:00:00Z"},
            {"request_id": rid[3], "kind": "thumbs", "value": "down", "ts": "2026-12-01T13:00:00Z"},
            {"request_id": rid[3], "kind": "thumbs", "value": "up", "ts": "2026-12-02T00:00:00Z"},
            {"request_id": rid[5], "kind": "rating", "value": 1},
            {"request_id": rid[5], "kind": "regenerate"},
            {"request_id": rid[2], "kind": "thumbs", "value": "down"},
            {"request_id": rid[2], "kind": "flag", "value": "rude"},
        ]
    )
    desk.close()
    con = sql.connect(tmp_path)
    read.create_views(con, tmp_path)
    got = arm_counts(con, datetime(2026, 12, 1, tzinfo=UTC), None)
    assert got == [
        ArmCounts("casual", "teacher", 1, 0, 0, 0, 0, 0, 0),
        # answers 1, 3, 5, 7, 9, 11: 1 now down (the latest thumbs), 3 now up, 5 rated 1
        ArmCounts("greeting", "student", 6, 3, 1, 1, 0, 2, 0),
        ArmCounts("greeting", "teacher", 6, 1, 1, 0, 1, 1, 0),
    ]
    only = arm_counts(con, datetime(2026, 12, 1, tzinfo=UTC), None, "casual")
    assert [a.category for a in only] == ["casual"]
    assert arm_counts(con, datetime(2026, 12, 2, tzinfo=UTC), None) == []


def test_the_chart_compares_like_with_like_and_skips_thin_weeks(tmp_path: Path) -> None:
    from shadowtutor.log.analytics import Filters
    from shadowtutor.views.feedback import MIN_COUNT, by_day

    pairs = [_pair(i, served_by="student" if i % 2 else "teacher") for i in range(60)]
    pairs += [_pair(100 + i, category="business") for i in range(30)]  # the teacher's only
    with LogWriter(tmp_path) as w:
        w.append_many(pairs)
    desk = FeedbackDesk(tmp_path)
    desk.take(
        [
            {"request_id": p["request_id"], "kind": "thumbs", "value": "down" if i < 3 else "up"}
            for i, p in enumerate(pairs)
            if p["routing"]["served_by"] == "teacher" or i < 10
        ]
    )
    desk.close()
    con = sql.connect(tmp_path)
    read.create_views(con, tmp_path)
    df = by_day(con, Filters())
    assert df.attrs["categories"] == ["greeting"]  # business left out: the student never served it
    rows = {r.arm: r for r in df.itertuples()}
    assert rows["teacher"].answers == 30 and rows["teacher"].rated == 30
    assert rows["teacher"].thumbs_down_rate == pytest.approx(2 / 30)  # answers 0 and 2
    assert rows["student"].rated == 5 < MIN_COUNT  # too few rated for a rate
    assert rows["student"].thumbs_down_rate != rows["student"].thumbs_down_rate  # NaN
    assert rows["student"].regenerate_rate == 0.0  # 30 answers: enough for that rate


def test_a_corrupt_feedback_file_is_named_and_breaks_nothing_else(tmp_path: Path) -> None:
    from shadowtutor.log.analytics import Filters
    from shadowtutor.log.errors import LogReadError
    from shadowtutor.review import sampling
    from shadowtutor.views.feedback import arm_counts, by_day

    with LogWriter(tmp_path) as w:
        w.append_many([_pair(i) for i in range(5)])
    day = tmp_path / "feedback" / "date=2026-12-01"
    day.mkdir(parents=True)
    (day / "broken.jsonl.zst").write_bytes(b"not zstd at all")
    (day / "torn.jsonl").write_bytes(b'{"id": "x", "kind": "thu')
    found = feedback.scan(tmp_path)
    assert [(Path(p).name, n) for p, n, _ in found.bad] == [
        ("broken.jsonl.zst", 0),
        ("torn.jsonl", 1),
    ]
    con = sql.connect(tmp_path)
    read.create_views(con, tmp_path)
    with pytest.raises(LogReadError, match="feedback stats"):
        by_day(con, Filters())
    with pytest.raises(LogReadError, match="feedback stats"):
        arm_counts(con, None, None)
    picked = sampling.sample(con, strategy="random", size=3)  # the pairs' rules still work
    assert len(picked.records) == 3
