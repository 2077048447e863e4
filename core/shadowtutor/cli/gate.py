"""`shadowtutor gate ...` and `shadowtutor rollout ...`: the deploy gate and the staged rollout."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click

from shadowtutor import db
from shadowtutor.accounts import permissions, users
from shadowtutor.cli.root import Group, settings_of
from shadowtutor.config import Settings
from shadowtutor.gate import (
    criteria,
    decisions,
    epochs,
    evaluate,
    evidence,
    guard,
    guard_evidence,
    killswitch,
    rollout,
)
from shadowtutor.router import schedule
from shadowtutor.tables import row_id


def _config(ctx: click.Context) -> criteria.GateConfig:
    return criteria.load_config(settings_of(ctx).gate_config or None)


def _ready(ctx: click.Context) -> Settings:
    settings = settings_of(ctx)
    db.require_schema(settings.db_url)
    return settings


def _actor(settings: Settings, username: str | None) -> int | permissions.SystemActor:
    """The --by account's id; without --by, the operator (``permissions.SYSTEM``)."""
    if not username:
        return permissions.SYSTEM
    with db.session_scope(settings.db_url) as session:
        user = users.get_user(session=session, username=username)
        if user is None:
            raise click.ClickException(f"no user {username!r}; see `shadowtutor users list`")
        return row_id(user)


BY = click.option("--by", "by", metavar="USERNAME", help="Admin account to record as the actor.")


@click.group("gate", cls=Group)
def gate_group() -> None:
    """The deploy gate: GO / NO-GO / NOT ENOUGH DATA with confidence bounds."""


def _print_decision(d: criteria.Decision, decision_id: int | None = None) -> None:
    label = criteria.label(d.outcome)
    head = f"decision #{decision_id}: {label}" if decision_id else label
    click.echo(
        f"{head}  (config {d.config_version} {d.config_hash[:8]}, data {d.data_fingerprint[:8]})"
    )
    click.echo(d.summary)
    for c in d.criteria:
        est = "-" if c.estimate is None else f"{c.estimate:.4g}"
        bound = "-" if c.bound is None else f"{c.bound:.4g}"
        thr = "-" if c.threshold is None else f"{c.threshold:.4g}"
        cell = c.category if c.kind == "plain" else f"{c.category} {c.kind}"  # by kind
        click.echo(
            f"  {c.status:<12} {cell:<10} {c.label:<26} n={c.n:<7} est={est:<9} "
            f"bound={bound:<9} thr={thr:<7} {c.missing}"
        )


STUDENT = click.option(
    "--student",
    metavar="NAME",
    help="The student (see `shadowtutor students list`); default: the default student.",
)


@gate_group.command("evaluate")
@STUDENT
@BY
@click.pass_context
def evaluate_cmd(ctx: click.Context, student: str | None, by: str | None) -> None:
    """Evaluate the gate over the last window_days of the log and the reviews, append the
    decision, and apply the automatic rollback rules (run it from cron, e.g. hourly, once per
    student with --student)."""
    settings = _ready(ctx)
    result = evaluate.evaluate(
        settings, _config(ctx), actor_id=_actor(settings, by), student=student
    )
    _print_decision(result.decision, result.decision_id)
    for row in result.feedback.comparisons if result.feedback else ():
        click.echo(
            f"users' feedback, {row.category} {row.signal}: {guard.LABELS[row.outcome]} "
            f"(student {guard.pct(row.student_rate)} of {row.student_n:,}, teacher "
            f"{guard.pct(row.teacher_rate)} of {row.teacher_n:,}; difference "
            f"{guard.points(row.lower)} to {guard.points(row.upper)}, margin "
            f"{row.margin * 100:g} pts)"
        )
    if result.rollback:
        click.echo(f"AUTOMATIC ROLLBACK to 0%: {result.rollback}", err=True)
    click.echo(f"router: {schedule.retrain_due(settings, _config(ctx), student=student).note}")


def _step(value: str) -> int:
    m = re.fullmatch(r"(\d+)d", value.strip())
    if not m or int(m.group(1)) < 1:
        raise click.BadParameter("use whole days, e.g. 1d or 7d", param_hint="--step")
    return int(m.group(1))


