"""House rules that keep the layers apart."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_streamlit() -> None:
    library = ROOT / "core" / "shadowtutor"
    offenders = [p for p in library.rglob("*.py") if "streamlit" in _imports(p)]
    assert offenders == []


def test_pages_never_render_html() -> None:
    offenders = [
        p.name for p in (ROOT / "pages").glob("*.py") if "unsafe_allow_html" in p.read_text()
    ]
    assert offenders == []


def test_every_registered_page_exists_and_guards_itself() -> None:
    from shadowtutor.app.registry import PAGES

    for spec in PAGES:
        source = (ROOT / spec.path).read_text()
        assert f'auth.guard("{spec.key}")' in source, f"{spec.path} must call auth.guard first"
