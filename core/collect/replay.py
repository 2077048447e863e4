"""Replay past conversations through the student (``shadowtutor replay FILE``).

FILE is JSON lines in our log schema or OpenAI chat format (``{"messages": [...]}``). For each
line the student answers the prompt; the teacher is called only when the line has no teacher
answer (an OpenAI line not ending with an assistant message, or one of our records whose
teacher has no ``response``). The pair is written to the shadow log with ``source: replay``
through the same pipeline as live traffic (cost, similarity, detection).

Resumable: every line has a stable id (our records keep theirs; OpenAI lines get a hash of
their messages), and ids already in the log are skipped, so an interrupted replay is finished
by running the same command again. When the student is down the circuit breaker opens and
the replay stops (nothing is written for the lines it could not try) with a message saying so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shadowtutor.backends import Backend, teacher_backend
from shadowtutor.collect.collector import Job, ShadowCollector
from shadowtutor.config import Settings
from shadowtutor.errors import ShadowTutorError
from shadowtutor.log import record as logrecord
from shadowtutor.log import store as logstore
from shadowtutor.log.store import BadLine


class ReplayError(ShadowTutorError):
    """The replay cannot go on; the message says why and how to resume."""


@dataclass
class ReplayItem:
    id: str
    messages: list[dict[str, Any]]
    teacher: dict[str, Any] | None  # None: the teacher must be called
    record: dict[str, Any] | None = None  # our schema: the original record


@dataclass
class ReplayReport:
    lines: int = 0
    already_logged: int = 0
    replayed: int = 0
    teacher_called: int = 0
    bad: list[BadLine] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def parse_item(raw: str | bytes) -> ReplayItem:
    """One line of FILE as a replay item (RecordError with the reason when unusable)."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise logrecord.RecordError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if isinstance(obj, dict) and "teacher" not in obj and "messages" in obj:
        if not isinstance(obj["messages"], list):
            raise logrecord.RecordError("'messages' must be a list of chat messages")
        messages = obj["messages"]
        if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant":
            rec = logrecord.from_openai_chat(obj)
            return ReplayItem(rec["id"], rec["messages"], rec["teacher"])
        if not messages:
            raise logrecord.RecordError("'messages' is empty: there is no prompt to replay")
        model = obj.get("model")
        return ReplayItem(
            logrecord.openai_id(messages),
            logrecord.validate_messages(messages),
            None,
            {"teacher": {"model": model}} if model else None,
        )
    rec = logrecord.validate(obj)
    teacher = rec["teacher"] if rec["teacher"].get("response") is not None else None
    return ReplayItem(rec["id"], rec["messages"], teacher, rec)


def read_items(path: Path) -> tuple[list[ReplayItem], list[BadLine], int]:
    """(items, bad lines, lines read); duplicates within the file are kept once."""
    items: list[ReplayItem] = []
    bad: list[BadLine] = []
    seen: set[str] = set()
    lines = 0
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise ReplayError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        for line_no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            lines += 1
            try:
                item = parse_item(raw)
            except logrecord.RecordError as exc:
                bad.append(BadLine(str(path), line_no, str(exc)))
                continue
            if item.id not in seen:
                seen.add(item.id)
                items.append(item)
    return items, bad, lines


def _job(
    item: ReplayItem, teacher: Backend, settings: Settings, teacher_model: str | None = None
) -> Job:
    rec = item.record or {}
    job = Job(
        messages=item.messages,
        source="replay",
        id=item.id,
        ts=logrecord.parse_ts(rec["ts"]) if rec.get("ts") else None,
        user_hash=rec.get("user_hash"),
        conversation_id=rec.get("conversation_id"),
        category=rec.get("category"),
        language=rec.get("language"),
        metadata=dict(rec.get("metadata") or {}),
    )
    if item.teacher is not None:
        job.teacher = {k: v for k, v in item.teacher.items() if v is not None}
        if teacher_model and job.teacher.get("model") in (None, "", "unknown"):
            job.teacher["model"] = teacher_model  # an export that never named its model
    else:
        model = (rec.get("teacher") or {}).get("model") or teacher_model or settings.teacher_model
        job.teacher_call = lambda: teacher.chat(item.messages, model=model)
        job.metadata["teacher_called"] = True
    return job


def replay(
    path: Path,
    settings: Settings,
    *,
    concurrency: int = 4,
    student: Backend | None = None,
    teacher: Backend | None = None,
    progress: Callable[[int], None] | None = None,
    start: Callable[[int], None] | None = None,
    teacher_model: str | None = None,
) -> ReplayReport:
    """Replay FILE into the log; ``start(n)`` is told how many lines will be replayed and
    ``progress(1)`` is called as each is handed to the workers. ``teacher_model`` names the
    teacher of lines that do not (an OpenAI export has no ``model``), so they can be priced."""
    if concurrency < 1:
        raise ReplayError("--concurrency must be at least 1")
    report = ReplayReport()
    items, report.bad, report.lines = read_items(path)
    known = logstore.known_ids(settings.log_path)
    todo = [it for it in items if it.id not in known]
    report.already_logged = len(items) - len(todo)
    if start:
        start(len(todo))
    if not todo:
        return report
    teacher = teacher or teacher_backend(settings)
    collector = ShadowCollector(
        settings,
        student=student,
        workers=concurrency,
        queue_size=concurrency * 2,
        sample_percent=100,
        record_breaker_skips=False,
    )
    stopped = None
    try:
        for item in todo:
            if collector.breaker.state == "open":
                stopped = "student"
                break
            collector.submit(_job(item, teacher, settings, teacher_model), block=True)
            report.teacher_called += item.teacher is None
            if progress:
                progress(1)
    finally:
        collector.close(timeout=None)
        report.stats = collector.stats()
    report.replayed = report.stats["logged"]
    if stopped or report.stats["breaker_skipped"]:
        raise ReplayError(
            f"stopped: the student failed {settings.breaker_failures} times in a row "
            f"({report.stats['last_error']}); {report.replayed} of {len(todo)} lines were "
            "replayed. Fix the student, then run the same command again to resume."
        )
    if report.stats["unwritten"] or report.stats["lost"]:
        raise ReplayError(
            f"the log at {settings.log_path} could not be written ({report.stats['last_error']}); "
            "fix the folder and run the same command again to resume"
        )
    return report