@gate_group.command("replay")
@click.option("--from", "from_", type=click.DateTime(["%Y-%m-%d"]), help="First day (UTC).")
@click.option("--to", "to", type=click.DateTime(["%Y-%m-%d"]), help="Last day (default today).")
@click.option("--step", default="1d", show_default=True, help="Days between evaluations.")
@click.pass_context
def replay(ctx: click.Context, from_: datetime | None, to: datetime | None, step: str) -> None:
    """Replay the gate day by day over the log: what it would have decided at the end of each
    day, with the reviews that existed then. Nothing is recorded."""
    settings = _ready(ctx)
    end = to.date() if to else datetime.now(UTC).date()
    start = from_.date() if from_ else end - timedelta(days=29)
    if end < start:
        raise click.BadParameter(f"--to {end} is before --from {start}")
    for p in evaluate.replay(settings, _config(ctx), start, end, _step(step)):
        cats = ", ".join(p.eligible) or "-"
        label = criteria.label(p.outcome)
        click.echo(f"{p.day}  {label:<15} eligible: {cats:<18} pairs {p.pairs:>6}  "
                   f"reviews {p.reviews:>4}  {p.summary}")  # fmt: skip


@gate_group.command("show")
@click.argument("decision_id", type=int, required=False)
@click.pass_context
def show(ctx: click.Context, decision_id: int | None) -> None:
    """Show the newest decision (or DECISION_ID) and its approval state."""
    settings = _ready(ctx)
    with db.session_scope(settings.db_url) as session:
        from shadowtutor.tables import GateDecision

        row = (
            session.get(GateDecision, decision_id)
            if decision_id
            else decisions.latest(session=session)
        )
        if row is None:
            raise click.ClickException("no such decision; run `shadowtutor gate evaluate` first")
        when = f"{row.created_at:%Y-%m-%d %H:%M} UTC"
        click.echo(f"decision #{row.id} {criteria.label(row.outcome)} at {when}")
        click.echo(row.evidence.get("summary", ""))
        for c in row.evidence.get("criteria", []):
            kind = c.get("kind", "plain")
            cell = c["category"] if kind == "plain" else f"{c['category']} {kind}"
            click.echo(f"  {c['status']:<12} {cell:<10} {c['label']:<26} {c['missing']}")
        click.echo(decisions.approval(session=session).describe())


@gate_group.command("approve")
@click.argument("decision_id", type=int)
@click.option("--by", "by", metavar="USERNAME", required=True, help="The approving admin.")
@click.pass_context
def approve(ctx: click.Context, decision_id: int, by: str) -> None:
    """Approve GO decision DECISION_ID (lapses when a newer decision has new evidence)."""
    settings = _ready(ctx)
    actor = _actor(settings, by)
    with db.session_scope(settings.db_url) as session:
        decisions.approve(session=session, decision_id=decision_id, actor_id=actor)
        click.echo(decisions.approval(session=session).describe())


@gate_group.command("override")
@click.argument("decision_id", type=int)
@click.option("--by", "by", metavar="USERNAME", required=True, help="The overriding admin.")
@click.option("--reason", required=True, help="Why the failed criteria are acceptable.")
@click.pass_context
def override(ctx: click.Context, decision_id: int, by: str, reason: str) -> None:
    """Override NO-GO decision DECISION_ID (flagged; a critical failure cannot be overridden)."""
    settings = _ready(ctx)
    actor = _actor(settings, by)
    with db.session_scope(settings.db_url) as session:
        decisions.override(session=session, decision_id=decision_id, actor_id=actor, reason=reason)
        click.echo(decisions.approval(session=session).describe())


@gate_group.group("epoch", cls=Group)
def epoch_group() -> None:
    """Evidence epochs: where the gate's evidence starts, and why."""


@epoch_group.command("start")
@STUDENT
@click.option(
    "--reason", required=True, help="Why the evidence so far no longer counts (kept, audited)."
)
@BY
@click.pass_context
def epoch_start(ctx: click.Context, student: str | None, reason: str, by: str | None) -> None:
    """Start a new evidence epoch for a student by hand (admins, or the operator without
    --by): the evidence gathered so far lapses, the next decisions count from now and spend
    the epoch's share of the error budget. Recorded in the audit trail with the reason."""
    settings = _ready(ctx)
    actor = _actor(settings, by)
    with db.session_scope(settings.db_url) as session:
        row = epochs.start(
            session=session, actor_id=actor, config=_config(ctx), student=student, reason=reason
        )
        index = epochs.index_of(session=session, epoch=row)
        click.echo(f"evidence epoch {index} for {row.student} started: " + epochs.since_words(row))


@click.group("rollout", cls=Group)
def rollout_group() -> None:
    """Staged rollout: status, advance a stage, roll back, kill switch."""


