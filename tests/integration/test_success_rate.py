"""One definition of the student's "success": the Quality page's success rate (1 - the student
error rate of its teacher-vs-student table) and the gate's success-rate criterion (Readiness)
count the same requests and give the same rate per category, on the demo data and on imported
records of the two shapes where the dashboards and the gate used to count differently."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from shadowtutor.config import Settings
from shadowtutor.demo import generate
from shadowtutor.gate import criteria, evidence
from shadowtutor.log import analytics, schema, write
from shadowtutor.views import quality


def _config() -> criteria.GateConfig:
    data = tomllib.loads(criteria.DEFAULT_CONFIG.read_text())
    data["eligibility"] = {"categories": sorted(generate.CATEGORIES)}
    return criteria.parse_config(data)


def _gate_rates(settings: Settings, config: criteria.GateConfig, now: datetime) -> dict:
    # The gate decides each kind of request (plain, tools, JSON...) apart; the Quality page
    # counts a category's requests of every kind: the kinds' counts and successes add up.
    decision = criteria.decide(config, evidence.gather(settings, config, now))
    sums: dict[str, tuple[int, float]] = {}
    for c in decision.criteria:
        if c.key == "success_rate":
            n, ok = sums.get(c.category, (0, 0.0))
            sums[c.category] = (n + c.n, ok + c.n * (c.estimate or 0.0))
    return {cat: (n, ok / n if n else 0.0) for cat, (n, ok) in sums.items()}


def _quality_rates(settings: Settings, config: criteria.GateConfig, now: datetime) -> dict:
    # The gate's window [now - window_days, now) as the page's filter: whole UTC days.
    con = analytics.connect(settings.log_path, "UTC")
    start = (now - timedelta(days=config.window_days)).date()
    out = {}
    for cat in config.categories:
        f = analytics.Filters(start=start, end=(now - timedelta(days=1)).date(), categories=(cat,))
        student = quality.side_by_side(con, f).set_index("model").loc["student"]
        out[cat] = (int(student["requests"]), 1 - student["error_rate"])
    return out


def _assert_agree(gate_rates: dict, quality_rates: dict) -> None:
    assert gate_rates.keys() == quality_rates.keys()
    for cat, (n, rate) in gate_rates.items():
        q_n, q_rate = quality_rates[cat]
        assert (cat, q_n) == (cat, n)
        assert q_rate == pytest.approx(rate, abs=1e-12), cat


def test_quality_and_readiness_agree_on_the_success_rate(demo_settings: Settings) -> None:
    config = _config()
    now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    before = _gate_rates(demo_settings, config, now)
    assert all(n > 0 for n, _ in before.values())  # every category has requests in the window
    assert any(rate < 1 for _, rate in before.values())  # the demo's failures are in it
    _assert_agree(before, _quality_rates(demo_settings, config, now))

    # Imported records the two old rules counted differently: a student error without a model
    # (the gate counted a failed request, the dashboards nothing) and a student with a model
    # but neither a response nor an error (the gate: failed, the dashboards: ok).
    ts = now - timedelta(hours=2)
    shapes = [
        ("greeting", {"error": "timeout: no answer within 10 s"}),
        ("casual", {"model": generate.STUDENT}),
        ("business", {"model": generate.STUDENT, "response": "Selamat pagi!", "latency_ms": 80.0}),
    ]
    records = [
        schema.validate(
            {
                "id": f"imported-{i}",
                "ts": schema.format_ts(ts),
                "source": "import",
                "category": cat,
                "language": "en",
                "messages": [{"role": "user", "content": "hello"}],
                "teacher": {"model": "gpt-4o", "response": "Hello!"},
                "student": student,
            }
        )
        for i, (cat, student) in enumerate(shapes)
    ]
    with write.LogWriter(demo_settings.log_path) as writer:
        writer.append_many(records)
    after = _gate_rates(demo_settings, config, now)
    assert {cat: after[cat][0] - before[cat][0] for cat in after} == {
        "greeting": 1,
        "casual": 1,
        "business": 1,
    }
    _assert_agree(after, _quality_rates(demo_settings, config, now))


@pytest.mark.parametrize(
    ("student", "asked", "succeeded"),
    [
        ({}, False, False),  # the student did not run
        ({"model": "m", "response": "hi"}, True, True),
        ({"model": "m", "response": "", "latency_ms": 5.0}, True, True),  # an empty answer
        ({"model": "m", "error": "timeout: no answer"}, True, False),
        ({"error": "connection refused"}, True, False),  # imported: no model, an error
        ({"model": "m"}, True, False),  # asked, answered nothing, said nothing
        ({"model": "m", "response": "hi", "error": "stream cut"}, True, False),
        ({"response": "hi"}, False, False),  # an answer nobody asked for is not counted
    ],
)
def test_python_and_sql_rules_agree(student: dict, asked: bool, succeeded: bool) -> None:
    answer = schema.empty_answer(**student)
    assert schema.student_asked(answer) is asked
    assert schema.student_succeeded(answer) is succeeded
    con = duckdb.connect()
    sql = (
        f"SELECT {schema.student_asked_sql('student_')}, "
        f"{schema.student_ok_sql('student_')} FROM (SELECT $model AS student_model, "
        "$response AS student_response, $error AS student_error)"
    )
    row = con.execute(sql, {k: answer[k] for k in ("model", "response", "error")}).fetchone()
    assert row == (asked, succeeded)
