from __future__ import annotations

import re
from pathlib import Path

import pytest

from shadowtutor.config import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_give_the_embedded_setup(tmp_path: Path) -> None:
    s = Settings.load(env={"SHADOWTUTOR_HOME": str(tmp_path)})
    assert s.db_url == f"sqlite:///{tmp_path / 'shadowtutor.db'}"
    assert s.log_path == tmp_path / "logs"
    assert s.export_path == tmp_path / "exports"
    assert s.student_timeout_s == 10.0 and s.kill_switch is False


def test_database_url_switches_to_postgres() -> None:
    url = "postgresql+psycopg2://u:p@db:5432/st"
    assert Settings.load(env={"DATABASE_URL": url}).db_url == url


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"SHADOWTUTOR_SAMPLE_PERCENT": "25"}, "sample_percent", 25.0),
        ({"SHADOWTUTOR_QUEUE_SIZE": " 50 "}, "queue_size", 50),
        ({"SHADOWTUTOR_KILL_SWITCH": "yes"}, "kill_switch", True),
        ({"SHADOWTUTOR_KILL_SWITCH": "0"}, "kill_switch", False),
        (
            {"SHADOWTUTOR_ELIGIBLE_CATEGORIES": "greeting, casual"},
            "eligible",
            {"greeting", "casual"},
        ),
    ],
)
def test_values_are_converted(env: dict, field: str, value: object) -> None:
    assert getattr(Settings.load(env=env), field) == value


def test_environment_wins_over_secrets() -> None:
    s = Settings.load(
        env={"SHADOWTUTOR_TIMEZONE": "Europe/Rome"},
        secrets={"SHADOWTUTOR_TIMEZONE": "Asia/Jakarta", "SHADOWTUTOR_STUDENT_MODEL": "mistral"},
    )
    assert s.timezone == "Europe/Rome" and s.student_model == "mistral"


@pytest.mark.parametrize("raw", ["ten", "1.5.2", ""])
def test_bad_number_names_the_variable(raw: str) -> None:
    with pytest.raises(SettingsError, match="SHADOWTUTOR_QUEUE_SIZE"):
        Settings.load(env={"SHADOWTUTOR_QUEUE_SIZE": raw})


def test_every_setting_is_documented_in_the_docs() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    table = {m for m in re.findall(r"^\|\s*`([A-Z_]+)`\s*\|", page, flags=re.M)}
    names = {name for name, _default, _doc in Settings.documented()}
    assert names - table == set(), "settings missing from the docs' settings table"
    assert table - names == set(), "the docs list settings that do not exist"


def test_every_cli_command_is_documented_in_the_docs() -> None:
    from shadowtutor.cli import main

    page = (ROOT / "docs" / "reference" / "cli.md").read_text()
    missing = [name for name in main.commands if f"`shadowtutor {name}" not in page]
    assert missing == [], "CLI commands missing from the docs' command reference"
