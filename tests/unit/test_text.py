"""Untrusted values are inert in Streamlit's Markdown."""

from __future__ import annotations

import re

import pytest

from shadowtutor.app.text import inert, md


@pytest.mark.parametrize(
    "value",
    [
        "![](http://tracker.example/t.png)",
        "<img src='http://tracker.example/t.png'>",
        "[click](http://tracker.example)",
        ":red[alarm] :material/warning:",
        "$x^2$ **bold** _it_ `code`",
        "line one\n# heading",
        "back\\slash",
    ],
)
def test_markdown_syntax_is_escaped(value: str) -> None:
    escaped = md(value)
    # every punctuation character is preceded by a backslash: nothing can open a construct
    assert not re.search(r"(?<!\\)[!\[\]()<>:$*_`#]", escaped.replace("\\\\", ""))
    assert "\n" not in escaped
    assert re.sub(r"\\(.)", r"\1", escaped) == " ".join(value.splitlines())


def test_plain_text_and_none() -> None:
    assert md("greeting") == "greeting"
    assert md(0.5) == "0\\.5"
    assert md(None) == "—"


@pytest.mark.parametrize(
    "value",
    [
        "gpt ![](http://tracker.example/t.png)",
        "<img src='http://tracker.example/t.png'>",
        "[click](http://tracker.example)",
        "see http://tracker.example or www.tracker.example or a@tracker.example",
        "back\\[slash](http://tracker.example)",
    ],
)
def test_inert_sentences_open_no_image_link_or_html(value: str) -> None:
    """Issue 27 item 2: a library message carrying a logged value goes through inert()."""
    escaped = inert(f"Spend unknown: {value}. Run `shadowtutor replay`, 80/10/10.")
    assert not re.search(r"(?<!\\)[\[\]<>@]", escaped.replace("\\\\", ""))
    assert "://" not in escaped.replace("\\://", "") and "www." not in escaped
    assert escaped.startswith("Spend unknown: ") and "`shadowtutor replay`, 80/10/10." in escaped
