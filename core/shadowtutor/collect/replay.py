"""Replay past conversations through the student (``shadowtutor replay FILE``).

With students registered, every active registered student answers each line through the
collector's fan-out, as on live traffic (one record per student, the lead one the line's
primary record); with none, the settings' student (``SHADOWTUTOR_STUDENT_*``) does.

FILE is JSON lines in our log schema, OpenAI chat format (``{"messages": [...]}``) or Claude's
Messages format (``{"system": ..., "messages": [...]}`` with content blocks: read into the
record's chat form, recorded as protocol ``anthropic.messages``). For each
line the student answers the prompt; the teacher is called only when the line has no teacher
answer (an OpenAI line not ending with an assistant message, or one of our records whose
teacher has no ``response``). The pair is written to the shadow log with ``source: replay``
through the same pipeline as live traffic (cost, similarity, detection).

Resumable: every line has a stable id (our records keep theirs; OpenAI lines get a hash of
their messages), and ids already in the log are skipped, so an interrupted replay is finished
by running the same command again. When the student is down the circuit breaker opens and
the replay stops (nothing is written for the lines it could not try) with a message saying so.

A teacher call that fails (an error status, a timeout, a stream that ends without a finish
reason) is counted and shown (``teacher errors N``, exit status 1) and its line is not written,
so the next run retries it. ``max_tokens`` (default ``DEFAULT_MAX_TOKENS``) bounds the
teacher's and the student's answers. Ctrl-C stops within a second or two: the pairs already
finished are written, the lines still with a model are not, and the message says how to resume.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shadowtutor.backends import Backend, BackendError, student_backend, teacher_backend
from shadowtutor.backends.breaker import Breaker
from shadowtutor.collect import anthropic_shape, openai_shape, records, work
from shadowtutor.collect.collector import ShadowCollector
from shadowtutor.collect.job import Job
from shadowtutor.config import Settings
from shadowtutor.errors import ShadowTutorError, error_text
from shadowtutor.log import claude, ingest, read, schema
from shadowtutor.log.errors import RecordError
from shadowtutor.log.read import BadLine
from shadowtutor.students import registry


class ReplayError(ShadowTutorError):
    """The replay cannot go on; the message says why and how to resume."""


class ReplayInterrupted(ReplayError):
    """Ctrl-C: what was finished is written; ``report`` says how far it got."""

    def __init__(self, report: ReplayReport):
        self.report = report
        left = report.todo - report.replayed
        super().__init__(
            f"interrupted: {report.replayed} of {report.todo} lines were replayed and written, "
            f"{left} were not. Run the same command again to resume (lines already in the log "
            "are skipped)."
        )


@dataclass
class ReplayItem:
    id: str
    messages: list[dict[str, Any]]
    teacher: dict[str, Any] | None  # None: the teacher must be called
    record: dict[str, Any] | None = None  # our schema: the original record
    # what the request asked besides the messages (tools, tool_choice, response_format...),
    # sent again to the student (and to the teacher when it is called) in its own API's form
    features: dict[str, Any] = field(default_factory=dict)
    kind: str = "plain"


@dataclass
class ReplayReport:
    lines: int = 0
    already_logged: int = 0
    replayed: int = 0
    teacher_called: int = 0
    teacher_errors: int = 0  # teacher calls that failed: those lines are not written
    teacher_failures: list[tuple[str, str]] = field(default_factory=list)  # (id, reason)
    student_errors: int = 0
    student_timeouts: int = 0
    student_unsupported: int = 0  # the student's server refused the line's tools or schema
    todo: int = 0  # lines not in the log when the run started
    students: list[str] = field(default_factory=list)  # the registered students asked
    bad: list[BadLine] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


def parse_item(raw: str | bytes) -> ReplayItem:
    """One line of FILE as a replay item (RecordError with the reason when unusable)."""
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if isinstance(obj, dict) and "teacher" not in obj and "messages" in obj:
        if isinstance(obj["messages"], list) and claude.is_claude(obj):
            return _claude_item(obj)
        if not isinstance(obj["messages"], list):
            raise RecordError("'messages' must be a list of chat messages")
        messages = obj["messages"]
        # an OpenAI request or fine-tuning line: its tools / response_format as they are
        features = {k: obj[k] for k in openai_shape.FEATURES if obj.get(k) is not None}
        kind = openai_shape.request_kind(obj)
        if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant":
            rec = ingest.from_openai_chat(obj)
            return ReplayItem(rec["id"], rec["messages"], rec["teacher"], None, features, kind)
        if not messages:
            raise RecordError("'messages' is empty: there is no prompt to replay")
        model = obj.get("model")
        return ReplayItem(
            ingest.openai_id(messages),
            schema.validate_messages(messages),
            None,
            {"teacher": {"model": model}} if model else None,
            features,
            kind,
        )
    rec = schema.validate(obj)
    answered = rec["teacher"].get("response") is not None or rec["teacher"].get("tool_calls")
    request = rec.get("request") or {}
    return ReplayItem(
        rec["id"],
        rec["messages"],
        rec["teacher"] if answered else None,
        rec,
        dict(request.get("features") or {}),
        str(request.get("kind") or "plain"),
    )


def _claude_item(obj: dict[str, Any]) -> ReplayItem:
    """A Claude-style conversation line (Messages format): its prompt in the record's chat
    form, its tools as the student gets them; the teacher's answer its last assistant turn,
    else the teacher is asked."""
    turns = obj["messages"]
    origin = {"protocol": "anthropic.messages"}
    answered = bool(turns) and isinstance(turns[-1], dict) and turns[-1].get("role") == "assistant"
    if not turns:
        raise RecordError("'messages' is empty: there is no prompt to replay")
    try:
        asked = anthropic_shape.parse_request(
            {**obj, "messages": turns[:-1] if answered else turns}
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordError(f"the messages cannot be read: {exc}") from None
    if answered:
        rec = ingest.from_claude(obj)
        return ReplayItem(
            rec["id"], rec["messages"], rec["teacher"], origin, asked.features, asked.kind
        )
    model = obj.get("model")
    teacher = {"teacher": {"model": model}} if model else {}
    return ReplayItem(
        ingest.claude_id(obj),
        schema.validate_messages(asked.messages),
        None,
        origin | teacher,
        asked.features,
        asked.kind,
    )


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
            except RecordError as exc:
                bad.append(BadLine(str(path), line_no, str(exc)))
                continue
            if item.id not in seen:
                seen.add(item.id)
                items.append(item)
    return items, bad, lines


DEFAULT_MAX_TOKENS = 1024  # an answer longer than this is cut (a base model may never stop)
MAX_MAX_TOKENS = 131_072
STOP_GRACE_S = 1.0  # after Ctrl-C: how long finished pairs may take to reach the log


def _job(item: ReplayItem, max_tokens: int) -> Job:
    rec = item.record or {}
    job = Job(
        messages=item.messages,
        source="replay",
        id=item.id,
        ts=schema.parse_ts(rec["ts"]) if rec.get("ts") else None,
        user_hash=rec.get("user_hash"),
        conversation_id=rec.get("conversation_id"),
        category=rec.get("category"),
        language=rec.get("language"),
        metadata=dict(rec.get("metadata") or {}),
        options={"max_tokens": max_tokens},
        kind=item.kind,
        features=item.features,
        protocol=rec.get("protocol") or "openai.chat",
    )
    return job


def _features(item: ReplayItem) -> dict[str, Any]:
    """The keyword the backends take for a request's tools and response format."""
    return {"features": item.features} if item.features else {}


