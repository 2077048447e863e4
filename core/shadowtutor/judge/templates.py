"""Versioned judge prompts. A template never changes once shipped: a new wording is a new
version, so every stored judge score names the exact prompt that produced it, and calibration
is always computed per version."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from shadowtutor.errors import ShadowTutorError


class JudgeTemplateError(ShadowTutorError, ValueError):
    """An unknown template version; the message lists the known ones."""


@dataclass(frozen=True)
class Template:
    version: str
    system: str
    user: str  # str.format with conversation, answer_a, answer_b

    def messages(self, conversation: str, answer_a: str, answer_b: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.system},
            {
                "role": "user",
                "content": self.user.format(
                    conversation=conversation, answer_a=answer_a, answer_b=answer_b
                ),
            },
        ]


_SYSTEM_V1 = (
    "You are a strict, fair grader of assistant answers. You compare two answers to the same "
    "conversation. Judge helpfulness, correctness, safety and tone; ignore length unless it "
    "hurts the answer; do not favour an answer for its position. Reply with JSON only."
)
_USER_V1 = """Conversation (the last user message is the one being answered):
<conversation>
{conversation}
</conversation>

<answer_a>
{answer_a}
</answer_a>

<answer_b>
{answer_b}
</answer_b>

Score each answer from 1 (useless or harmful) to 5 (excellent: what a careful expert would send),
and say which answer is better ("A", "B" or "tie").
Reply with exactly one JSON object: {{"score_a": <1-5>, "score_b": <1-5>, "better": "A|B|tie"}}"""

TEMPLATES: dict[str, Template] = {
    "pairwise-v1": Template("pairwise-v1", _SYSTEM_V1, _USER_V1),
}
DEFAULT_VERSION = "pairwise-v1"


def get(version: str | None = None) -> Template:
    version = version or DEFAULT_VERSION
    if version not in TEMPLATES:
        raise JudgeTemplateError(
            f"unknown judge template {version!r}; known: {', '.join(sorted(TEMPLATES))}"
        )
    return TEMPLATES[version]


@dataclass(frozen=True)
class Verdict:
    score_a: int
    score_b: int
    better: str  # A | B | tie


_OBJECT = re.compile(r"\{[^{}]*\}", re.S)


def parse(text: str) -> Verdict:
    """The verdict in a judge's reply (the first JSON object that has the three keys);
    ValueError when there is none or a score is outside 1..5."""
    for match in _OBJECT.finditer(text or ""):
        try:
            obj: Any = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or not {"score_a", "score_b"} <= obj.keys():
            continue
        try:
            a, b = int(obj["score_a"]), int(obj["score_b"])
        except (TypeError, ValueError):
            continue
        if not (1 <= a <= 5 and 1 <= b <= 5):
            raise ValueError(f"judge scores must be 1..5, got {a} and {b}")
        better = str(obj.get("better", "")).strip()
        better = {"a": "A", "b": "B"}.get(better.lower(), "tie" if better.lower() == "tie" else "")
        if not better:
            better = "A" if a > b else "B" if b > a else "tie"
        return Verdict(a, b, better)
    raise ValueError(f"no judge verdict in the reply: {text[:120]!r}")


def conversation_text(messages: list[dict[str, Any]]) -> str:
    lines = []
    for m in messages or []:
        content = m.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        lines.append(f"{m.get('role', 'user')}: {content or ''}")
    return "\n".join(lines)
