"""`shadowtutor students ...`: register, list and retire the students the collector shadows."""

from __future__ import annotations

import click
from sqlmodel import select

from shadowtutor import students
from shadowtutor.cli import BY, actor_of, main, session_of, settings_of
from shadowtutor.tables import ExportJob


@main.group("students")
def students_group() -> None:
    """Students as data: every active student answers each sampled request in the background.
    With none registered, the SHADOWTUTOR_STUDENT_* settings are the one (default) student."""


def _trained_on(session, value: str | None) -> str | None:  # noqa: ANN001 (a Session)
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
    """Register a student; the collector starts shadowing it within seconds."""
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
@BY
@click.pass_context
def retire(ctx: click.Context, name: str, by: str | None) -> None:
    """Stop shadowing a student; its records and decisions keep its name."""
    with session_of(ctx) as session:
        students.retire(session=session, actor_id=actor_of(session, by), name=name)
        click.echo(f"retired student {name}")
