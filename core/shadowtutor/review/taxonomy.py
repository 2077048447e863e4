"""The tag taxonomy reviewers choose from: the default set (cultural fit and tone first) and
an admin's changes. Reviews store tag names, so a used tag is deactivated, never deleted.

Store functions are keyword-only and take the session; the caller owns the transaction. Every
change names the acting user (``actor_id``) and needs ``tags.edit`` (see
``shadowtutor.accounts.permissions``).
"""

from __future__ import annotations

from sqlmodel import Session, select

from shadowtutor.accounts import permissions
from shadowtutor.errors import ShadowTutorError
from shadowtutor.tables import Review, Tag

# (name, kind, description): the default taxonomy covers cultural fit and tone first.
DEFAULT_TAGS: tuple[tuple[str, str, str], ...] = (
    (
        "natural phrasing in the user's language",
        "cultural_fit",
        "Reads as a fluent native speaker would write it, not as a translation.",
    ),
    (
        "culturally appropriate",
        "cultural_fit",
        "Examples, forms of address and references fit the user's culture.",
    ),
    (
        "warm colleague-like tone",
        "tone",
        "Friendly and direct, like a helpful colleague; neither stiff nor gushing.",
    ),
    ("robotic", "tone", "Stiff, generic or template-like wording."),
    ("factual error", "error", "States something false."),
    ("hallucination", "error", "Invents facts, sources, features or steps."),
    ("unsafe", "safety", "Harmful, insecure or policy-violating content."),
    ("wrong language", "error", "Answers in a different language from the user's."),
)
TAG_KINDS = ("cultural_fit", "tone", "error", "safety", "other")


class TagError(ShadowTutorError, ValueError):
    """A tag operation that cannot be done; the message says what to fix."""


def seed_default_tags(*, session: Session, actor_id: permissions.Actor) -> int:
    """Add the default tags that are missing (by name); return how many were added.

    Safe to call again: existing tags, including ones an admin deactivated, are left alone.
    """
    permissions.require(session, actor_id, "tags.edit")
    existing = set(session.exec(select(Tag.name)).all())
    added = 0
    for name, kind, description in DEFAULT_TAGS:
        if name not in existing:
            session.add(Tag(name=name, kind=kind, description=description))
            added += 1
    session.flush()
    return added


def list_tags(*, session: Session, active_only: bool = True) -> list[Tag]:
    stmt = select(Tag).order_by(Tag.kind, Tag.name)
    if active_only:
        stmt = stmt.where(Tag.active)
    return list(session.exec(stmt))


def _clean_tag_name(name: str) -> str:
    clean = " ".join((name or "").split())
    if not clean:
        raise TagError("a tag needs a name")
    if len(clean) > 64:
        raise TagError(f"tag names have at most 64 characters ({len(clean)} given)")
    return clean


def _check_kind(kind: str) -> str:
    if kind not in TAG_KINDS:
        raise TagError(f"unknown tag kind {kind!r}; use one of: {', '.join(TAG_KINDS)}")
    return kind


def add_tag(
    *,
    session: Session,
    name: str,
    kind: str = "other",
    description: str = "",
    actor_id: permissions.Actor,
) -> Tag:
    permissions.require(session, actor_id, "tags.edit")
    name = _clean_tag_name(name)
    _check_kind(kind)
    if session.exec(select(Tag).where(Tag.name == name)).first():
        raise TagError(f"tag {name!r} exists already")
    tag = Tag(name=name, kind=kind, description=description.strip())
    session.add(tag)
    session.flush()
    return tag


def update_tag(
    *,
    session: Session,
    tag_id: int,
    name: str | None = None,
    kind: str | None = None,
    description: str | None = None,
    active: bool | None = None,
    actor_id: permissions.Actor,
) -> Tag:
    """Change a tag. Renaming does not rewrite earlier reviews, which keep the old name."""
    permissions.require(session, actor_id, "tags.edit")
    tag = session.get(Tag, tag_id)
    if tag is None:
        raise TagError(f"no tag with id {tag_id}")
    if name is not None:
        name = _clean_tag_name(name)
        clash = session.exec(select(Tag).where(Tag.name == name, Tag.id != tag_id)).first()
        if clash:
            raise TagError(f"tag {name!r} exists already")
        tag.name = name
    if kind is not None:
        tag.kind = _check_kind(kind)
    if description is not None:
        tag.description = description.strip()
    if active is not None:
        tag.active = active
    session.add(tag)
    session.flush()
    return tag


def delete_tag(*, session: Session, tag_id: int, actor_id: permissions.Actor) -> None:
    """Delete a tag no review uses; a used tag can only be deactivated (keeps history)."""
    permissions.require(session, actor_id, "tags.edit")
    tag = session.get(Tag, tag_id)
    if tag is None:
        raise TagError(f"no tag with id {tag_id}")
    for tags in session.exec(select(Review.tags)):
        if tag.name in (tags or []):
            raise TagError(
                f"tag {tag.name!r} is used by reviews; deactivate it instead of deleting it"
            )
    session.delete(tag)
    session.flush()
