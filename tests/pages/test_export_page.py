"""The Export page in AppTest: an admin counts, exports and re-downloads; others are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from shadowtutor import db
from shadowtutor.config import Settings
from tests.support.apputil import app_as, make_user, switch
from tests.support.exportdata import add_many


def _seed(settings: Settings) -> None:
    reviewer = make_user(settings.db_url, "reviewer")
    with db.session_scope(settings.db_url) as s:
        add_many(s, reviewer, 40, conversations=12)


def test_admin_counts_exports_and_sees_history(migrated: Settings) -> None:
    _seed(migrated)
    at = switch(app_as(migrated.db_url, "admin").run(), "pages/export.py")
    assert not at.exception, at.exception
    assert at.metric[0].value == "40"
    languages = next(m for m in at.multiselect if m.label == "Languages")
    languages.set_value(["it"]).run()
    assert at.metric[0].value == "10"  # conversations 1, 5 and 9 of 12 are Italian
    languages.set_value([]).run()
    assert not at.dataframe or "No exports yet." in [i.value for i in at.info]
    at.button[0].click().run()  # Export
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "written to" in at.success[0].value
    folder = next(Path(migrated.export_path).iterdir())
    assert (folder / "manifest.json").is_file()
    labels = {b.label for b in at.get("download_button")}
    assert {"manifest.json", "sft_train.jsonl", "preference_train.jsonl", "pairs.csv",
            "README.md", "Modelfile"} <= labels  # fmt: skip
    history = at.dataframe[0].value
    assert list(history["created_by"]) == ["admin-user"] and list(history["examples"]) == [40]
    splits = at.dataframe[1].value
    assert splits["SFT examples"].sum() == 40


def test_bad_split_is_named(migrated: Settings) -> None:
    _seed(migrated)
    at = switch(app_as(migrated.db_url, "admin").run(), "pages/export.py")
    next(t for t in at.text_input if t.label == "Split train/val/test").set_value("80/20").run()
    assert "three shares like 80/10/10" in at.error[0].value


@pytest.mark.parametrize("role", ["manager", "reviewer"])
def test_manager_and_reviewer_are_refused(migrated: Settings, role: str) -> None:
    _seed(migrated)
    at = switch(app_as(migrated.db_url, role).run(), "pages/export.py")
    assert not at.exception
    assert any("may not open Export" in e.value for e in at.error)
    assert all(b.label != "Export" for b in at.button)
    assert not Path(migrated.export_path).exists()
