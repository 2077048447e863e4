"""`shadowtutor review ...`: fill the review queue, see progress and agreement, manage tags."""

from __future__ import annotations

from datetime import datetime

import click

from shadowtutor.cli.root import BY, Group, actor_of, session_of, settings_of
from shadowtutor.log import analytics
from shadowtutor.log.schema import SOURCES
from shadowtutor.review import agreement, progress, sampling, taxonomy, workflow


@click.group("review", cls=Group)
def review_group() -> None:
    """The review queue: sample pairs from the shadow log, progress, agreement, tags."""


@review_group.command("enqueue")
@click.option(
    "--strategy",
    type=click.Choice(sampling.STRATEGIES),
    default="random",
    show_default=True,
    help="random; stratified (language x category); lowest_similarity; student_errors; "
    "judge_unsure (more of the pairs the LLM judge is unsure of, weighted for the gate); "
    "negative_feedback (pairs users thumbed down, rated low, corrected, flagged or "
    "regenerated); "
    "router_sides (both sides of the request router's threshold, weighted).",
)
@click.option("--size", type=click.IntRange(1, sampling.MAX_SIZE), default=50, show_default=True)
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), help="First day (UTC).")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), help="Last day (UTC), inclusive.")
@click.option("--source", type=click.Choice(SOURCES), help="Only pairs from this source.")
@click.option("--language", help="Only pairs in this language (e.g. de).")
@click.option("--category", help="Only pairs of this category.")
@click.option("--student", help="Only this student's pairs (`shadowtutor students list`).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same sample.")
@click.option(
    "--reviews",
    "required",
    type=click.IntRange(1, 20),
    help="Reviews each pair needs (default: SHADOWTUTOR_REVIEWS_PER_ITEM).",
)
@click.option(
    "--by",
    "username",
    metavar="USERNAME",
    help="Record this user as the one who enqueued (checked against its role); default: the "
    "operator.",
)
@click.pass_context
def enqueue(
    ctx: click.Context,
    strategy: str,
    size: int,
    start: datetime | None,
    end: datetime | None,
    source: str | None,
    language: str | None,
    category: str | None,
    student: str | None,
    seed: int,
    required: int | None,
    username: str | None,
) -> None:
    """Sample pairs from the shadow log into the review queue. Pairs already queued are
    never added again, so re-running only adds new pairs."""
    settings = settings_of(ctx)
    filters = sampling.Filters(
        start=start.date() if start else None,
        end=end.date() if end else None,
        source=source,
        language=language,
        category=category,
        student=student,
    )
    with session_of(ctx) as session:
        picked, result = workflow.fill_queue(
            session=session,
            con=analytics.connect(settings.log_path),
            strategy=strategy,
            size=size,
            seed=seed,
            filters=filters,
            required_reviews=required or settings.reviews_per_item,
            enqueued_by=actor_of(session, username),
        )
    click.echo(
        f"added {result.added} pairs to the review queue ({strategy}; {picked.candidates} "
        f"candidates not yet queued matched; {result.already_queued} were queued already)"
    )
    if picked.note:
        click.echo(picked.note)
    if result.bad_ids:
        click.echo(
            f"skipped {len(result.bad_ids)} pairs whose id is over 64 characters (not "
            f"reviewable; re-import them with shorter ids): {', '.join(result.bad_ids[:3])[:200]}",
            err=True,
        )
    if not result.added:
        click.echo("nothing added: widen --from/--to or the filters, or try another strategy")


@review_group.command("stats")
@click.pass_context
def stats(ctx: click.Context) -> None:
    """Queue size, reviews today, per reviewer counts and agreement."""
    with session_of(ctx) as session:
        prog = progress.progress(session=session)
        ratings = progress.ratings(session=session)
    median = "n/a" if prog.median_seconds is None else f"{prog.median_seconds:.0f} s"
    click.echo(
        f"queue: {prog.queue_open} open, {prog.items_done} done of {prog.items_total} items\n"
        f"reviews: {prog.reviews_total} ({prog.reviewed_today} today, UTC), "
        f"median {median} per review"
    )
    for r in prog.per_reviewer:
        sec = "n/a" if r.median_seconds is None else f"{r.median_seconds:.0f} s"
        click.echo(
            f"  {r.reviewer:<16} {r.reviews:>5} reviews ({r.approved} approved, {r.rejected} "
            f"rejected, {r.skipped} skipped, {r.today} today), median {sec}"
        )
    alpha = agreement.score_alpha(ratings)
    click.echo(
        "Krippendorff's alpha (ordinal, student scores): "
        + ("n/a (too few items with two reviews)" if alpha is None else f"{alpha:.3f}")
    )
    for p in agreement.pair_agreement(ratings):
        kappa = "n/a" if p.kappa is None else f"{p.kappa:.2f}"
        click.echo(
            f"  {p.reviewer_a} & {p.reviewer_b}: {p.agreed}/{p.items} agree on approve/reject "
            f"({p.percent:.0%}), kappa {kappa}"
        )
    click.echo(f"items where reviewers disagree: {len(agreement.disagreements(ratings))}")


@review_group.group("tags")
def tags_group() -> None:
    """The tag taxonomy reviewers choose from."""


@tags_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include deactivated tags.")
@click.pass_context
def tags_list(ctx: click.Context, show_all: bool) -> None:
    """List tags (kind, name, description)."""
    with session_of(ctx) as session:
        tags = taxonomy.list_tags(session=session, active_only=not show_all)
    if not tags:
        click.echo("no tags; `shadowtutor review tags add --defaults` adds the default set")
    for tag in tags:
        state = "" if tag.active else " (inactive)"
        click.echo(f"{tag.kind:<13} {tag.name}{state}: {tag.description}")


@tags_group.command("add")
@click.argument("name", required=False)
@click.option("--kind", type=click.Choice(taxonomy.TAG_KINDS), default="other", show_default=True)
@click.option("--description", default="")
@click.option("--defaults", is_flag=True, help="Add the default tags that are missing.")
@BY
@click.pass_context
def tags_add(
    ctx: click.Context,
    name: str | None,
    kind: str,
    description: str,
    defaults: bool,
    by: str | None,
) -> None:
    """Add a tag NAME, or the default set with --defaults."""
    if not name and not defaults:
        raise click.UsageError("give a tag NAME or --defaults")
    with session_of(ctx) as session:
        actor = actor_of(session, by)
        if defaults:
            added = taxonomy.seed_default_tags(session=session, actor_id=actor)
            click.echo(f"added {added} default tags")
        if name:
            tag = taxonomy.add_tag(
                session=session, name=name, kind=kind, description=description, actor_id=actor
            )
            click.echo(f"added tag {tag.name!r} ({tag.kind})")
