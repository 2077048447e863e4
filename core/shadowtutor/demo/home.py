"""The mark a demo home carries, so the login page can name the demo accounts.

`shadowtutor demo` writes ``demo.json`` into the home folder once the demo data is in place;
the login page reads it back. Only a home the demo filled has it: a real installation never
shows a password on its login page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

MARKER = "demo.json"


@dataclass(frozen=True)
class DemoAccount:
    role: str
    username: str
    password: str


def mark(home: Path, accounts: list[DemoAccount]) -> Path:
    """Write the marker naming ``accounts`` into ``home``; return its path."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / MARKER
    rows = [{"role": a.role, "username": a.username, "password": a.password} for a in accounts]
    path.write_text(json.dumps({"accounts": rows}, indent=2) + "\n")
    return path


def accounts(home: Path) -> list[DemoAccount]:
    """The demo accounts named by the marker in ``home``; none for a home without a readable
    marker (a real installation, or a marker edited into something else)."""
    try:
        rows = json.loads((home / MARKER).read_text())["accounts"]
        return [DemoAccount(str(r["role"]), str(r["username"]), str(r["password"])) for r in rows]
    except (OSError, ValueError, KeyError, TypeError):
        return []