def _status_lines(settings: Settings) -> list[str]:
    config = criteria.load_config(settings.gate_config or None)
    with db.session_scope(settings.db_url) as session:
        cur = rollout.state(session=session)
        served = evidence.served_now(settings, session)
        lines = [
            f"stage: {cur.stage}% of eligible traffic"
            + (" -- KILLED: the teacher serves everything" if cur.killed else ""),
            f"eligible categories: {', '.join(cur.categories) or '-'}",
            f"serving student: {cur.student or 'default'}" if cur.stage else "serving student: -",
            f"since: {cur.since:%Y-%m-%d %H:%M} UTC" if cur.since else "since: never started",
            f"served by the student at this stage: {served:,}",
            f"approval: {decisions.approval(session=session).describe()}",
        ]
        if killswitch.killed(settings):
            lines.append(f"{killswitch.KILL_ENV} is set: the teacher serves everything")
        feedback = guard_evidence.report(
            settings, config, now=datetime.now(UTC), student=cur.student if cur.stage else None
        )
        problems = rollout.blockers(
            session=session, config=config, served_at_stage=served, feedback=feedback
        )
        nxt = None if cur.killed else rollout.next_stage(config, cur.stage)
        lines.append(
            f"next stage {nxt}%: " + ("ready" if not problems else "; ".join(problems))
            if nxt is not None or problems
            else "at the last stage"
        )
    return lines


@rollout_group.command("status")
@click.pass_context
def status(ctx: click.Context) -> None:
    """Current stage, eligible categories, kill switch and what blocks the next stage."""
    for line in _status_lines(_ready(ctx)):
        click.echo(line)


@rollout_group.command("advance")
@STUDENT
@BY
@click.pass_context
def advance(ctx: click.Context, student: str | None, by: str | None) -> None:
    """Advance one stage (needs an approved GO decision newer than the last rollback, and
    the current stage's minimum requests and hours). The approved decision's student serves;
    only one student serves at a time."""
    settings = _ready(ctx)
    actor = _actor(settings, by)
    config = _config(ctx)
    feedback = guard_evidence.report(settings, config, now=datetime.now(UTC), student=student)
    with db.session_scope(settings.db_url) as session:
        served = evidence.served_now(settings, session)
        ev = rollout.advance(
            session=session,
            config=config,
            actor_id=actor,
            served_at_stage=served,
            student=student,
            feedback=feedback,
        )
        click.echo(
            f"advanced to {ev.stage}% for {', '.join(ev.details['categories'])} "
            f"(student {ev.details.get('student')})"
        )


@rollout_group.command("rollback")
@click.option("--to", "to_stage", default=0, show_default=True, help="Stage to return to.")
@click.option("--reason", default="", help="Why (recorded in the audit trail).")
@BY
@click.pass_context
def rollback_cmd(ctx: click.Context, to_stage: int, reason: str, by: str | None) -> None:
    """Roll back (default to 0%: the teacher serves everyone). Advancing again needs a new
    approved decision."""
    settings = _ready(ctx)
    with db.session_scope(settings.db_url) as session:
        ev = rollout.rollback(
            session=session, actor_id=_actor(settings, by), reason=reason, to_stage=to_stage
        )
        click.echo(f"rolled back to {ev.stage}%")


@rollout_group.command("kill")
@click.option("--reason", default="", help="Why (recorded in the audit trail).")
@BY
@click.pass_context
def kill(ctx: click.Context, reason: str, by: str | None) -> None:
    """Pull the kill switch: every request goes to the teacher within seconds (running
    proxies re-read the state every 2 s). The stage is kept for after `unkill`."""
    settings = _ready(ctx)
    with db.session_scope(settings.db_url) as session:
        rollout.set_kill(session=session, actor_id=_actor(settings, by), on=True, reason=reason)
    click.echo("kill switch ON: the teacher serves every request")


@rollout_group.command("unkill")
@click.option("--reason", default="", help="Why (recorded in the audit trail).")
@BY
@click.pass_context
def unkill(ctx: click.Context, reason: str, by: str | None) -> None:
    """Release the kill switch: the stage before the kill applies again."""
    settings = _ready(ctx)
    with db.session_scope(settings.db_url) as session:
        ev = rollout.set_kill(
            session=session, actor_id=_actor(settings, by), on=False, reason=reason
        )
    click.echo(f"kill switch off: stage {ev.stage}% applies again")
