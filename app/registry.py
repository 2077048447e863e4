"""Every page of the app, who may open it, and where it sits in the menu.

The router shows each role only its pages; each page also checks the role itself on every
run (``auth.guard``), so typing a page's address is refused on the server, not just hidden.
A page that exists to do one action is open to the roles that
``shadowtutor.accounts.permissions`` allows that action, so the menu and the library's
checks read the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import shadowtutor.pages
from shadowtutor.accounts.permissions import ADMIN, MANAGER, ROLES, roles_for

PAGES_DIR = Path(shadowtutor.pages.__file__).resolve().parent

EVERYONE = ROLES


@dataclass(frozen=True)
class PageSpec:
    key: str  # also the URL path: /<key>
    file: str  # in the pages package (pages/ in the repository)
    title: str
    icon: str
    roles: tuple[str, ...]
    section: str = "Overview"

    @property
    def path(self) -> Path:
        return PAGES_DIR / self.file


PAGES: list[PageSpec] = [
    PageSpec("home", "home.py", "Home", ":material/home:", EVERYONE),
    PageSpec("cost", "cost.py", "Cost", ":material/payments:", (ADMIN, MANAGER), "Watch"),
    PageSpec("quality", "quality.py", "Quality & latency", ":material/speed:", EVERYONE, "Watch"),
    PageSpec(
        "review",
        "review.py",
        "Review",
        ":material/rate_review:",
        roles_for("review.submit"),
        "Review",
    ),
    PageSpec(
        "review-queue",
        "review_admin.py",
        "Review queue",
        ":material/playlist_add:",
        roles_for("review.enqueue"),
        "Review",
    ),
    PageSpec(
        "review-progress",
        "review_progress.py",
        "Review progress",
        ":material/monitoring:",
        EVERYONE,
        "Review",
    ),
    PageSpec("readiness", "readiness.py", "Readiness", ":material/flag:", EVERYONE, "Decide"),
    PageSpec(
        "leaderboard", "leaderboard.py", "Leaderboard", ":material/leaderboard:", EVERYONE, "Decide"
    ),
    PageSpec(
        "students",
        "students.py",
        "Students",
        ":material/school:",
        roles_for("students.manage"),
        "Decide",
    ),
    PageSpec(
        "playground",
        "playground.py",
        "Playground",
        ":material/chat:",
        roles_for("playground.save"),
        "Try",
    ),
    PageSpec(
        "export", "export.py", "Export", ":material/dataset:", roles_for("export.run"), "Export"
    ),
]


def page(key: str) -> PageSpec:
    for spec in PAGES:
        if spec.key == key:
            return spec
    raise KeyError(f"no page {key!r} in app/registry.py")


def pages_for(role: str | None) -> list[PageSpec]:
    return [p for p in PAGES if role in p.roles]


def _page_name(path: str, base_url_path: str) -> str:
    parts = [p for p in path.split("/") if p]
    prefix = [p for p in base_url_path.split("/") if p]
    if parts[: len(prefix)] == prefix:
        parts = parts[len(prefix) :]
    return "/".join(parts)


def unknown_page(path: str, base_url_path: str = "") -> str | None:
    """The page name of an address that names no page (the router shows Home instead), or
    None: ``/cots`` gives ``cots``; ``/`` and ``/cost`` give None. ``base_url_path`` is
    Streamlit's ``server.baseUrlPath`` (the app served under a prefix)."""
    name = _page_name(path, base_url_path)
    return name if name and name not in {spec.key for spec in PAGES} else None


def page_at(path: str, base_url_path: str = "") -> str | None:
    """The key of the page an address names (``/cost`` gives ``cost``), or None (``/``, an
    unknown name)."""
    name = _page_name(path, base_url_path)
    return name if name in {spec.key for spec in PAGES} else None
