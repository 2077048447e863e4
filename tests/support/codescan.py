"""Reading the library's source for the house rules' tests (no import: the AST only)."""

from __future__ import annotations

import ast
from pathlib import Path

LIBRARY = Path(__file__).resolve().parents[2] / "core" / "shadowtutor"


def permission_checked() -> set[tuple[str, str]]:
    """(module, function) of every library function that calls ``permissions.require``
    (``shadowtutor.x.y``; the permission module itself left out): the writes."""
    found = set()
    for path in LIBRARY.rglob("*.py"):
        parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if module == "shadowtutor.accounts.permissions":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for call in ast.walk(node):
                f = getattr(call, "func", None)
                if (
                    isinstance(f, ast.Attribute)
                    and f.attr == "require"
                    and isinstance(f.value, ast.Name)
                    and f.value.id == "permissions"
                ):
                    found.add((module, node.name))
    return found
