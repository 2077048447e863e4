"""`shadowtutor export ...`: training data from reviewed pairs (admins only)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from shadowtutor import db
from shadowtutor.accounts import permissions, users
from shadowtutor.cli.root import Group, settings_of
from shadowtutor.export import jobs
from shadowtutor.tables import row_id

_DATE = click.DateTime(formats=["%Y-%m-%d"])


@click.group("export", cls=Group)
def export_group() -> None:
    """Export reviewed pairs as fine-tuning data (SFT and preference JSONL, CSV)."""


@export_group.command("run")
@click.option("--as", "username", required=True, help="Admin account doing the export.")
@click.option("--from", "date_from", type=_DATE, help="First pair day (UTC), YYYY-MM-DD.")
@click.option("--to", "date_to", type=_DATE, help="Last pair day (UTC), inclusive.")
@click.option("--language", "languages", multiple=True, help="Only this language (repeat).")
@click.option("--category", "categories", multiple=True, help="Only this category (repeat).")
@click.option("--source", "sources", multiple=True, help="Only this source (repeat).")
@click.option("--min-score", type=click.FloatRange(1, 5), help="Minimum mean student score.")
@click.option("--require-tag", "tags_required", multiple=True, help="Tag every pair must have.")
@click.option("--exclude-tag", "tags_excluded", multiple=True, help="Tag no pair may have.")
@click.option("--student", "students", multiple=True, help="Only this student's pairs (repeat).")
@click.option(
    "--agreement",
    type=click.Choice(list(jobs.AGREEMENTS)),
    default="all",
    show_default=True,
    help="all: every current review approves; majority; any: one approval is enough.",
)
@click.option(
    "--format",
    "formats",
    default="sft,preference,csv",
    show_default=True,
    help="Comma-separated: sft, preference, csv.",
)
@click.option("--split", default="80/10/10", show_default=True, help="train/val/test shares.")
@click.option(
    "--student-target-min-score",
    type=click.FloatRange(1, 5),
    help="Use the student's answer as the target where it scored at least this.",
)
@click.option(
    "--preference-max-score",
    type=click.FloatRange(1, 5),
    default=2.0,
    show_default=True,
    help="Student judged worse (preference pair) at or below this mean score, or when most "
    "reviewers preferred the teacher.",
)
@click.option("--max-tokens", default=8192, show_default=True, help="Drop longer examples.")
@click.option("--system-prompt", default="", help="System prompt for pairs that have none.")
@click.option("--no-scrub", is_flag=True, help="Do not scrub personal data (not recommended).")
@click.option("--seed", default="shadowtutor", show_default=True, help="Split and order seed.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the export (default: SHADOWTUTOR_EXPORT_DIR).",
)
@click.option("--dry-run", is_flag=True, help="Only count the matching pairs.")
@click.pass_context
def run(ctx: click.Context, /, username: str, **opts: Any) -> None:
    """Select reviewed pairs, scrub personal data, split by conversation and write the files,
    a manifest.json and a README with the fine-tuning commands. Only admins may export."""
    settings = settings_of(ctx)
    db.require_schema(settings.db_url)
    filters = jobs.ExportFilters(
        date_from=_day(opts["date_from"]),
        date_to=_day(opts["date_to"]),
        languages=opts["languages"],
        categories=opts["categories"],
        sources=opts["sources"],
        min_student_score=opts["min_score"],
        tags_required=opts["tags_required"],
        tags_excluded=opts["tags_excluded"],
        agreement=opts["agreement"],
        students=opts["students"],
    )
    options = jobs.ExportOptions(
        formats=tuple(f.strip() for f in opts["formats"].split(",") if f.strip()),
        split=jobs.parse_split(opts["split"]),
        scrub_pii=not opts["no_scrub"],
        student_target_min_score=opts["student_target_min_score"],
        preference_max_student_score=opts["preference_max_score"],
        max_tokens=opts["max_tokens"],
        system_prompt=opts["system_prompt"],
        seed=opts["seed"],
    )
    with db.session_scope(settings.db_url) as session:
        actor = users.require_user(session=session, username=username)
        permissions.require(session, actor, "export.run")
        n = jobs.count_matching(session=session, filters=filters)
        click.echo(f"{n:,} reviewed pairs match")
        if opts["dry_run"]:
            return
        if n == 0:
            raise click.ClickException(
                "nothing to export: no reviewed pairs match these filters; widen them, or "
                "review more pairs first (the Review page)"
            )
        result = jobs.run_export(
            session=session,
            actor_id=row_id(actor),
            export_root=opts["out"] or settings.export_path,
            filters=filters,
            options=options,
        )
    _report(result.counts)
    click.echo(f"export {result.export_id} (job {result.job_id}) -> {result.path}")


def _day(value: datetime | None) -> date | None:
    return value.date() if value else None


def _report(counts: dict[str, Any]) -> None:
    split = counts["per_split"]
    click.echo(
        f"{counts['examples']:,} examples: train {split['train']:,}, val {split['val']:,}, "
        f"test {split['test']:,}"
    )
    if counts["preference_pairs"]:
        click.echo(f"preference pairs: {sum(counts['preference_pairs'].values()):,}")
    dropped = ", ".join(f"{k} {v:,}" for k, v in counts["dropped"].items())
    click.echo(f"dropped: {dropped}")
    pii = ", ".join(f"{k} {v:,}" for k, v in counts["pii"].items())
    click.echo(f"personal data replaced: {pii} (in {counts['pairs_with_pii']:,} pairs)")


@export_group.command("list")
@click.option("--limit", default=20, show_default=True)
@click.pass_context
def list_(ctx: click.Context, limit: int) -> None:
    """Past exports, newest first, with their folder (files can be copied again from there)."""
    settings = settings_of(ctx)
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        rows = jobs.list_jobs(session=session, limit=limit)
    if not rows:
        click.echo("no exports yet; run `shadowtutor export run --as ADMIN`")
    for r in rows:
        state = "" if r["available"] else "  (files removed)"
        click.echo(
            f"{r['id']:>4}  {r['created_at']:%Y-%m-%d %H:%M}  {r['created_by']:<12} "
            f"{r['examples']:>7,} examples ({r['train']}/{r['val']}/{r['test']})  "
            f"{r['path']}{state}"
        )


@export_group.command("verify")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def verify(folder: Path) -> None:
    """Check an export folder's files against the SHA-256 in its manifest.json."""
    if not (folder / "manifest.json").is_file():
        raise click.ClickException(f"{folder} has no manifest.json; is it an export folder?")
    problems = jobs.verify_folder(folder)
    for p in problems:
        click.echo(p, err=True)
    if problems:
        raise click.ClickException(f"{len(problems)} file(s) do not match the manifest")
    click.echo("all files match manifest.json")
