"""`shadowtutor demo`: generate realistic demo data and start the dashboard on it."""

from __future__ import annotations

import time

import click

from shadowtutor import db
from shadowtutor.accounts import users
from shadowtutor.cli.root import settings_of
from shadowtutor.demo import generate, home, students
from shadowtutor.gate import criteria, evaluate
from shadowtutor.tables import row_id


@click.command("demo")
@click.option("--pairs", default=20_000, show_default=True, help="Pairs to generate.")
@click.option("--days", default=60, show_default=True, help="Days of history, ending now.")
@click.option("--seed", default=7, show_default=True, help="Same seed, same data.")
@click.option(
    "--serve/--no-serve",
    "serve_after",
    default=True,
    show_default=True,
    help="Start the dashboard.",
)
@click.option("--port", default=8501, show_default=True, help="Dashboard port.")
@click.pass_context
def demo_cmd(
    ctx: click.Context, pairs: int, days: int, seed: int, serve_after: bool, port: int
) -> None:
    """Fill an empty ShadowTutor home with demo data, then start the dashboard.

    Migrates the database, creates the demo accounts, writes PAIRS pairs over DAYS days to the
    log (closed days compacted to Parquet), queues and reviews a stratified sample, sets a
    monthly budget. When the log already holds data nothing is generated and the dashboard
    starts on what is there.
    """
    settings = settings_of(ctx)
    started = time.monotonic()

    def say(message: str) -> None:
        click.echo(f"[{time.monotonic() - started:5.1f} s] {message}")

    say("migrating the database and creating the demo accounts")
    db.upgrade(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        generate.ensure_accounts(session)
    shown = generate.DEMO_ACCOUNTS[:3]
    try:
        summary = generate.build(
            url=settings.db_url,
            log_dir=settings.log_path,
            pairs=pairs,
            days=days,
            seed=seed,
            progress=say,
        )
        home.mark(
            settings.home_path,
            [home.DemoAccount(role, user, password) for user, role, _, password in shown],
        )
        click.echo(
            f"demo data: {summary.pairs:,} pairs over {days} days in {summary.log_dir} "
            f"({summary.compacted_days} days compacted to Parquet), {summary.reviews} reviews, "
            f"monthly budget ${summary.budget_usd:,.0f}, "
            f"{summary.judged:,} pairs scored by the judge"
        )
        config = criteria.load_config(settings.gate_config or None)
        with db.session_scope(settings.db_url) as session:
            admin_id = row_id(users.require_user(session=session, username="admin"))
        lines = {}
        say(f"evaluating the deploy gate for {len(students.STUDENTS)} demo students")
        for student in reversed([s.name for s in students.STUDENTS]):  # llama's newest
            result = evaluate.evaluate(settings, config, actor_id=admin_id, student=student)
            decision = result.decision
            eligible = ", ".join(decision.eligible) if decision.eligible else "none"
            lines[student] = f"{criteria.label(decision.outcome)} (eligible: {eligible})"
        click.echo(f"deploy gate on the demo: {lines.pop(students.PRIMARY)}")
        click.echo("other students: " + "; ".join(f"{k} {v}" for k, v in reversed(lines.items())))
    except generate.DemoError as exc:
        click.echo(f"no demo data generated: {exc}")
    click.echo("demo accounts (username / password):")
    for username, role, _name, password in shown:
        click.echo(f"  {role:<9} {username} / {password}")
    if not serve_after:
        click.echo(f"dashboard not started (--no-serve): `shadowtutor app --port {port}` starts it")
        return
    from shadowtutor.cli.app import serve

    serve(settings, port)
