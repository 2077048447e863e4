"""Importing JSONL into the shadow log: our schema, OpenAI chat fine-tuning lines, or
Claude-style conversations (Anthropic's Messages format: ``{"system", "messages", "model"}``
with content blocks; :mod:`shadowtutor.log.claude`).

Good lines are kept, bad lines reported with their reason; ids already in the log (or earlier
in the same file) are skipped, so re-running an import never duplicates a record.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shadowtutor.log import claude, read, schema
from shadowtutor.log.errors import RecordError
from shadowtutor.log.read import BadLine
from shadowtutor.log.storage import LogDir
from shadowtutor.log.write import LogWriter


@dataclass
class ImportReport:
    imported: int = 0
    duplicates: int = 0
    bad: list[BadLine] = field(default_factory=list)


def import_file(
    path: Path,
    log_dir: LogDir,
    *,
    source: str | None = None,
    teacher_model: str | None = None,
    batch: int = 2000,
) -> ImportReport:
    """Import our schema or OpenAI chat JSONL. Good lines are kept, bad lines reported.

    Ids already in the log (or earlier in the same file) are skipped, so re-running an import
    never duplicates a record.
    """
    report = ImportReport()
    seen = read.known_ids(log_dir)
    pending: list[dict[str, Any]] = []
    with LogWriter(log_dir) as writer, open(path, "rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                rec = parse_line(raw)
            except RecordError as exc:
                report.bad.append(BadLine(str(path), line_no, str(exc)))
                continue
            except (ValueError, TypeError, OverflowError) as exc:  # never stop at one line
                report.bad.append(BadLine(str(path), line_no, f"cannot be read ({exc})"))
                continue
            if rec["id"] in seen:
                report.duplicates += 1
                continue
            if source:
                rec["source"] = source
            if teacher_model and rec["teacher"]["model"] == "unknown":
                rec["teacher"]["model"] = teacher_model
            # a raw conversation id (an e-mail, say) is never stored: pseudonymised like users
            rec["conversation_id"] = schema.pseudonymize_conversation(rec["conversation_id"])
            seen.add(rec["id"])
            pending.append(rec)
            if len(pending) >= batch:
                report.imported += writer.append_many(pending)
                pending.clear()
        report.imported += writer.append_many(pending)
    return report


def openai_id(messages: list[dict[str, Any]]) -> str:
    """The id of an OpenAI chat line: a hash of its messages, so the same line imported or
    replayed twice gets the same id."""
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:32]
    return f"oai-{digest}"


def from_openai_chat(obj: Any, *, line_no: int | None = None) -> dict[str, Any]:
    """Convert an OpenAI chat fine-tuning line ``{"messages": [...]}`` into a record.

    The last assistant message is the teacher's answer; the messages before it are the prompt.
    The id is a hash of the content, so importing the same line twice yields the same id.
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("messages"), list):
        raise RecordError("an OpenAI chat line must be an object with a 'messages' list")
    messages = schema.validate_messages(obj["messages"])
    last = messages[-1]
    if last.get("role") != "assistant" or not isinstance(last.get("content"), str):
        raise RecordError("the last message must be the assistant's (teacher's) answer")
    prompt = messages[:-1]
    if not prompt:
        raise RecordError("there is no prompt before the assistant's answer")
    extra = {k: v for k, v in obj.items() if k != "messages"}
    return schema.make_record(
        id=openai_id(messages),
        source="import",
        messages=prompt,
        teacher={"model": str(obj.get("model") or "unknown"), "response": last["content"]},
        metadata=extra if extra else {},
    )


def claude_id(obj: dict[str, Any]) -> str:
    """The id of a Claude-style line: a hash of its system prompt and messages."""
    content = {"system": obj.get("system"), "messages": obj.get("messages")}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:32]
    return f"claude-{digest}"


def from_claude(obj: Any) -> dict[str, Any]:
    """Convert a Claude-style conversation line (Messages format) into a record of protocol
    ``anthropic.messages``: the last assistant turn is the teacher's answer (its text and
    tool calls), the turns before it (and ``system``) the prompt, in the record's chat form."""
    if not isinstance(obj, dict) or not isinstance(obj.get("messages"), list):
        raise RecordError("a Claude-style line must be an object with a 'messages' list")
    turns = obj["messages"]
    if not turns or not isinstance(turns[-1], dict) or turns[-1].get("role") != "assistant":
        raise RecordError("the last message must be the assistant's (teacher's) answer")
    try:
        prompt = claude.chat_messages({"system": obj.get("system"), "messages": turns[:-1]})
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordError(f"the messages cannot be read: {exc}") from None
    if not any(m.get("role") != "system" for m in prompt):
        raise RecordError("there is no prompt before the assistant's answer")
    teacher = claude.answer_of(turns[-1]) | {"model": str(obj.get("model") or "unknown")}
    extra = {k: v for k, v in obj.items() if k not in ("messages", "system", "model")}
    return schema.make_record(
        id=claude_id(obj),
        source="import",
        messages=schema.validate_messages(prompt),
        teacher=teacher,
        metadata=extra,
        protocol="anthropic.messages",
    )


def parse_line(line: str | bytes) -> dict[str, Any]:
    """Parse one JSON line in our schema, OpenAI chat format or Claude's Messages format into
    a valid record."""
    obj = schema.loads(line)
    if isinstance(obj, dict) and "teacher" not in obj and ("messages" in obj or "system" in obj):
        if claude.is_claude(obj):
            return schema.validate(from_claude(obj))
        return from_openai_chat(obj)
    return schema.validate(obj)
