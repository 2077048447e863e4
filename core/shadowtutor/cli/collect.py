"""`shadowtutor proxy` and `shadowtutor replay`: shadow collection from outside Python."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from shadowtutor.cli.root import settings_of


@click.command("proxy")
@click.option("--host", help="Address to bind (default: SHADOWTUTOR_PROXY_HOST).")
@click.option("--port", type=int, help="Port (default: SHADOWTUTOR_PROXY_PORT).")
@click.pass_context
def proxy_cmd(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Run an OpenAI- and Anthropic-compatible proxy that shadows every chat call.

    Point your app's OpenAI base URL at http://HOST:PORT/v1 (an Anthropic client's at
    http://HOST:PORT). Calls are forwarded unchanged to the teacher
    (SHADOWTUTOR_TEACHER_BASE_URL; the caller's Authorization header, else
    SHADOWTUTOR_TEACHER_API_KEY / OPENAI_API_KEY; Claude's /v1/messages to
    SHADOWTUTOR_ANTHROPIC_BASE_URL); chat completions, /v1/messages and /v1/responses are
    shadowed: the student answers in the background and the pair lands in the shadow log.
    Every other path is forwarded unshadowed. GET /healthz shows the collector's counters.
    """
    from shadowtutor import backends
    from shadowtutor.collect import proxy

    settings = settings_of(ctx)
    backends.student_backend(settings)  # a bad backend setting fails here, not per request
    host = host or settings.proxy_host
    port = port or settings.proxy_port
    click.echo(
        f"shadowtutor proxy on http://{host}:{port}/v1 -> teacher "
        f"{settings.teacher_base_url or proxy.DEFAULT_TEACHER}; student "
        f"{settings.student_backend} {settings.student_model} at {settings.student_base_url}; "
        f"log {settings.log_path}"
    )
    try:
        proxy.serve(settings, host=host, port=port)
    except KeyboardInterrupt:
        # Ctrl-C is how a proxy in a terminal is stopped: the server has shut down cleanly
        # (uvicorn re-raises the signal once it has), so not click's "Aborted!" and exit 1
        pass
    click.echo("shadowtutor proxy stopped")


@click.command("replay")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--concurrency", default=4, show_default=True, help="Student calls at once.")
@click.option(
    "--teacher-model",
    help="Teacher model of lines that name none (an OpenAI export is logged as 'unknown' "
    "otherwise, and cannot be priced). Lines that name their model keep it.",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(1, 131_072),
    default=1024,
    show_default=True,
    help="Longest answer asked of the teacher and the student (a base model may never stop).",
)
@click.pass_context
def replay_cmd(
    ctx: click.Context, file: Path, concurrency: int, teacher_model: str | None, max_tokens: int
) -> None:
    """Replay FILE (our log schema or OpenAI chat JSONL) through the student.

    With students registered (`shadowtutor students add`), every active one answers each
    line, as on live traffic (one record per student); else the SHADOWTUTOR_STUDENT_* one.

    The teacher is called only for lines without a teacher answer; a line whose teacher call
    fails is not written (counted as a teacher error, exit status 1) and is retried by the next
    run. Lines whose id is already in the log are skipped, so re-running the same command
    resumes an interrupted replay. Ctrl-C stops within a second or two and writes what is done.
    """
    from shadowtutor.collect import replay

    settings = settings_of(ctx)
    bar: list[Any] = []

    def start(n: int) -> None:
        bar.append(click.progressbar(length=n, label="replaying", file=sys.stderr))
        bar[0].__enter__()

    interrupted = None
    try:
        report = replay.replay(
            file,
            settings,
            concurrency=concurrency,
            teacher_model=teacher_model,
            max_tokens=max_tokens,
            start=start,
            progress=lambda n: bar[0].update(n),
        )
    except replay.ReplayInterrupted as exc:
        interrupted, report = exc, exc.report
    finally:
        if bar:
            bar[0].__exit__(None, None, None)
    if report.students:
        click.echo(f"students (registered, each asked): {', '.join(report.students)}")
    for bad in report.bad:
        click.echo(f"{file}:{bad.line_no}: {bad.reason}", err=True)
    for line_id, reason in report.teacher_failures[:5]:
        click.echo(f"teacher failed on {line_id}: {reason}", err=True)
    if len(report.teacher_failures) > 5:
        click.echo(f"... and {len(report.teacher_failures) - 5} more teacher failures", err=True)
    click.echo(
        f"replayed {report.replayed}, already in the log {report.already_logged}, "
        f"teacher called {report.teacher_called}, teacher errors {report.teacher_errors}, "
        f"student errors {report.student_errors}, "
        + (
            f"student unsupported {report.student_unsupported}, "
            if report.student_unsupported
            else ""
        )
        + f"bad lines {len(report.bad)} "
        f"-> {settings.log_path}"
    )
    if interrupted is not None:
        click.echo(str(interrupted), err=True)
        ctx.exit(130)
    if report.teacher_errors:
        click.echo(
            f"{report.teacher_errors} lines were not written because the teacher failed; "
            "run the same command again to retry them",
            err=True,
        )
    if report.bad or report.teacher_errors:
        ctx.exit(1)
