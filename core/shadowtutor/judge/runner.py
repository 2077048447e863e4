"""The background judge: scores sampled pairs with an LLM, off the request path.

Each pair is judged twice, once with the teacher's answer first and once with the student's
first; the two verdicts are averaged, which cancels the judge's preference for a position, and
a pair whose preferred answer flips between the orders is marked inconsistent (the judge is
unsure). Every call's latency, tokens, cost and error are stored with the pair's row in
``judge_score`` and counted in the run's report; a failure never stops the run.

Pairs come from the shadow log (never the playground): the pairs in the review queue first
(they are what calibration compares with your reviewers), then a stable sample of the others.
Nothing here runs inside the collector, the proxy or a page: ``shadowtutor judge run`` (once,
or ``--every`` seconds) or :class:`BackgroundJudge` (a thread you start yourself).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
from sqlmodel import Session, col, select

from shadowtutor import db
from shadowtutor.backends import clients
from shadowtutor.config import Settings
from shadowtutor.cost import pricing
from shadowtutor.errors import ShadowTutorError
from shadowtutor.judge import scores, templates
from shadowtutor.log import read
from shadowtutor.tables import JudgeScore, ReviewItem, as_utc

log = logging.getLogger("shadowtutor.judge")
JUDGE_BACKENDS = ("teacher", "student", "openai", "ollama")


class JudgeConfigError(ShadowTutorError, ValueError):
    """The judge cannot be reached as configured; the message names the setting to fix."""


def judge_backend(settings: Settings, *, timeout: float = 120.0) -> clients.Backend:
    """The judge model: the teacher's or the student's client, or its own server."""
    kind = settings.judge_backend
    if kind == "teacher":
        backend: clients.Backend = clients.teacher_backend(settings, timeout=timeout)
    elif kind == "student":
        backend = clients.student_backend(settings, timeout=timeout)
    elif kind in ("openai", "ollama"):
        if not settings.judge_base_url or not settings.judge_model:
            raise JudgeConfigError(
                f"SHADOWTUTOR_JUDGE_BACKEND={kind} needs SHADOWTUTOR_JUDGE_BASE_URL and "
                "SHADOWTUTOR_JUDGE_MODEL"
            )
        if kind == "openai":
            backend = clients.OpenAIBackend(
                base_url=settings.judge_base_url,
                api_key=settings.judge_api_key or "none",
                model=settings.judge_model,
                timeout=timeout,
                provider="openai-compatible",
            )
        else:
            backend = clients.OllamaBackend(
                base_url=settings.judge_base_url, model=settings.judge_model, timeout=timeout
            )
    else:
        raise JudgeConfigError(
            f"SHADOWTUTOR_JUDGE_BACKEND={kind!r} is not a judge backend; use one of "
            + ", ".join(JUDGE_BACKENDS)
        )
    if settings.judge_model:
        backend.model = settings.judge_model
    return backend


@dataclass(frozen=True)
class Pair:
    pair_id: str
    ts: datetime | None
    category: str | None
    language: str | None
    messages: list[dict[str, Any]]
    teacher: str
    student: str


def _stable_share(pair_id: str) -> float:
    return int(hashlib.sha256(f"judge:{pair_id}".encode()).hexdigest()[:8], 16) / 0x1_0000_0000


def candidate_pairs(
    settings: Settings,
    session: Session,
    *,
    model: str,
    version: str,
    days: float = 30.0,
    sample_percent: float = 100.0,
    limit: int = 100,
    now: datetime | None = None,
) -> list[Pair]:
    """Pairs of the last ``days`` not yet judged by this model and template: queued ones
    first, then the others of a stable ``sample_percent`` sample, oldest first."""
    now = now or datetime.now(UTC)
    done = set(
        session.exec(
            select(JudgeScore.pair_id).where(
                JudgeScore.template_version == version, JudgeScore.model == model
            )
        )
    )
    queued = set(session.exec(select(ReviewItem.pair_id)))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    read.create_views(con, settings.log_path)
    start = (now - timedelta(days=days)).astimezone(UTC).replace(tzinfo=None)
    rows = con.execute(
        """SELECT id, ts, category, language, messages, teacher_response, student_response
           FROM pairs
           WHERE ts >= $start AND coalesce(source, '') <> 'playground'
             AND teacher_response IS NOT NULL AND student_response IS NOT NULL
             AND student_error IS NULL
           ORDER BY ts""",
        {"start": start},
    ).fetchall()
    picked: list[Pair] = []
    later: list[Pair] = []
    for pid, ts, category, language, messages, teacher, student in rows:
        if pid in done:
            continue
        if isinstance(messages, str):  # the log stores messages as JSON text
            messages = json.loads(messages)
        pair = Pair(pid, as_utc(ts), category, language, list(messages or []), teacher, student)
        if pid in queued:
            picked.append(pair)
        elif _stable_share(pid) * 100 < sample_percent:
            later.append(pair)
    return (picked + later)[: max(0, limit)]


@dataclass
class RunReport:
    pairs: int = 0  # pairs judged (both orders answered)
    calls: int = 0
    failures: int = 0  # calls that failed (error, timeout or an unreadable verdict)
    failed_pairs: int = 0
    cost_usd: float = 0.0  # of the priced calls
    unpriced_calls: int = 0  # answered calls of a model the price table does not know
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"judged {self.pairs} pairs with {self.calls} calls ({self.failures} failed, "
            f"{self.failed_pairs} pairs without a score), "
            + scores.cost_text(self.cost_usd, self.unpriced_calls, unit="calls")
        )


# JSON output where the server offers it: OpenAI's JSON mode; the Ollama backend sends it
# as Ollama's `format: "json"`. The verdict is then one JSON object, nothing around it.
JSON_OUTPUT: dict[str, Any] = {"response_format": {"type": "json_object"}}
_PLAIN_ONLY: weakref.WeakSet[clients.Backend] = weakref.WeakSet()  # servers that refused it


def ask(backend: clients.Backend, messages: list[dict[str, Any]]) -> clients.Answer:
    """One judge call, asking for JSON output; a server that refuses JSON mode (HTTP 400) is
    asked again without it, and this backend is not asked for JSON again."""
    if backend not in _PLAIN_ONLY:
        try:
            return backend.chat(messages, temperature=0.0, max_tokens=200, features=JSON_OUTPUT)
        except clients.BackendHTTPError as exc:
            if exc.status != 400:
                raise
            _PLAIN_ONLY.add(backend)
            log.warning("the judge's server refused JSON mode (%s); asking without it", exc)
    return backend.chat(messages, temperature=0.0, max_tokens=200)


def judge_pair(
    backend: clients.Backend,
    pair: Pair,
    template: templates.Template,
    prices: pricing.PriceTable,
) -> JudgeScore:
    """Both orders of one pair, as a (not yet saved) row."""
    conversation = templates.conversation_text(pair.messages)
    calls: list[dict[str, Any]] = []
    verdicts: dict[str, templates.Verdict] = {}
    for order, (a, b) in (
        ("teacher_first", (pair.teacher, pair.student)),
        ("student_first", (pair.student, pair.teacher)),
    ):
        call: dict[str, Any] = {"order": order}
        try:
            result = ask(backend, template.messages(conversation, a, b))
            # chat() raises on a failure, so its answer is a complete one
            assert result.text is not None and result.latency_ms is not None
            call.update(
                latency_ms=round(result.latency_ms, 1),
                prompt_tokens=result.prompt_tokens,
                completion_tokens=result.completion_tokens,
                cost_usd=prices.cost(
                    result.model or backend.model, result.prompt_tokens, result.completion_tokens
                ),
            )
            verdict = templates.parse(result.text)
            verdicts[order] = verdict
            call.update(score_a=verdict.score_a, score_b=verdict.score_b, better=verdict.better)
        except (clients.BackendError, ValueError) as exc:
            call["error"] = str(exc)[:300]
            log.warning("judge call failed for pair %s (%s): %s", pair.pair_id, order, exc)
        calls.append(call)
    costs = [c["cost_usd"] for c in calls if c.get("cost_usd") is not None]
    row = JudgeScore(
        pair_id=pair.pair_id,
        template_version=template.version,
        model=backend.model,
        category=pair.category,
        language=pair.language,
        pair_ts=pair.ts,
        calls=calls,
        cost_usd=sum(costs) if costs else None,
    )
    if len(verdicts) < 2:
        row.error = "; ".join(c["error"] for c in calls if "error" in c)
        return row
    tf, sf = verdicts["teacher_first"], verdicts["student_first"]
    row.teacher_score = (tf.score_a + sf.score_b) / 2
    row.student_score = (tf.score_b + sf.score_a) / 2
    # Preferred answer per order, in terms of who wrote it.
    first = {"A": "teacher", "B": "student", "tie": "tie"}[tf.better]
    second = {"A": "student", "B": "teacher", "tie": "tie"}[sf.better]
    row.consistent = first == second
    row.preferred = first if first == second else None
    return row


def run(
    settings: Settings,
    *,
    limit: int = 100,
    days: float = 30.0,
    sample_percent: float = 100.0,
    version: str | None = None,
    backend: clients.Backend | None = None,
    now: datetime | None = None,
) -> RunReport:
    """Judge up to ``limit`` pairs not judged yet (by this model and template) and store
    their rows; failed pairs are stored too (with their error) and retried by ``--retry``."""
    template = templates.get(version)
    backend = backend or judge_backend(settings)
    prices = pricing.load_table(settings.price_table)
    report = RunReport()
    with db.session_scope(settings.db_url) as session:
        pairs = candidate_pairs(
            settings,
            session,
            model=backend.model,
            version=template.version,
            days=days,
            sample_percent=sample_percent,
            limit=limit,
            now=now,
        )
    for pair in pairs:
        row = judge_pair(backend, pair, template, prices)
        report.calls += len(row.calls)
        report.failures += sum("error" in c for c in row.calls)
        report.cost_usd += row.cost_usd or 0.0
        report.unpriced_calls += sum(
            "error" not in c and c.get("cost_usd") is None for c in row.calls
        )
        if row.error:
            report.failed_pairs += 1
            if len(report.errors) < 5:
                report.errors.append(f"{pair.pair_id}: {row.error[:160]}")
        else:
            report.pairs += 1
        with db.session_scope(settings.db_url) as session:
            session.add(row)
    log.info("judge run: %s", report.line())
    return report


def retry_failed(settings: Settings, *, version: str | None = None) -> int:
    """Forget failed judgements (rows without scores) so the next run tries them again."""
    template = templates.get(version)
    with db.session_scope(settings.db_url) as session:
        rows = session.exec(
            select(JudgeScore).where(
                JudgeScore.template_version == template.version,
                col(JudgeScore.student_score).is_(None),
            )
        ).all()
        for row in rows:
            session.delete(row)
        return len(rows)


class BackgroundJudge(threading.Thread):
    """Runs :func:`run` every ``every_s`` seconds until :meth:`stop` (a daemon thread, for a
    worker process of your own; the collector and the proxy never start one)."""

    def __init__(self, settings: Settings, *, every_s: float = 600.0, **run_args: Any):
        super().__init__(name="shadowtutor-judge", daemon=True)
        self.settings, self.every_s, self.run_args = settings, every_s, run_args
        self.reports: list[RunReport] = []
        self._stop_event = threading.Event()

    def run(self) -> None:  # noqa: D102 (threading.Thread API)
        while not self._stop_event.is_set():
            try:
                self.reports.append(run(self.settings, **self.run_args))
            except ShadowTutorError as exc:
                log.error("judge run failed: %s", exc)
            self._stop_event.wait(self.every_s)

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stop_event.set()
        self.join(timeout)
