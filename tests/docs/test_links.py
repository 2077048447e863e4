"""The README stays short, and every relative link in it, in the docs and in llms.txt leads to
a file (and a heading) that exists. `mkdocs build --strict` checks the site's own links too."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MARKDOWN = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)


def links(text: str) -> list[str]:
    """Relative link targets outside code blocks and inline code."""
    prose = re.sub(r"`[^`\n]*`", "", FENCE.sub("", text))
    return [t for t in LINK.findall(prose) if not re.match(r"[a-z]+:", t)]


def slug(heading: str) -> str:
    """The anchor mkdocs (Python-Markdown's toc) gives a heading."""
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    text = FENCE.sub("", path.read_text())
    return {slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, flags=re.M)}


def test_the_readme_reads_in_three_minutes() -> None:
    assert (ROOT / "README.md").stat().st_size <= 25 * 1024


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for target in links(page.read_text()):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor}")
    assert broken == [], f"{page.relative_to(ROOT)}: {broken}"


def test_llms_txt_links_every_page_of_the_nav() -> None:
    import yaml

    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]

    def pages(items: list) -> list[str]:
        out = []
        for item in items:
            for value in item.values():
                out += pages(value) if isinstance(value, list) else [value]
        return out

    def page_url(md: str) -> str:  # the address mkdocs gives a page (directory URLs)
        url = re.sub(r"(^|/)index\.md$", r"\1", md).removesuffix(".md")
        return (url + "/" if url and not url.endswith("/") else url) or "./"

    listed = set(LINK.findall((DOCS / "llms.txt").read_text()))
    assert listed == {page_url(p) for p in pages(nav)}
    assert all((DOCS / p).is_file() for p in pages(nav))