def _teacher_model(item: ReplayItem, settings: Settings, teacher_model: str | None) -> str:
    rec = item.record or {}
    return (rec.get("teacher") or {}).get("model") or teacher_model or settings.teacher_model


class _Run:
    """One replay's workers: each takes the next line, asks the teacher (when the line has no
    answer) and the student itself, and hands the finished pair to the collector, which only
    prices, scores and writes it. A teacher failure writes nothing (the next run retries the
    line); a student failure is written with its error, as in live traffic. ``stop`` ends the
    run at once: lines still with a model are dropped, not written, so a re-run asks again."""

    def __init__(
        self,
        todo: list[ReplayItem],
        settings: Settings,
        collector: ShadowCollector,
        teacher: Backend,
        student: Backend | None,  # None: the collector asks every registered student
        *,
        max_tokens: int,
        teacher_model: str | None,
    ):
        self.todo = todo
        self.settings = settings
        self.collector = collector
        self.teacher = teacher
        self.student = student
        self.max_tokens = max_tokens
        self.teacher_model = teacher_model
        self.breaker = Breaker(settings.breaker_failures, settings.breaker_cooldown_s)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.next = 0
        self.handed = 0  # lines handed to the collector (progress)
        self.teacher_called = 0
        self.teacher_errors: list[tuple[str, str]] = []  # (line id, reason)
        self.student_errors = 0
        self.student_timeouts = 0
        self.student_unsupported = 0  # lines whose tools / schema / images the student refused
        self.student_stopped: str | None = None  # the breaker opened: why
        self.last_student_error = ""

    def take(self) -> ReplayItem | None:
        with self.lock:
            if self.stop.is_set() or self.next >= len(self.todo):
                return None
            item = self.todo[self.next]
            self.next += 1
            return item

    def work(self) -> None:
        while (item := self.take()) is not None:
            try:
                self.one(item)
            except Exception as exc:  # never let one line kill a worker; it is retried
                with self.lock:
                    self.teacher_errors.append((item.id, f"replay: {error_text(exc)}"))

    def one(self, item: ReplayItem) -> None:
        job = _job(item, self.max_tokens)
        if item.teacher is not None:
            job.teacher = {k: v for k, v in item.teacher.items() if v is not None}
            if self.teacher_model and job.teacher.get("model") in (None, "", "unknown"):
                job.teacher["model"] = self.teacher_model  # an export that never named it
        else:
            model = _teacher_model(item, self.settings, self.teacher_model)
            with self.lock:
                self.teacher_called += 1
            try:
                result = self.teacher.chat(
                    item.messages, model=model, max_tokens=self.max_tokens, **_features(item)
                )
            except Exception as exc:  # a 500, a timeout, a stream without a finish reason
                with self.lock:
                    self.teacher_errors.append((item.id, error_text(exc)))
                return
            job.teacher = records.work_fields(result)
            job.metadata["teacher_called"] = True
        if self.stop.is_set():
            return
        if self.student is None:  # the registered students: the collector's fan-out asks
            self.collector.submit(job, block=True)  # each one, as for live traffic
            return
        if not self.breaker.allow():
            with self.lock:
                self.student_stopped = self.student_stopped or "the circuit breaker is open"
            self.stop.set()
            return
        try:
            job.student_result = self.student.chat(
                item.messages, max_tokens=self.max_tokens, **_features(item)
            )
        except Exception as exc:
            missing = work.unsupported(exc, item.kind)
            if missing is not None:  # the server is up; it cannot do what the line asks
                self.breaker.success()
                with self.lock:
                    self.student_unsupported += 1
                job.student_error = f"unsupported: {missing} ({error_text(exc)})"
                self.collector.submit(job, block=True)
                return
            self.breaker.failure()
            with self.lock:
                self.student_errors += 1
                if isinstance(exc, BackendError) and exc.kind == "timeout":
                    self.student_timeouts += 1
                self.last_student_error = str(exc)
            job.student_error = error_text(exc)
        else:
            self.breaker.success()
        if self.stop.is_set():
            return  # interrupted while the student answered: asked again next run
        self.collector.submit(job, block=True)  # the collector only prices and writes: fast


