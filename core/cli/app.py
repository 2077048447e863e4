"""`shadowtutor app`: start the dashboard."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from core import db
from core.cli import main, settings_of
from core.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def serve(settings: Settings, port: int, host: str = "127.0.0.1") -> None:
    """Replace this process with the Streamlit server for app/main.py."""
    db.require_schema(settings.db_url)
    click.echo(f"ShadowTutor dashboard: http://{host}:{port}  (Ctrl+C stops it)", err=False)
    sys.stdout.flush()
    args = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "app" / "main.py"),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.showSidebarNavigation",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    os.chdir(ROOT)  # so .streamlit/config.toml (theme) applies
    os.execv(sys.executable, args)


@main.command("app")
@click.option("--port", default=8501, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.pass_context
def app_cmd(ctx: click.Context, port: int, host: str) -> None:
    """Start the dashboard (the database must be migrated: `shadowtutor db upgrade`)."""
    serve(settings_of(ctx), port, host)
