"""Untrusted values (from a model, a user or the log) placed into Streamlit's Markdown.

``st.caption``, ``st.markdown``, ``st.metric`` labels, ``help=`` tooltips, ``st.info`` and the
like render Markdown: an image there (``![](http://host/track.png)``) makes every viewer's
browser fetch it, a link invites a click, ``:red[...]`` restyles the page. :func:`md` makes a
value inert: every ASCII punctuation character is backslash-escaped (CommonMark renders each
escaped one literally) and line breaks become spaces, so the value shows as the text it is.
Prefer ``st.text`` / ``st.code`` / dataframes (which never render Markdown) where the layout
allows; use this where a value sits inside a Markdown sentence.
"""

from __future__ import annotations

import re
import string
from typing import Any

_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")


def md(value: Any) -> str:
    """``value`` as Markdown that renders as exactly its text (``None`` as an em dash)."""
    if value is None:
        return "—"
    text = " ".join(str(value).splitlines())
    return _PUNCTUATION.sub(r"\\\1", text)


# What opens a fetch, a link or a style in Streamlit's Markdown: images and links (``[``,
# ``]``), raw HTML and autolinks (``<``, ``>``), a bare URL or address (``://``, ``www.``,
# ``@``); a backslash first, so that a value's own backslash cannot undo the escapes.
_OPENERS = re.compile(r"([\\\[\]<>@])|(?<=\w)(:)(?=//)|(?<=www)(\.)", re.IGNORECASE)


def inert(message: Any) -> str:
    """A whole sentence that carries untrusted values (a library message, an exception's
    text) as Markdown that fetches, links and restyles nothing, while its own wording
    (backticks, colons, slashes, percentages) still reads as written. Prefer :func:`md` on
    the values where the page builds the sentence itself."""
    return _OPENERS.sub(lambda m: "\\" + (m.group(1) or m.group(2) or m.group(3)), str(message))
