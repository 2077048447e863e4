"""The dashboards by kind of request: Quality's per-kind figures over ``facts`` (unsupported
requests apart, in the Parquet parts of a compacted day too), the error rates that leave them
out, and Readiness's per-(category, kind) decision rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shadowtutor.gate import criteria
from shadowtutor.gate.criteria import Window
from shadowtutor.gate.rollout import RolloutState
from shadowtutor.log import analytics, compaction, schema, write
from shadowtutor.log.analytics import Filters
from shadowtutor.views import kinds, quality
from tests.support.gatecases import agg, config

NOW = datetime.now(UTC).replace(microsecond=0)
CALL = {"name": "book_table", "arguments": '{"city": "Rome"}'}


def pair(kind: str, student: dict[str, Any], agreement: dict[str, Any] | None, days: int = 0):
    return schema.make_record(
        id=schema.new_id(),
        ts=NOW - timedelta(days=days, minutes=5),
        category="casual",
        messages=[{"role": "user", "content": "book a table"}],
        teacher={"model": "gpt-4o", "response": "", "tool_calls": [CALL]},
        student={"model": "llama3", **student},
        request={"kind": kind},
        agreement=agreement,
    )


def agreed(score: float) -> dict[str, Any]:
    return {"kind": "tool_calls", "method": "m", "score": score, "details": {}}


def json_checked(valid: bool) -> dict[str, Any]:
    return {"kind": "json", "method": "m", "score": 1.0 if valid else 0.0,
            "details": {"valid": valid, "fields": 1.0}}  # fmt: skip


@pytest.fixture(params=["jsonl", "parquet"])
def log_dir(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    days = 2 if request.param == "parquet" else 0  # a closed day is compacted to Parquet
    rows = (
        [pair("plain", {"response": "hi"}, None, days)] * 2
        + [pair("plain", {"error": "timeout: 10 s"}, None, days)]
        + [pair("tools", {"response": "", "tool_calls": [CALL]}, agreed(1.0), days)] * 3
        + [pair("tools", {"response": "", "tool_calls": [CALL]}, agreed(1 / 3), days)]
        + [pair("tools", {"error": "unsupported: tools (HTTP 400)"}, None, days)] * 4
        + [pair("json_schema", {"response": "{}"}, json_checked(True), days)]
        + [pair("json_schema", {"response": "x"}, json_checked(False), days)]
    )
    rows = [dict(r, id=schema.new_id(), request_id=None) for r in rows]  # each its own request
    with write.LogWriter(tmp_path / "logs") as writer:
        writer.append_many(rows)
    if days:
        assert compaction.compact(tmp_path / "logs").days
    return tmp_path / "logs"


def test_quality_by_kind_counts_unsupported_apart(log_dir: Path) -> None:
    con = analytics.connect(log_dir)
    df = kinds.quality_by_kind(con, Filters()).set_index("kind")
    assert df.index.tolist() == ["plain", "tools", "json_schema"]
    tools = df.loc["tools"]
    assert (tools["requests"], tools["answered"], tools["failed"], tools["unsupported"]) == (
        8, 4, 0, 4,
    )  # fmt: skip
    assert tools["failure_rate"] == 0.0  # refused by its server: no failure of its answers
    assert tools["tool_agreement"] == 0.75 and tools["tool_score"] == pytest.approx(5 / 6)
    assert df.loc["json_schema", "json_validity"] == 0.5
    assert df.loc["plain", "failed"] == 1 and df.loc["plain", "failure_rate"] == 1 / 3
    table = kinds.quality_table(df.reset_index())
    assert table.set_index("Kind").loc["tools", "Unsupported"] == "4"
    counts = kinds.outcome_counts(df.reset_index()).set_index(["kind", "segment"])["pairs"]
    assert counts[("tools", "agrees")] == 3 and counts[("tools", "differs")] == 1
    assert counts[("tools", "unsupported")] == 4 and counts[("plain", "failed")] == 1
    assert len(kinds.outcome_figure(kinds.outcome_counts(df.reset_index())).data) == 5


def test_the_error_rates_leave_unsupported_requests_out(log_dir: Path) -> None:
    con = analytics.connect(log_dir)
    f = Filters()
    days = quality.student_failures_by_day(con, f)
    assert int(days["attempts"].sum()) == 9 and int(days["errors"].sum()) == 0
    assert int(days["timeouts"].sum()) == 1


def test_readiness_rows_per_category_and_kind() -> None:
    plain = agg()
    tools = agg(scores={})
    tools.similarity, tools.tools_compared, tools.tools_agreed = {}, 2000, 1990
    plain.kinds = {"tools": tools}
    d = criteria.decide(config(eligibility={"categories": ["greeting"]}),
                        Window(None, None, {"greeting": plain}))  # fmt: skip
    state = RolloutState(stage=25, categories=("greeting",), kinds={})
    rows = kinds.decision_frame(d.evidence(), state).set_index("Kind")
    assert rows.loc["plain", "Decision"] == "GO" and rows.loc["tools", "Decision"] == "GO"
    assert rows.loc["plain", "Student serves it"] == "yes, at 25%"
    assert rows.loc["tools", "Student serves it"] == "no: the teacher answers"  # not released
    released = RolloutState(stage=25, categories=("greeting",), kinds={"greeting": ("tools",)})
    rows = kinds.decision_frame(d.evidence(), released).set_index("Kind")
    assert rows.loc["tools", "Student serves it"] == "yes, at 25%"
    crit = kinds.criteria_frame(d.evidence())
    assert set(crit["Category"]) == {"greeting · tools"}
    assert "Tool-call agreement" in set(crit["Criterion"])
