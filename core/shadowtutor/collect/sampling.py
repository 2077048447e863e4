"""Which requests are shadowed: a stable share of conversations (or users), the same on every
machine and every turn."""

from __future__ import annotations

from typing import Any

from shadowtutor.gate import routing

SAMPLING_SALT = "shadow-sample"  # its own salt: who is sampled does not follow who is routed


def bucket(key: str) -> float:
    """Stable position 0..100 of a key (same key, same bucket, on every machine)."""
    return routing.bucket_of(key, SAMPLING_SALT)


def sampled(key: str | None, percent: float) -> bool:
    """Whether a conversation/user is shadowed at ``percent`` (0 none, 100 all)."""
    if percent >= 100:
        return True
    if percent <= 0:
        return False
    return bucket(key or "") < percent


def sampling_key(
    messages: list[dict[str, Any]], conversation_id: str | None, user: str | None
) -> str:
    """Conversation id, else user, else the conversation's first user message (which stays
    the same on every turn, so a conversation is sampled consistently)."""
    if conversation_id:
        return f"c:{conversation_id}"
    if user:
        return f"u:{user}"
    for msg in messages:
        if msg.get("role") == "user":
            return f"m:{msg.get('content')}"
    return ""
