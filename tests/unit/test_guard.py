"""The rollout guard's statistics (shadowtutor/gate/guard.py) on constructed counts, and its
``[guard]`` section of the criteria file (shadowtutor/gate/guard_config.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from shadowtutor.gate import criteria, guard
from shadowtutor.gate.guard import NO_WORSE, UNDECIDED, WORSE, ArmCounts, Arms

CONFIG = criteria.load_config()


def arms(student: tuple[int, int], teacher: tuple[int, int], signal: str = "thumbs_down") -> Arms:
    """Two arms whose ``signal`` has (events, out of) as given."""

    def one(events: int, n: int) -> ArmCounts:
        if signal == "thumbs_down":
            return ArmCounts(answers=n * 20, rated=n, thumbs_down=events)
        if signal == "regenerate":
            return ArmCounts(answers=n, regenerates=events)
        return ArmCounts(answers=n, errors=events)

    return Arms(one(*student), one(*teacher))


def verdict(
    a: Arms | list[Arms], signal: str = "thumbs_down", margin: float = 1.0
) -> guard.Comparison:
    return guard.compare(
        "greeting", signal, a, margin_points=margin, min_events=100,
        alpha_worse=0.05 * 0.8 / 6, alpha_no_worse=0.02,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("student", "teacher", "signal", "outcome"),
    [
        # 18 % thumbs down against 12 %: 6 points worse, far beyond the 1-point margin
        ((900, 5000), (5400, 45000), "thumbs_down", WORSE),
        # the same rates: shown no worse than the margin, with this much data
        ((6000, 50000), (54000, 450000), "thumbs_down", NO_WORSE),
        # the same rates on little data: neither yet
        ((60, 500), (540, 4500), "thumbs_down", UNDECIDED),
        # 3 points worse on little data: not yet beyond doubt
        ((75, 500), (540, 4500), "thumbs_down", UNDECIDED),
        # errors: 2 % against 0.5 %, margin 0.5 point
        ((200, 10000), (450, 90000), "error", WORSE),
        # regenerates: the student is better
        ((200, 20000), (5400, 180000), "regenerate", NO_WORSE),
        # worse, but by less than the margin allows (0.3 point against 1): no rollback
        ((12300, 100000), (108000, 900000), "thumbs_down", NO_WORSE),
    ],
)
def test_verdicts_on_constructed_counts(
    student: tuple[int, int], teacher: tuple[int, int], signal: str, outcome: str
) -> None:
    margin = {"thumbs_down": 1.0, "regenerate": 1.0, "error": 0.5}[signal]
    row = verdict(arms(student, teacher, signal), signal, margin)
    assert row.outcome == outcome, row
    assert row.lower is not None and row.upper is not None
    assert row.lower <= row.student_rate - row.teacher_rate <= row.upper
    # the bounds and the verdict say the same thing
    assert (row.lower > row.margin) == (outcome == WORSE)
    assert (row.upper < row.margin) == (outcome == NO_WORSE)


def test_the_margin_decides_not_any_difference() -> None:
    """2 points worse on a lot of data: WORSE against a 1-point margin, NO_WORSE against 3."""
    a = arms((14000, 100000), (108000, 900000))
    assert verdict(a, margin=1.0).outcome == WORSE
    assert verdict(a, margin=3.0).outcome == NO_WORSE


def test_too_few_events_is_undecided_and_says_how_many_more() -> None:
    row = verdict(arms((50, 60), (0, 5000)))
    assert row.outcome == UNDECIDED and row.lower is None
    assert "40 more student rated answers needed" in row.why


@pytest.mark.parametrize("n", [200, 2000, 20000])
def test_bounds_hold_a_difference_of_zero_at_equal_rates(n: int) -> None:
    lo, hi = guard.difference_bounds((n // 10, n), (9 * n // 10, 9 * n), 0.01, 0.01)
    assert lo[0] < 0 < hi[0]
    assert hi[0] - lo[0] < 3.0 / math.sqrt(n) + 0.02  # narrows with the data


def test_daily_looks_at_equal_rates_rarely_say_worse() -> None:
    """200 seeded runs of 60 daily looks at two equal arms (12 %, 10 and 90 rated answers a
    day), each look tested at 5 %: the guard says WORSE (at a margin of 0) in at most 5 % of
    the runs. A fixed-sample test looked at daily would (about a quarter of them)."""
    rng = np.random.default_rng(7)
    runs, looks, alpha = 200, 60, 0.05
    s = rng.binomial(10, 0.12, (looks, runs)).cumsum(axis=0).astype(float)
    t = rng.binomial(90, 0.12, (looks, runs)).cumsum(axis=0).astype(float)
    ever = np.zeros(runs, dtype=bool)
    naive = np.zeros(runs, dtype=bool)
    for day in range(looks):
        ns, nt = 10.0 * (day + 1), 90.0 * (day + 1)
        e = guard.worse_evidence(s[day], ns, t[day], nt, 0.0)
        ever |= e >= math.log(1 / alpha)
        ps, pt = s[day] / ns, t[day] / nt
        pooled = (s[day] + t[day]) / (ns + nt)
        se = np.sqrt(pooled * (1 - pooled) * (1 / ns + 1 / nt))
        naive |= (ps - pt) / np.where(se > 0, se, 1) > 1.645
    assert ever.mean() <= alpha
    assert naive.mean() > 2 * alpha  # the test above would catch a bound that is not anytime


def test_rate_bounds_agree_with_the_gates_betting_sequence_in_spirit() -> None:
    """The guard's bets are sized for small differences; its bounds are close to (never much
    wider than) the gate's own betting sequence at the same level."""
    from shadowtutor.gate import stats

    lo_gate, hi_gate = stats.betting_rate_bounds(120, 1000, confidence=0.99)
    lo = guard.difference_bounds((120, 1000), (0, 10**9), 0.01, 0.01)[0][0]
    assert lo == pytest.approx(lo_gate, abs=0.01)
    assert hi_gate > 0.12


