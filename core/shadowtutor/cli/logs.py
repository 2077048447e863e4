"""`shadowtutor logs ...`: the shadow log on disk."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from shadowtutor.cli.root import Group, settings_of
from shadowtutor.log import browse, compaction, ingest, read


@click.group("logs", cls=Group)
def logs_group() -> None:
    """The shadow log: import, validate, compact to Parquet, show and tail pairs."""


@logs_group.command("show")
@click.argument("pair_id")
@click.pass_context
def show(ctx: click.Context, pair_id: str) -> None:
    """Print one pair: what it is, the conversation and both answers."""
    log_dir = settings_of(ctx).log_path
    row = browse.find(log_dir, pair_id)
    if row is None:
        raise click.ClickException(
            f"no pair {pair_id!r} in the log at {log_dir} (`shadowtutor logs tail` lists the "
            "newest pairs with their ids)"
        )
    click.echo(browse.as_text(row))


def _since(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    try:
        return browse.parse_since(value) if value else None
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@logs_group.command("tail")
@click.option("-n", "--lines", "limit", default=20, show_default=True, help="Pairs to list.")
@click.option("--student", help="Only this student's pairs (`shadowtutor students list`).")
@click.option("--category", help="Only pairs of this category.")
@click.option(
    "--since", callback=_since, help="Only pairs since: a span (30m, 2h, 7d) or a UTC time."
)
@click.pass_context
def tail(
    ctx: click.Context,
    limit: int,
    student: str | None,
    category: str | None,
    since: datetime | None,
) -> None:
    """List the newest pairs, newest first, one a line (`logs show ID` prints one whole)."""
    log_dir = settings_of(ctx).log_path
    rows = browse.newest(log_dir, limit=limit, student=student, category=category, since=since)
    if not rows:
        click.echo(f"no pairs match in the log at {log_dir}")
    for row in rows:
        click.echo(browse.as_line(row))


@logs_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--teacher-model", help="Teacher model for OpenAI chat lines (they name none).")
@click.option(
    "--source", type=click.Choice(["import", "replay", "live", "demo"]), help="Override the source."
)
@click.pass_context
def import_(ctx: click.Context, file: Path, teacher_model: str | None, source: str | None) -> None:
    """Import FILE: our log schema or OpenAI chat JSONL ({"messages": [...]}, the last
    assistant message being the teacher's answer).

    Every good line is imported; each bad line is reported with its number and reason. Ids
    already in the log are skipped, so importing the same file twice adds nothing.
    """
    log_dir = settings_of(ctx).log_path
    report = ingest.import_file(file, log_dir, source=source, teacher_model=teacher_model)
    for bad in report.bad:
        click.echo(f"{file}:{bad.line_no}: {bad.reason}", err=True)
    click.echo(
        f"imported {report.imported}, already present {report.duplicates}, "
        f"bad lines {len(report.bad)} -> {log_dir}"
    )
    if report.bad:
        ctx.exit(1)


@logs_group.command("validate")
@click.option("--limit", default=50, show_default=True, help="Bad lines to list at most.")
@click.pass_context
def validate(ctx: click.Context, limit: int) -> None:
    """Read the whole log and report bad lines (torn last lines from crashes are counted)."""
    log_dir = settings_of(ctx).log_path
    report = read.validate_log(log_dir)
    for bad in report.bad[:limit]:
        click.echo(f"{bad.path}:{bad.line_no}: {bad.reason}", err=True)
    click.echo(
        f"{report.records} valid records, {len(report.bad)} bad lines "
        f"({report.torn_tail} torn last lines) in {log_dir}"
    )
    if report.bad:
        ctx.exit(1)


@logs_group.command("compact")
@click.option("--limit", default=50, show_default=True, help="Bad lines to list at most.")
@click.pass_context
def compact(ctx: click.Context, limit: int) -> None:
    """Turn closed days' JSONL files into Parquet, in a folder or a bucket (safe to re-run
    and with writers running; counts are checked before any JSONL file is removed). Lines
    the validator rejects are named and their files kept in quarantine/; their day is
    compacted all the same."""
    log_dir = settings_of(ctx).log_path
    report = compaction.compact(log_dir)
    for bad in report.bad[:limit]:
        click.echo(f"bad line (quarantined): {bad.path}:{bad.line_no}: {bad.reason}", err=True)
    for problem in report.problems:
        click.echo(f"problem: {problem}", err=True)
    if report.swept:
        click.echo(f"removed {len(report.swept)} staging file(s) a killed compaction left")
    for day in report.already_compacted:
        click.echo(f"{day}: already compacted by another run (nothing to do)")
    click.echo(
        f"compacted {len(report.days)} day(s): {report.rows_written} rows written, "
        f"{report.duplicates_skipped} duplicates skipped, {report.bad_lines} bad lines, "
        f"{report.files_removed} JSONL files removed"
        + (
            f", {len(report.quarantined)} with bad lines kept in quarantine/"
            if report.quarantined
            else ""
        )
    )
    if report.problems:
        ctx.exit(1)
