"""`shadowtutor student ...`: is the student server up, and what is the model?"""

from __future__ import annotations

import click

from shadowtutor.backends import student_backend
from shadowtutor.cli import main, settings_of
from shadowtutor.students import health


def _print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        click.echo(f"{label + ':':<{width + 1}} {value}")


@main.group("student")
def student_group() -> None:
    """The student model server (Ollama or OpenAI-compatible): health and model facts."""


@student_group.command("health")
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


@student_group.command("info")
@click.argument("model")
@click.pass_context
def info_cmd(ctx: click.Context, model: str) -> None:
    """Family, parameters, quantization, context length and size of MODEL, and whether it is
    loaded now (as on the Playground page)."""
    settings = settings_of(ctx)
    backend = student_backend(settings, timeout=min(settings.student_timeout_s, 5.0))
    _print_rows(health.info(backend, model))
