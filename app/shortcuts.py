"""Keyboard shortcuts that click widgets on the page (a tiny ``st.components.v2`` component).

Why not ``streamlit-shortcuts`` from PyPI: its listener fires while the user types in a text
field, so typing "3" or "a" in a review note would set the score or approve the pair. This
one ignores keys typed into text inputs, text areas and selects (Escape leaves the field), and
also handles Shift+digit by key position, so it works with any keyboard layout's digits.

The JavaScript is fixed code; the only data passed is the map of keys to CSS selectors built
here from widget keys, never model output.
"""

from __future__ import annotations

import streamlit as st

_JS = """
export default function(component) {
  window.__stShortcutMap = component.data || {};
  if (window.__stShortcutsOn) return;
  window.__stShortcutsOn = true;
  document.addEventListener('keydown', (e) => {
    const t = e.target;
    const choice = ['radio', 'checkbox', 'button', 'submit', 'range'];
    const typing = t && (t.isContentEditable || ['TEXTAREA', 'SELECT'].includes(t.tagName)
      || (t.tagName === 'INPUT' && !choice.includes(t.type)));
    if (typing) {
      if (e.key === 'Escape') t.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    let name = e.key.toLowerCase();
    if (e.code.startsWith('Digit')) name = e.code.slice(5);
    else if (e.code.startsWith('Numpad') && /\\d$/.test(e.code)) name = e.code.slice(6);
    if (e.shiftKey) name = 'shift+' + name;
    const target = (window.__stShortcutMap || {})[name];
    if (!target) return;
    const el = document.querySelectorAll(target[0])[target[1]];
    if (el) { e.preventDefault(); el.click(); }
  });
}
"""

_component = st.components.v2.component("shadowtutor.shortcuts", js=_JS)


def button(widget_key: str) -> tuple[str, int]:
    """Target: the button of ``st.button(..., key=widget_key)``."""
    return (f".st-key-{widget_key} button", 0)


def option(widget_key: str, index: int) -> tuple[str, int]:
    """Target: option ``index`` of ``st.radio(..., key=widget_key)``."""
    return (f'.st-key-{widget_key} label[data-testid="stRadioOption"]', index)


def bind(shortcuts: dict[str, tuple[str, int]], *, key: str = "shortcuts") -> None:
    """Make keys click targets, e.g. ``{"a": button("approve"), "1": option("score", 0)}``.
    Key names: a lower-case letter, a digit, or ``shift+<digit>``."""
    _component(key=key, data={k: list(v) for k, v in shortcuts.items()}, height=0)
