"""The gate by traffic kind: each (category, kind) cell has its own criteria (tool-call
agreement, JSON validity), its own GO and its own claim on the error budget; routing lets the
student serve a kind only where that kind has its GO; unsupported requests are counted apart."""

from __future__ import annotations

import pytest

from shadowtutor.gate import criteria, decisions, routing
from shadowtutor.gate.criteria import Aggregate, Window
from shadowtutor.gate.outcomes import FAIL, INCONCLUSIVE, PASS
from tests.support.gatecases import agg, config


def tools(
    pairs: int = 2000, agreed: float = 0.99, fail: int = 0, unsupported: int = 0
) -> Aggregate:
    """A tools cell: ``pairs`` asked, all compared by their tool calls, ``agreed`` agreeing."""
    a = agg(pairs=pairs, fail=fail, scores={})
    a.similarity = {}  # tool calls have no text similarity
    a.tools_compared = pairs - fail
    a.tools_agreed = round((pairs - fail) * agreed)
    a.unsupported = unsupported
    return a


def schema_cell(pairs: int = 2000, valid: float = 0.995) -> Aggregate:
    a = agg(pairs=pairs, scores={})
    a.similarity = {}
    a.json_checked, a.json_valid = pairs, round(pairs * valid)
    return a


def window(**kinds: Aggregate) -> Window:
    plain = agg()
    plain.kinds = dict(kinds)
    return Window(None, None, {"greeting": plain})


def by_key(d: criteria.Decision, kind: str) -> dict[str, criteria.Criterion]:
    return {c.key: c for c in d.criteria if c.kind == kind and c.category == "greeting"}


def test_a_window_of_plain_requests_decides_as_before() -> None:
    d = criteria.decide(config(), window())
    assert d.outcome == criteria.GO and d.eligible == ("greeting",)
    assert d.kind_status == {} and d.eligible_kinds == {}
    assert "kind_status" not in d.evidence()
    assert "+" not in d.budget and "= 1 claim(s)" in d.budget
    assert {c.kind for c in d.criteria} == {"plain"}


def test_a_kind_with_agreeing_tool_calls_gets_its_own_go() -> None:
    d = criteria.decide(config(), window(tools=tools()))
    assert d.outcome == criteria.GO
    assert d.eligible == ("greeting",)
    assert d.kind_status == {"greeting": {"tools": PASS}}
    assert d.eligible_kinds == {"greeting": ("tools",)}
    rows = by_key(d, "tools")
    assert set(rows) == {"pairs", "tool_agreement", "p95_latency", "success_rate"}
    assert rows["tool_agreement"].status == PASS and rows["tool_agreement"].n == 2000
    assert "betting confidence sequence" in rows["tool_agreement"].method
    assert d.evidence()["eligible_kinds"] == {"greeting": ["tools"]}
    assert "GO for greeting, greeting tools" in d.summary
    # one more claim on the family's error budget: (student, greeting, tools)
    assert "(+ 1 category/kind cell) = 2 claim(s)" in d.budget


def test_disagreeing_tool_calls_fail_the_kind_and_leave_plain_released() -> None:
    d = criteria.decide(config(), window(tools=tools(agreed=0.6)))
    assert d.kind_status == {"greeting": {"tools": FAIL}}
    assert d.eligible == ("greeting",) and d.eligible_kinds == {}
    row = by_key(d, "tools")["tool_agreement"]
    assert row.status == FAIL and "confidently below 90%" in row.missing
    assert d.category_status == {"greeting": PASS}  # plain is decided on plain requests only


def test_few_tool_pairs_are_inconclusive_never_pass() -> None:
    d = criteria.decide(config(), window(tools=tools(pairs=40)))
    assert d.kind_status == {"greeting": {"tools": INCONCLUSIVE}}
    assert "more greeting tools pairs needed" in by_key(d, "tools")["pairs"].missing


@pytest.mark.parametrize(("valid", "status"), [(0.999, PASS), (0.7, FAIL)])
def test_json_schema_validity_is_a_criterion_of_its_own(valid: float, status: str) -> None:
    d = criteria.decide(config(), window(json_schema=schema_cell(valid=valid)))
    row = by_key(d, "json_schema")["json_validity"]
    assert (row.label, row.status) == ("Schema validity", status)
    assert d.kind_status["greeting"]["json_schema"] == status


def test_a_kind_the_criteria_file_does_not_list_is_never_gated() -> None:
    d = criteria.decide(config(eligibility={"categories": ["greeting"], "kinds": ["plain"]}),
                        window(tools=tools()))  # fmt: skip
    assert d.kind_status == {} and d.eligible_kinds == {}


def test_unknown_kinds_in_the_criteria_file_are_named() -> None:
    with pytest.raises(criteria.GateConfigError, match="unknown kind.*toolz"):
        config(eligibility={"categories": ["greeting"], "kinds": ["toolz"]})


def test_unsupported_requests_are_not_failures_of_the_success_rate() -> None:
    d = criteria.decide(config(), window(tools=tools(unsupported=300)))
    row = by_key(d, "tools")["success_rate"]
    assert row.status == PASS and row.estimate == 1.0 and row.n == 2000
    assert "300 unsupported requests counted apart" in row.method


def test_an_override_releases_plain_requests_only() -> None:
    d = criteria.decide(config(), window(tools=tools(agreed=0.6)))
    ev = d.evidence()
    # greeting's plain criteria all PASS: nothing to override there, and the failing tools
    # cell is not a category an override may release
    assert decisions.override_categories(ev) == []


def test_the_fingerprint_of_a_plain_window_is_unchanged_and_kinds_change_it() -> None:
    plain = Window(None, None, {"greeting": agg()})
    assert window().fingerprint() == plain.fingerprint()
    assert window(tools=tools()).fingerprint() != plain.fingerprint()
    assert window(tools=tools()).fingerprint() != window(tools=tools(agreed=0.5)).fingerprint()


# --- routing ----------------------------------------------------------------------------------


def route(kind: str, kinds: dict[str, tuple[str, ...]] | None = None, cats=("greeting",)):
    r = routing.decide(stage=100, categories=frozenset(cats), salt="s", key="user-1",
                       category="greeting", student="s1", kinds=kinds)  # fmt: skip
    return routing.by_kind(r, kind)


@pytest.mark.parametrize("kind", ["tools", "json_object", "json_schema", "images"])
def test_with_a_plain_go_only_other_kinds_go_to_the_teacher(kind: str) -> None:
    assert route("plain").served_by == "student"
    held = route(kind)
    assert (held.served_by, held.reason, held.stage) == ("teacher", f"kind: {kind}", 100)


def test_a_kind_with_its_own_go_is_served_by_the_student() -> None:
    kinds = {"greeting": ("tools",)}
    assert route("tools", kinds).served_by == "student"
    assert route("json_schema", kinds).reason == "kind: json_schema"
    other = routing.decide(stage=100, categories=frozenset({"greeting"}), salt="s",
                           key="user-1", category="casual", kinds=kinds)  # fmt: skip
    assert other.served_by == "teacher" and not other.eligible


def test_a_kind_go_without_a_plain_go_serves_that_kind_only() -> None:
    kinds = {"greeting": ("tools",)}
    assert route("tools", kinds, cats=()).served_by == "student"
    assert route("plain", kinds, cats=()).reason == "kind: plain"
