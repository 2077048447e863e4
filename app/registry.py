"""Every page of the app, who may open it, and where it sits in the menu.

The router shows each role only its pages; each page also checks the role itself on every
run (``auth.guard``), so typing a page's address is refused on the server, not just hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import shadowtutor.pages

PAGES_DIR = Path(shadowtutor.pages.__file__).resolve().parent

ADMIN, REVIEWER, MANAGER = "admin", "reviewer", "manager"
EVERYONE = (ADMIN, REVIEWER, MANAGER)


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
        "review", "review.py", "Review", ":material/rate_review:", (ADMIN, REVIEWER), "Review"
    ),
    PageSpec(
        "review-queue",
        "review_admin.py",
        "Review queue",
        ":material/playlist_add:",
        (ADMIN,),
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
        "playground",
        "playground.py",
        "Playground",
        ":material/chat:",
        (ADMIN, REVIEWER),
        "Try",
    ),
    PageSpec("export", "export.py", "Export", ":material/dataset:", (ADMIN,), "Export"),
]


def page(key: str) -> PageSpec:
    for spec in PAGES:
        if spec.key == key:
            return spec
    raise KeyError(f"no page {key!r} in app/registry.py")


def pages_for(role: str | None) -> list[PageSpec]:
    return [p for p in PAGES if role in p.roles]
