"""`shadowtutor judge ...`: the LLM judge (scores sampled pairs off the request path) and its
calibration against human reviews."""

from __future__ import annotations

import json
import math
import time

import click

from shadowtutor import db
from shadowtutor.cli.root import Group, settings_of
from shadowtutor.judge import runner, scores, templates
from shadowtutor.judge.calibration import SCALE, Calibration


@click.group("judge", cls=Group)
def judge_group() -> None:
    """The LLM judge: score sampled pairs 1-5 in both answer orders; check its calibration."""


@judge_group.command("run")
@click.option("--limit", default=100, show_default=True, help="Pairs to judge in this run.")
@click.option("--days", default=30.0, show_default=True, help="Pairs of the last N days.")
@click.option(
    "--sample-percent",
    default=100.0,
    show_default=True,
    help="Stable share of the unqueued pairs to judge (queued pairs always are).",
)
@click.option("--template", "version", default=templates.DEFAULT_VERSION, show_default=True)
@click.option("--retry-failed", is_flag=True, help="Judge failed pairs again.")
@click.option(
    "--every", type=float, default=0.0, help="Keep running, one batch every N seconds (Ctrl-C)."
)
@click.pass_context
def run(
    ctx: click.Context,
    limit: int,
    days: float,
    sample_percent: float,
    version: str,
    retry_failed: bool,
    every: float,
) -> None:
    """Judge pairs not judged yet by this model and template (two calls per pair), store
    the scores apart from human reviews, and print calls, failures and cost."""
    settings = settings_of(ctx)
    db.require_schema(settings.db_url)
    templates.get(version)
    backend = runner.judge_backend(settings)
    click.echo(f"judge: {backend.describe()}, template {version}")
    while True:
        if retry_failed:
            click.echo(f"retrying {runner.retry_failed(settings, version=version)} failed pairs")
        report = runner.run(
            settings,
            limit=limit,
            days=days,
            sample_percent=sample_percent,
            version=version,
            backend=backend,
        )
        click.echo(report.line())
        for line in report.errors:
            click.echo(f"  failed: {line}", err=True)
        if every <= 0:
            break
        time.sleep(every)


def _fmt(x: float) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.2f}"


def print_calibration(cal: Calibration) -> None:
    o = cal.overall
    click.echo(f"judge {cal.judge_version}: {cal.n} pairs scored by the judge and by people")
    click.echo(
        f"weighted kappa {_fmt(o.kappa)}, mean bias (judge - human) {_fmt(o.bias)}, "
        f"exact agreement {_fmt(o.exact)}, consistent across orders {_fmt(o.consistent)}"
    )
    click.echo("\nconfusion (rows: human score, columns: judge score)")
    click.echo("      " + "".join(f"{s:>6}" for s in SCALE))
    for s, row in zip(SCALE, cal.confusion, strict=True):
        click.echo(f"{s:>6}" + "".join(f"{x:>6}" for x in row))
    click.echo(f"\n{'group':<28} {'n':>6} {'kappa':>7} {'bias':>7} {'exact':>7}")
    for g in cal.groups:
        click.echo(
            f"{g.group:<28} {g.n:>6} {_fmt(g.kappa):>7} {_fmt(g.bias):>7} {_fmt(g.exact):>7}"
        )


@judge_group.command("calibration")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def calibration(ctx: click.Context, as_json: bool) -> None:
    """Agreement of the judge with your reviewers on the same pairs: weighted kappa,
    confusion matrix and mean bias, overall and per category and language."""
    settings = settings_of(ctx)
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        cal = scores.calibrate(session)
        counts = scores.counts(session)
    if as_json:
        click.echo(json.dumps({**cal.summary(), **counts}, indent=2))
        return
    print_calibration(cal)
    click.echo(
        f"\njudge rows: {counts['scored']} scored, {counts['failed']} failed, "
        + scores.cost_text(counts["cost_usd"], counts["unpriced"])
    )
