"""`shadowtutor router ...`: train, show, roll back and switch on a student's request router."""

from __future__ import annotations

import click

from shadowtutor.cli.root import BY, Group, actor_of, session_of, settings_of
from shadowtutor.gate import criteria
from shadowtutor.log.schema import DEFAULT_STUDENT
from shadowtutor.router import schedule, store
from shadowtutor.router.threshold import Choice

STUDENT = click.option(
    "--student", default=DEFAULT_STUDENT, show_default=True, metavar="NAME", help="The student."
)


def _config(ctx: click.Context) -> criteria.GateConfig:
    return criteria.load_config(settings_of(ctx).gate_config or None)


@click.group("router", cls=Group)
def router_group() -> None:
    """The per-request router: P(acceptable | request) learned from reviews, with a threshold
    per category whose acceptable rate is guaranteed at 95 % (see the Router page)."""


@router_group.command("train")
@STUDENT
@click.option(
    "--floor",
    type=float,
    default=store.DEFAULT_FLOOR,
    show_default=True,
    help="The acceptable rate the student's routed traffic must keep (the guarantee's floor).",
)
@click.option("--reason", default="", help="Why (kept in the router's history).")
@BY
@click.pass_context
def train_cmd(ctx: click.Context, student: str, floor: float, reason: str, by: str | None) -> None:
    """Train a new version from the reviews (and the judge's debiased verdicts) and make it the
    active one; prints its thresholds."""
    settings = settings_of(ctx)
    with session_of(ctx) as session:
        actor = actor_of(session, by)
    row = schedule.train(
        settings, _config(ctx), actor=actor, student=student, floor=floor, reason=reason
    )
    click.echo(f"router version {row.version} of {student} trained")
    _print_version(row.choices, row.counts, row.metrics, row.floor, row.alpha)


def _print_version(
    choices: dict[str, object], counts: dict[str, object], metrics: dict[str, object],
    floor: float, alpha: float,
) -> None:  # fmt: skip
    human = f"{counts.get('human_train', 0)} to learn + {counts.get('human_held_out', 0)} held out"
    click.echo(
        f"  labels: people {human}; judge pairs {counts.get('judge_train', 0)}; "
        f"users' feedback pairs {counts.get('feedback_train', 0)}"
    )
    auc = metrics.get("auc")
    click.echo(
        f"  floor {floor:.0%} with confidence {1 - alpha:.2%} per category (alpha {alpha:.3%});"
        f" held-out AUC {'-' if auc is None else f'{float(str(auc)):.3f}'}"
    )
    for cat, raw in sorted(choices.items()):
        choice = Choice.from_dict(dict(raw))  # type: ignore[call-overload]
        thr = "none certified" if choice.threshold is None else f">= {choice.threshold:.3f}"
        gate = "yes" if dict(raw).get("category_gate") else "no"  # type: ignore[call-overload]
        click.echo(
            f"  {cat:<10} threshold {thr:<15} student takes {choice.share:6.1%}  "
            f"(held out {choice.held_out}; category gating at this floor: {gate})"
        )
        cascade = dict(raw).get("cascade")  # type: ignore[call-overload]
        if isinstance(cascade, dict):
            click.echo(f"  {'':<10} {_cascade_line(cascade)}")


def _cascade_line(cascade: dict[str, object]) -> str:
    """The cascade's chosen point of a category, in one line."""
    chosen = cascade.get("chosen")
    if not isinstance(chosen, dict):
        return f"cascade: none certified ({len(cascade.get('tested') or [])} point(s) tested)"  # type: ignore[arg-type]
    return (
        f"cascade: router >= {chosen['router']:.3f}, validator >= {chosen['validator']:.3f}: "
        f"student takes {chosen['share']:.1%}, sends back {chosen['sent_back']:.1%} "
        f"(acceptable rate >= {chosen['bound']:.1%})"
    )


@router_group.command("show")
@STUDENT
@click.pass_context
def show_cmd(ctx: click.Context, student: str) -> None:
    """The active version, the mode, and every version (with each category's threshold and
    its cascade point: the router's threshold to try the student, the validator's to serve
    its answer)."""
    with session_of(ctx) as session:
        current = store.state(session, student)
        rows = store.versions(session, student)
        if not rows:
            raise click.ClickException(
                f"student {student!r} has no router yet: `shadowtutor router train`"
            )
        active = current.active.version if current.active else None
        click.echo(f"student {student}: mode {current.mode}, active version {active}")
        for row in rows:
            mark = "*" if row.version == active else " "
            click.echo(
                f"{mark} version {row.version}  {row.created_at:%Y-%m-%d %H:%M} UTC  "
                f"floor {row.floor:.0%}"
            )
        if current.active is not None:
            a = current.active
            _print_version(a.choices, a.counts, a.metrics, a.floor, a.alpha)


@router_group.command("rollback")
@click.argument("version", type=int)
@STUDENT
@click.option("--reason", default="", help="Why (kept in the router's history).")
@BY
@click.pass_context
def rollback_cmd(
    ctx: click.Context, version: int, student: str, reason: str, by: str | None
) -> None:
    """Make an earlier VERSION the active one."""
    with session_of(ctx) as session:
        store.rollback(
            session=session,
            actor_id=actor_of(session, by),
            student=student,
            version=version,
            reason=reason,
        )
    click.echo(f"router of {student}: version {version} is active")


@router_group.command("mode")
@click.argument("mode", type=click.Choice(store.MODES))
@STUDENT
@click.option("--reason", default="", help="Why (kept in the router's history).")
@BY
@click.pass_context
def mode_cmd(ctx: click.Context, mode: str, student: str, reason: str, by: str | None) -> None:
    """`routed`: after an approved GO the router decides per request (the rollout's stage
    applies on top); `cascade`: the router lets the student try and the validator checks its
    answer before it is served (the teacher answers what it sends back; non-streamed
    requests); `category`: the gate's category GOs decide."""
    with session_of(ctx) as session:
        store.set_mode(
            session=session,
            actor_id=actor_of(session, by),
            student=student,
            mode=mode,
            reason=reason,
        )
    click.echo(f"router of {student}: mode {mode}")