def registered_students(settings: Settings) -> list[str]:
    """The active registered students (the live ones), or [] when none is registered or the
    database cannot be read (the settings' student then answers)."""
    url = settings.db_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return []
    try:
        specs = registry.active_specs(settings, live=True)
    except Exception:
        return []
    return [spec.name for spec in specs if spec.registered]


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
    max_tokens: int = DEFAULT_MAX_TOKENS,
) -> ReplayReport:
    """Replay FILE into the log; ``start(n)`` is told how many lines will be replayed and
    ``progress(k)`` as lines are handed to the log. ``teacher_model`` names the teacher of
    lines that do not (an OpenAI export has no ``model``), so they can be priced;
    ``max_tokens`` bounds every answer, the teacher's and the student's.

    Teacher failures are counted in ``teacher_errors`` and their lines are not written (the
    next run retries them). Ctrl-C (``KeyboardInterrupt``) stops within a second or two:
    finished pairs are written, lines still with a model are not, and
    :class:`ReplayInterrupted` (with the report) says how to resume."""
    if concurrency < 1:
        raise ReplayError("--concurrency must be at least 1")
    if not 1 <= max_tokens <= MAX_MAX_TOKENS:
        raise ReplayError(f"--max-tokens must be between 1 and {MAX_MAX_TOKENS}")
    report = ReplayReport()
    items, report.bad, report.lines = read_items(path)
    known = read.known_ids(settings.log_path)
    todo = [it for it in items if it.id not in known]
    report.already_logged = len(items) - len(todo)
    report.todo = len(todo)
    if start:
        start(len(todo))
    if not todo:
        return report
    teacher = teacher or teacher_backend(settings)
    report.students = registered_students(settings) if student is None else []
    if report.students:  # every active registered student answers, as on live traffic
        collector = ShadowCollector(
            settings,
            workers=concurrency,
            queue_size=concurrency * 2,
            sample_percent=100,
            record_breaker_skips=False,
            companion=False,
        )
    else:
        student = student or student_backend(settings)
        collector = ShadowCollector(
            settings,
            student=student,
            workers=1,
            queue_size=concurrency * 2,
            sample_percent=100,
            record_breaker_skips=False,
        )
    run = _Run(
        todo,
        settings,
        collector,
        teacher,
        student,
        max_tokens=max_tokens,
        teacher_model=teacher_model,
    )
    workers = [
        threading.Thread(target=run.work, name=f"replay-{i}", daemon=True)
        for i in range(concurrency)
    ]
    interrupted = False
    try:
        for w in workers:
            w.start()
        shown = 0
        while any(w.is_alive() for w in workers):
            for w in workers:
                w.join(timeout=0.1)
            done = collector.stats()["enqueued"]
            if progress and done > shown:
                progress(done - shown)
                shown = done
    except KeyboardInterrupt:
        interrupted = True
        run.stop.set()  # workers take no new line; answers still on their way are dropped
    finally:
        collector.close(timeout=STOP_GRACE_S if interrupted else None)
        report.stats = collector.stats()
    report.replayed = report.stats["logged"]
    report.teacher_called = run.teacher_called
    report.teacher_errors = len(run.teacher_errors)
    report.teacher_failures = list(run.teacher_errors)
    report.student_errors = run.student_errors
    report.student_timeouts = run.student_timeouts
    report.student_unsupported = run.student_unsupported
    if report.students:  # a record per student: count the lines, and the students' errors
        report.replayed = len({it.id for it in todo} & read.known_ids(settings.log_path))
        report.student_errors = report.stats.get("student_errors", 0)
        report.student_timeouts = report.stats.get("student_timeouts", 0)
        report.student_unsupported = report.stats.get("student_unsupported", 0)
    if interrupted:
        raise ReplayInterrupted(report)
    if run.student_stopped:
        raise ReplayError(
            f"stopped: the student failed {settings.breaker_failures} times in a row "
            f"(student: {run.last_student_error}); {report.replayed} of {len(todo)} lines were "
            "replayed. Fix the student, then run the same command again to resume."
        )
    if report.stats["unwritten"] or report.stats["lost"]:
        raise ReplayError(
            f"the log at {settings.log_path} could not be written ({report.stats['last_error']}); "
            "fix the folder and run the same command again to resume"
        )
    return report
