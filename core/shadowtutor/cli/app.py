"""`shadowtutor app`: start the dashboard."""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path
from typing import Any

import click

import shadowtutor.app
from shadowtutor import db
from shadowtutor.cli.root import settings_of
from shadowtutor.config import Settings

APP_DIR = Path(shadowtutor.app.__file__).resolve().parent


def streamlit_config_file() -> Path:
    """The app's Streamlit config (theme, server): packaged in the wheel as the app's ``theme``
    folder, and ``.streamlit/config.toml`` in a source checkout."""
    for candidate in (
        APP_DIR / "theme" / "config.toml",
        APP_DIR.parent / ".streamlit" / "config.toml",
    ):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("the app's Streamlit config.toml is missing from the installation")


def config_flags(path: Path) -> list[str]:
    """``--section.option=value`` flags for every option of a Streamlit config file, so the
    theme applies wherever the command is run from (Streamlit itself only reads the
    ``.streamlit/`` folder of the current directory, which stays free for the user's secrets)."""
    flags: list[str] = []
    for section, options in tomllib.loads(path.read_text()).items():
        for name, value in options.items():
            flags.append(f"--{section}.{name}={_flag_value(value)}")
    return flags


def _flag_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def serve(settings: Settings, port: int, host: str = "127.0.0.1") -> None:
    """Replace this process with the Streamlit server for the app's entry point."""
    db.require_schema(settings.db_url)
    click.echo(f"ShadowTutor dashboard: http://{host}:{port}  (Ctrl+C stops it)", err=False)
    sys.stdout.flush()
    args = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_DIR / "server.py"),  # st.App: main.py plus the session cookie routes
        *config_flags(streamlit_config_file()),
        f"--server.port={port}",
        f"--server.address={host}",
    ]
    os.execv(sys.executable, args)


@click.command("app")
@click.option("--port", default=8501, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.pass_context
def app_cmd(ctx: click.Context, port: int, host: str) -> None:
    """Start the dashboard (the database must be migrated: `shadowtutor db upgrade`)."""
    serve(settings_of(ctx), port, host)
