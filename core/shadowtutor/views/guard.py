"""What Readiness and Home say about users' feedback during the rollout: the rollout guard's
verdicts (:mod:`shadowtutor.gate.guard`) as lines people read, e.g. "greeting: student
answers liked as often as the teacher's: 11.8 % vs 12.1 % thumbs down, difference <= +1.2 pts
at 95 %", and the rates per stage. Plain data, no Streamlit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shadowtutor.config import Settings
from shadowtutor.gate import criteria, evidence, guard, guard_evidence
from shadowtutor.gate.guard import NO_WORSE, UNDECIDED, WORSE, Arms, Comparison, pct, points
from shadowtutor.gate.guard_config import OUT_OF

# How each signal's verdict reads: (no worse, worse, undecided) and the rate's name.
PHRASES = {
    "thumbs_down": (
        "student answers liked as often as the teacher's",
        "student answers disliked more often than the teacher's",
        "student answers against the teacher's",
        "thumbs down",
    ),
    "regenerate": (
        "student answers regenerated no more often than the teacher's",
        "student answers regenerated more often than the teacher's",
        "student answers against the teacher's",
        "regenerated",
    ),
    "error": (
        "student errors as rare as the teacher's",
        "student errors more frequent than the teacher's",
        "student errors against the teacher's",
        "errors",
    ),
}
HOW_TO_SEND = (
    "no user feedback recorded yet: send it with POST /v1/feedback on the proxy (the "
    "X-ShadowTutor-Request-Id of the answer, kind thumbs and value up or down), "
    "collector.feedback(...) in the wrapper, or shadowtutor feedback import FILE; until "
    "then only errors are compared"
)


def verdict_line(row: Comparison, confidence: float) -> str:
    """One comparison as a sentence (see the module docstring)."""
    good, bad, open_, name = PHRASES[row.signal]
    rates = f"{pct(row.student_rate)} vs {pct(row.teacher_rate)} {name}"
    at = f"at {confidence * 100:g} %"
    margin = f"margin {row.margin * 100:g} pt{'' if row.margin == 0.01 else 's'}"
    if row.outcome == NO_WORSE:
        return f"{row.category}: {good}: {rates}, difference ≤ {points(row.upper)} {at}"
    if row.outcome == WORSE:
        return (
            f"{row.category}: {bad}: {rates}, difference ≥ {points(row.lower)} {at} ({margin}): "
            "the rollout rolls back"
        )
    if row.lower is None:
        return f"{row.category}: {open_}: {rates}; not decided: {row.why}"
    return (
        f"{row.category}: {open_}: {rates}, difference between {points(row.lower)} and "
        f"{points(row.upper)} {at} ({margin}): not decided yet"
    )


def stage_lines(
    by_stage: Mapping[str, Mapping[int, Arms]],
    signals: tuple[str, ...] = ("thumbs_down", "regenerate", "error"),
) -> list[str]:
    """Per category and stage, both arms' thumbs-down and regenerate rates, e.g.
    "greeting at 10 %: thumbs down 11.8 % of 93 rated vs 12.1 % of 840; regenerated ..."."""
    out = []
    for cat, stages in by_stage.items():
        for stage, arms in stages.items():
            parts = []
            for signal in signals:
                (ks, ns), (kt, nt) = arms.student.events(signal), arms.teacher.events(signal)
                if ns or nt:
                    parts.append(
                        f"{PHRASES[signal][3]} {pct(ks / ns if ns else None)} of {ns:,} vs "
                        f"{pct(kt / nt if nt else None)} of {nt:,} {OUT_OF[signal]}"
                    )
            out.append(f"{cat} at {stage} %: student vs teacher: " + "; ".join(parts))
    return out


@dataclass(frozen=True)
class FeedbackView:
    report: guard.Report
    shown: list[Comparison]  # the comparisons shown (errors only while no feedback is recorded)
    lines: list[str]  # one verdict per comparison shown
    stages: list[str]  # the rates per category and stage
    feedback_events: int  # feedback events in the log (0: none recorded yet)
    stage: int  # the rollout's stage now
    notes: list[str] = field(default_factory=list)  # what else to say (no feedback, 0 %)

    @property
    def worse(self) -> bool:
        return bool(self.report.worse)


def guard_counts(
    settings: Settings, student: str | None, since: datetime
) -> tuple[dict[str, dict[int, Arms]], int]:
    """Per category and rollout stage, both arms' counts since ``since`` (the log's
    ``pairs`` joined to its ``feedback`` view when it has one), and the number of feedback
    events in the log."""
    con = evidence.connect(settings.log_path, student)
    return guard_evidence.by_stage(con, since), guard_evidence.feedback_events(con)


def load(
    settings: Settings, config: criteria.GateConfig, student: str | None = None
) -> FeedbackView:
    """Everything the Readiness and Home sections show, read once."""
    now = datetime.now(UTC)
    where = guard_evidence.scope(settings, config, now=now, student=student)
    found, events = guard_counts(settings, student, where.since)
    report = guard_evidence.report(
        settings, config, now=now, student=student, where=where,
        found={cat: tuple(stages.values()) for cat, stages in found.items()},
    )  # fmt: skip
    notes = []
    if where.state.stage == 0:
        notes.append(
            "The student serves no users now (stage 0 %): the comparison grows with each "
            "stage of a rollout."
        )
    if events == 0:
        notes.append(HOW_TO_SEND)
    # Without any feedback the thumbs and regenerates compare nothing: not shown, said so.
    shown = [c for c in report.comparisons if events or c.signal == "error"]
    return FeedbackView(
        report=report,
        shown=shown,
        lines=[verdict_line(c, report.confidence) for c in shown],
        stages=stage_lines(found) if events else stage_lines(found, ("error",)),
        feedback_events=events,
        stage=where.state.stage,
        notes=notes,
    )


def home_lines(view: FeedbackView) -> list[str]:
    """Home's lines: the thumbs-down verdicts, and anything WORSE."""
    rows = view.shown
    return [
        line
        for row, line in zip(rows, view.lines, strict=True)
        if row.signal == "thumbs_down" or row.outcome == WORSE
    ]


def summary(view: FeedbackView) -> str:
    """One line for Home: the verdicts counted, e.g. "users' feedback at 10 %: 1 worse, 2 no
    worse, 3 not decided (student against teacher)"."""
    rows = view.shown
    counts = {o: sum(c.outcome == o for c in rows) for o in (WORSE, NO_WORSE, UNDECIDED)}
    return (
        f"Users' feedback at {view.stage} %: {counts[WORSE]} worse, {counts[NO_WORSE]} no worse, "
        f"{counts[UNDECIDED]} not decided (student against teacher, per category and signal)"
    )
