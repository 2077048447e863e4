"""`shadowtutor students ...`: register, list and retire the students the collector shadows,
and ask a student's server whether it is up and what the model is (`health`, `info`).

`shadowtutor student health | info` (the old group, one letter apart) still works as a hidden
alias that says where the commands moved."""

from __future__ import annotations

import click
from sqlmodel import Session, select

from shadowtutor import students
from shadowtutor.backends import student_backend
from shadowtutor.cli.root import BY, Group, actor_of, session_of, settings_of
from shadowtutor.students import health
from shadowtutor.tables import ExportJob


@click.group("students", cls=Group)
def students_group() -> None:
    """Students as data: every active student answers each sampled request in the background.
    With none registered, the SHADOWTUTOR_STUDENT_* settings are the one (default) student.
    `health` and `info` ask the student's server what it serves."""


def _trained_on(session: Session, value: str | None) -> str | None:
    """An export's dataset version from an export id (folder name) or the version itself."""
    if not value:
        return None
    for job in session.exec(select(ExportJob)):
        manifest = job.manifest or {}
        if value in (manifest.get("export_id"), manifest.get("dataset_version")):
            return manifest.get("dataset_version") or manifest.get("export_id")
    raise click.ClickException(
        f"no export {value!r}: give an export id or dataset version (`shadowtutor export list`)"
    )


@students_group.command("add")
@click.argument("name")
@click.option("--backend", type=click.Choice(students.registry.BACKENDS), default="ollama")
@click.option("--base-url", default="", help="Ollama host, or an OpenAI-compatible /v1 URL.")
@click.option("--model", required=True, help="Model name on that server.")
@click.option("--timeout", "timeout_s", type=float, help="Seconds; default the setting's.")
@click.option("--share", type=float, default=100.0, help="Percent of sampled requests.")
@click.option("--monthly-cost", type=float, help="Flat monthly cost in USD (a GPU rental).")
@click.option("--version", "version", default="", help="A version label, e.g. v2.")
@click.option("--trained-on", help="The export (id or dataset version) it was fine-tuned on.")
@BY
@click.pass_context
def add(
    ctx: click.Context,
    name: str,
    backend: str,
    base_url: str,
    model: str,
    timeout_s: float | None,
    share: float,
    monthly_cost: float | None,
    version: str,
    trained_on: str | None,
    by: str | None,
) -> None:
    """Register a student; running collectors shadow it within 2 seconds."""
    with session_of(ctx) as session:
        row = students.add(
            session=session,
            actor_id=actor_of(session, by),
            name=name,
            backend=backend,
            base_url=base_url,
            model=model,
            timeout_s=timeout_s,
            share_percent=share,
            monthly_cost_usd=monthly_cost,
            version=version,
            trained_on=_trained_on(session, trained_on),
        )
        click.echo(f"added student {row.name} ({row.backend} {row.model}, {row.share_percent:g}%)")


@students_group.command("list")
@click.option("--all", "everyone", is_flag=True, help="Include retired students.")
@click.pass_context
def list_(ctx: click.Context, everyone: bool) -> None:
    """The registered students (or the default student when none is)."""
    with session_of(ctx) as session:
        rows = students.list_students(session=session, include_retired=everyone)
        if not rows:
            spec = students.default_spec(settings_of(ctx))
            click.echo(f"{spec.name:<20} {spec.backend:<7} {spec.model:<24} 100%  (settings)")
            return
        for r in rows:
            state = "retired" if r.retired_at else "active"
            state += " (demo: never called)" if r.demo else ""
            trained = f" trained-on {r.trained_on}" if r.trained_on else ""
            click.echo(
                f"{r.name:<20} {r.backend:<7} {r.model:<24} {r.share_percent:g}%  {state}"
                f" {r.version}{trained}".rstrip()
            )


@students_group.command("retire")
@click.argument("name")
@click.option(
    "--rollback-reason",
    default=None,
    help="Retire the student the rollout serves: roll back to the teacher first, with this "
    "reason in the audit trail (without it, retiring the serving student is refused).",
)
@BY
@click.pass_context
def retire(ctx: click.Context, name: str, rollback_reason: str | None, by: str | None) -> None:
    """Stop shadowing a student; its records and decisions keep its name."""
    with session_of(ctx) as session:
        done = students.retire(
            session=session,
            actor_id=actor_of(session, by),
            name=name,
            rollback_reason=rollback_reason,
        )
        click.echo(done.describe())


def _print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        click.echo(f"{label + ':':<{width + 1}} {value}")


@students_group.command("health")
@click.option("--model", help="Model to check. Default: SHADOWTUTOR_STUDENT_MODEL.")
@click.pass_context
def health_cmd(ctx: click.Context, model: str | None) -> None:
    """Is the student server reachable; its version, the models pulled and loaded, and the
    chosen model's family, parameters, quantization and context length (the same facts as the
    Playground page's health panel). Exits 1 when there is a problem, with how to fix it."""
    settings = settings_of(ctx)
    backend = student_backend(settings, timeout=min(settings.student_timeout_s, 5.0))
    report = health.check(backend, model or settings.student_model)
    _print_rows(report.facts())
    for problem in report.problems:
        click.echo(f"problem: {problem}", err=True)
    if report.problems:
        ctx.exit(1)


@students_group.command("info")
@click.argument("model")
@click.pass_context
def info_cmd(ctx: click.Context, model: str) -> None:
    """Family, parameters, quantization, context length and size of MODEL, and whether it is
    loaded now (as on the Playground page)."""
    settings = settings_of(ctx)
    backend = student_backend(settings, timeout=min(settings.student_timeout_s, 5.0))
    _print_rows(health.info(backend, model))


MOVED = "`shadowtutor student` is now `shadowtutor students`"


@click.group("student", hidden=True, cls=Group)
def student_group() -> None:
    """Moved: `shadowtutor student ...` is now `shadowtutor students ...`."""
    click.echo(MOVED, err=True)


student_group.add_command(health_cmd)
student_group.add_command(info_cmd)
