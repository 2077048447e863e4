"""`shadowtutor feedback ...`: users' feedback on answers, in the log beside the pairs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from shadowtutor.cli.root import Group, settings_of
from shadowtutor.collect import feedback_import
from shadowtutor.log import feedback, read, sql


@click.group("feedback", cls=Group)
def feedback_group() -> None:
    """Users' feedback: import a table of it, count what the log holds."""


@feedback_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--within-hours",
    default=24.0,
    show_default=True,
    help="A row keyed by conversation and time is tied to that conversation's last answer at "
    "most this long before it.",
)
@click.pass_context
def import_cmd(ctx: click.Context, file: Path, within_hours: float) -> None:
    """Import FILE (CSV with a header row, or JSONL): one feedback event a row, keyed by
    `request_id`, or by `conversation_id` and `ts`; with `kind`, `value`, and optionally
    `comment`, `scale`, `text`, `event_id`, `user`, `metadata`. Every row is accounted for:
    imported, duplicate, malformed or unresolved, each bad row named by its line."""
    log_dir = settings_of(ctx).log_path
    report = feedback_import.import_file(file, log_dir, within=timedelta(hours=within_hours))
    click.echo(feedback_import.summary(report))
    if report.write_failed:
        raise click.ClickException(
            f"{report.write_failed} rows could not be written to the log at {log_dir}; free "
            "some space and import the file again (what was imported is not doubled)"
        )


@feedback_group.command("stats")
@click.pass_context
def stats_cmd(ctx: click.Context) -> None:
    """Count the log's feedback: events by kind and source, how many have a pair in the log,
    lines repeating an event (kept once) and bad lines (named)."""
    log_dir = settings_of(ctx).log_path
    found = feedback.scan(log_dir)
    con = sql.connect(log_dir)
    read.create_views(con, log_dir)
    rows = con.execute(
        "SELECT f.kind, f.source, count(*), count(p.request_id) FROM feedback f "
        "LEFT JOIN (SELECT DISTINCT request_id FROM pairs) p USING (request_id) "
        "GROUP BY ALL ORDER BY 1, 2"
    ).fetchall()
    click.echo(f"{found.events} feedback events in the log at {log_dir}")
    for kind, source, n, paired in rows:
        click.echo(f"  {kind:<11} {source:<9} {n:>8}  ({n - paired} without a pair in the log)")
    click.echo(f"{found.repeated} lines repeat an event (counted once); {len(found.bad)} bad lines")
    for path, line, reason in found.bad[:20]:
        click.echo(f"  {path}:{line}: {reason}")