def test_the_evidence_is_a_lower_bound_between_grid_points() -> None:
    """The smallest capital over every teacher rate is never overstated: checked against a
    grid 100 times finer."""
    ks, ns, kt, nt, d = 170.0, 1000.0, 1150.0, 9000.0, 0.01
    fine = np.linspace(0, 1 - d, 20001)
    one = np.ones(1)
    student = guard._log_above(ks * one, (ns - ks) * one, (fine + d)[None, :])
    teacher = guard._log_below(kt * one, (nt - kt) * one, fine[None, :])
    assert guard.worse_evidence(ks, ns, kt, nt, d)[0] <= (student + teacher).min() + 1e-9


def test_stages_are_strata_not_pooled() -> None:
    """Both arms fail 10 % at the 10 % stage and 20 % at the 50 % stage: pooled, the student
    (more of whose answers came at 50 %) looks 4.8 points worse; per stage it is equal."""
    at_10 = Arms(ArmCounts(answers=1000, errors=100), ArmCounts(answers=9000, errors=900))
    at_50 = Arms(ArmCounts(answers=5000, errors=1000), ArmCounts(answers=5000, errors=1000))
    assert verdict(guard.pooled([at_10, at_50]), "error", 0.5).outcome == WORSE
    row = verdict([at_10, at_50], "error", 0.5)
    assert row.outcome == UNDECIDED and row.lower < 0
    assert (row.student_n, row.student_events) == (6000, 1100)  # the rates read pooled


def test_report_per_category_and_reason() -> None:
    bad = Arms(
        ArmCounts(answers=10000, rated=5000, thumbs_down=900, regenerates=300, errors=20),
        ArmCounts(answers=90000, rated=45000, thumbs_down=5400, regenerates=2700, errors=180),
    )
    same = Arms(
        ArmCounts(answers=100000, rated=50000, thumbs_down=6000, regenerates=3000, errors=200),
        ArmCounts(answers=900000, rated=450000, thumbs_down=54000, regenerates=27000, errors=1800),
    )
    report = guard.assess(CONFIG, {"greeting": bad, "casual": same}, student="s1")
    assert report.of("greeting") == WORSE and report.of("casual") == NO_WORSE
    assert [c.signal for c in report.worse] == ["thumbs_down"]
    reason = report.reason()
    assert "greeting thumbs down: student 18.0 % vs teacher 12.0 %" in reason
    assert "900/5,000 vs 5,400/45,000 rated answers" in reason and "1-point margin" in reason
    assert "2 categories x 3 signal(s) = 6 test(s)" in report.budget
    assert report.evidence()["comparisons"][0]["outcome"] == WORSE


def test_budget_follows_the_gates_epochs_and_split() -> None:
    first = guard.budget(CONFIG, 2)
    second = guard.budget(CONFIG, 2, epoch=2)
    assert first.alpha_worse == pytest.approx(0.05 * 0.8 / 6)
    assert second.alpha_worse == pytest.approx(first.alpha_worse * 0.2)
    conf, _ = criteria.error_budget(CONFIG, 1, 2, 1)
    assert first.alpha_no_worse == pytest.approx(1 - conf)


def test_shipped_guard_section() -> None:
    g = CONFIG.guard
    assert g.margins == {"thumbs_down": 1.0, "regenerate": 1.0, "error": 0.5}
    assert g.min_events == 100 and g.rollback and not g.require_no_worse
    assert g.signals == ("thumbs_down", "regenerate", "error")


def test_a_file_without_a_guard_section_gets_the_defaults() -> None:
    cfg = criteria.parse_config({"version": "x"})
    assert cfg.guard.margins["thumbs_down"] == 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[guard]\nmin_events = 0", "[guard] min_events must be a whole number >= 1"),
        ("[guard]\nrollback = 'yes'", "[guard] rollback must be true or false"),
        ("[guard]\nmargin = 1", "[guard] has unknown key(s) margin"),
        ("[guard.margins]\nthumbs = 1.0", "[guard.margins] has unknown signal(s) thumbs"),
        ("[guard.margins]\nerror = 0.005", ""),  # a small margin is allowed
        ("[guard.margins]\nerror = 150", "is in percentage points"),
        ("[guard.margins]\nerror = 'one'", "error must be a number of percentage points"),
        ("[guard]\nmargins = {}", "names no signal"),
    ],
)
def test_bad_guard_section_is_explained(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "gate.toml"
    path.write_text(text)
    if not message:
        assert criteria.load_config(path).guard.margins == {"error": 0.005}
        return
    with pytest.raises(criteria.GateConfigError) as err:
        criteria.load_config(path)
    assert str(path) in str(err.value) and message in str(err.value)
