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


def test_preview_counts_what_will_be_written_duplicates_included(migrated: Settings) -> None:
    from tests.support.exportdata import add_pair

    reviewer = make_user(migrated.db_url, "reviewer")
    with db.session_scope(migrated.db_url) as s:
        add_many(s, reviewer, 20, conversations=6)
        for i in range(5):  # the same question and answer as p00000, five more times
            add_pair(s, reviewer, f"dup{i}", question="question p00000?",
                     teacher="teacher answer p00000.", conversation_id="conv-0")  # fmt: skip
    at = switch(app_as(migrated.db_url, "admin").run(), "pages/export.py")
    assert not at.exception, at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Matching reviewed pairs"] == "25"
    assert shown["Examples it will write"] == "20"
    assert "5 duplicate" in " ".join(c.value for c in at.caption)
    at.button[0].click().run()  # Export: the preview was right
    folder = next(Path(migrated.export_path).iterdir())
    import json

    counts = json.loads((folder / "manifest.json").read_text())["counts"]
    assert counts["examples"] == 20 and counts["dropped"]["duplicate"] == 5
    split_text = " / ".join(str(counts["per_split"][s]) for s in ("train", "val", "test"))
    assert shown["Train / val / test"] == split_text
    success = at.success[0].value
    assert "written to exports/" in success and str(migrated.home_path) not in success
    history = at.dataframe[0].value
    assert list(history["folder"]) == [f"exports/{folder.name}"]


def test_the_split_check_and_the_kinds_are_shown_from_the_exports_counts(
    migrated: Settings,
) -> None:
    from tests.support.exportdata import add_pair

    reviewer = make_user(migrated.db_url, "reviewer")
    with db.session_scope(migrated.db_url) as s:
        add_many(s, reviewer, 200)
        add_pair(
            s, reviewer, "tools-1", question="Book Rome", teacher="",
            request={"kind": "tools", "tools": ["book"]},
            teacher_calls=[{"name": "book", "arguments": "{}"}],
        )  # fmt: skip
    at = switch(app_as(migrated.db_url, "admin").run(), "pages/export.py")
    assert not at.exception, at.exception
    captions = " ".join(c.value for c in at.caption)
    assert "Split 80.1 / 10.0 / 10.0 % (asked 80 / 10 / 10 %, within one point)" in captions
    assert "0 groups moved to train for it; left: 0" in captions
    assert "200 plain chat, 1 tool calls (with their tools)" in captions
    assert "1 tool-call examples without their tool definitions" in captions
