"""The Playground: try prompts live against the student, optionally with the teacher beside it.

A :class:`Chat` is plain data (model, system prompt, temperature, max tokens, turns). Each
:func:`run_turn` sends the system prompt, the earlier turns (the user's messages and the
*student's* answers: it is a conversation with the student) and the new prompt to the student,
streaming, and, when asked, the same messages to the teacher at the same time. Both stream in
worker threads; ``on_text(who, text_so_far)`` is called from the calling thread as pieces
arrive, so a page can update a placeholder. Failures never raise: they land in the answer's
``error`` with a message naming the fix, and a failed turn is left out of later history.

Figures per answer: time to first token, total latency, and tokens per second measured as the
decode rate after the first token: ``(completion_tokens - 1) / (latency - ttft)`` (falls back to
``completion_tokens / latency`` for one-token answers). Token counts come from the server, else
are estimated (``usage_estimated``).

:func:`build_record` turns a turn into a shadow log record (source ``playground``) and
:func:`save_pair` writes it and, if asked, puts it in the review queue.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shadowtutor import detect
from shadowtutor.accounts import permissions
from shadowtutor.backends import (
    Answer,
    Backend,
    BackendError,
    teacher_api_key,
    teacher_backend,
)
from shadowtutor.collect import records
from shadowtutor.config import Settings
from shadowtutor.cost import pricing
from shadowtutor.errors import ShadowTutorError
from shadowtutor.log import schema
from shadowtutor.log.write import LogWriter
from shadowtutor.review import workflow
from shadowtutor.similarity import SimilarityMethod, compare, get_method

TEACHER_NOT_ASKED = "not asked: Playground turn without the teacher"
REVIEW_STRATEGY = "manual"


class PlaygroundError(ShadowTutorError):
    """A Playground action that cannot be done (the message says why)."""


@dataclass
class Turn:
    """One prompt with the messages actually sent and the answers."""

    prompt: str
    messages: list[dict[str, Any]]
    student: Answer
    teacher: Answer | None = None
    similarity: float | None = None
    similarity_method: str | None = None
    similarity_error: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    ts: str = field(default_factory=lambda: schema.format_ts(schema.utc_now()))
    saved_id: str | None = None
    queued: bool = False


@dataclass
class Chat:
    """A Playground conversation with the student (plain data, kept in the page's session)."""

    model: str
    system_prompt: str = ""
    temperature: float = 0.7
    max_tokens: int = 512
    turns: list[Turn] = field(default_factory=list)
    conversation_id: str = field(default_factory=schema.new_id)

    def history(self) -> list[dict[str, Any]]:
        """System prompt and the earlier successful turns (user, student's answer)."""
        messages: list[dict[str, Any]] = []
        if self.system_prompt.strip():
            messages.append({"role": "system", "content": self.system_prompt})
        for turn in self.turns:
            if turn.student.error is None:
                messages.append({"role": "user", "content": turn.prompt})
                messages.append({"role": "assistant", "content": turn.student.text or ""})
        return messages

    def clear(self) -> None:
        """Forget the turns and start a new conversation id (settings stay)."""
        self.turns = []
        self.conversation_id = schema.new_id()


def teacher_problem(settings: Settings) -> str | None:
    """Why the teacher cannot be asked (no API key), or None."""
    if teacher_api_key(settings):
        return None
    return (
        "the teacher needs an API key: set SHADOWTUTOR_TEACHER_API_KEY (or OPENAI_API_KEY) "
        "and restart, or turn 'Teacher beside' off"
    )


def _failed(backend: Backend, model: str, exc: Exception) -> Answer:
    kind = getattr(exc, "kind", "error")
    text = str(exc) if isinstance(exc, ShadowTutorError) else f"unexpected failure: {exc!r}"
    return Answer(model=model, provider=backend.provider, error=text, error_kind=kind)


# (who, piece of text, None) while a model streams, then (who, None, its Answer)
_Piece = tuple[str, str, None] | tuple[str, None, Answer]


def _produce(
    who: str,
    backend: Backend,
    model: str,
    chat: Chat,
    messages: list[dict[str, Any]],
    out: queue.Queue[_Piece],
) -> None:
    """Stream one model into ``out`` as (who, piece, None) and finally (who, None, Answer)."""
    try:
        result = None
        for chunk in backend.stream_chat(
            messages, model=model, temperature=chat.temperature, max_tokens=chat.max_tokens
        ):
            if chunk.text:
                out.put((who, chunk.text, None))
            result = chunk.result or result
        if result is None:
            raise BackendError(f"{backend.describe()} ended the answer without a result")
        out.put((who, None, result))
    except Exception as exc:  # every failure is reported in the turn, never raised
        out.put((who, None, _failed(backend, model, exc)))


def run_turn(
    chat: Chat,
    prompt: str,
    *,
    student: Backend,
    teacher: Backend | None = None,
    teacher_error: str | None = None,
    similarity: SimilarityMethod | None = None,
    prices: pricing.PriceTable | None = None,
    on_text: Callable[[str, str], None] | None = None,
    settings: Settings | None = None,
) -> Turn:
    """Ask the student (and the teacher, if given) and append the finished turn to ``chat``.

    ``teacher_error`` records why the teacher was wanted but could not be asked (no key)."""
    prompt = prompt.strip()
    if not prompt:
        raise PlaygroundError("type a message first")
    messages = chat.history() + [{"role": "user", "content": prompt}]
    prices = prices or pricing.load_table(settings.price_table if settings else "")
    out: queue.Queue[_Piece] = queue.Queue()
    jobs = {"student": (student, chat.model)}
    if teacher is not None:
        jobs["teacher"] = (teacher, teacher.model)
    for who, (backend, model) in jobs.items():
        threading.Thread(
            target=_produce, args=(who, backend, model, chat, messages, out), daemon=True
        ).start()
    texts = dict.fromkeys(jobs, "")
    answers: dict[str, Answer] = {}
    while len(answers) < len(jobs):
        who, piece, answer = out.get()
        if answer is not None:
            answers[who] = answer
            continue
        assert piece is not None  # see _Piece: no answer yet, so a piece of text
        texts[who] += piece
        if on_text is not None:
            on_text(who, texts[who])
    turn = Turn(
        prompt=prompt,
        messages=messages,
        student=answers["student"],
        teacher=answers.get("teacher"),
        temperature=chat.temperature,
        max_tokens=chat.max_tokens,
    )
    if turn.teacher is None and teacher_error:
        turn.teacher = Answer(
            model=settings.teacher_model if settings else "teacher",
            provider="openai",
            error=teacher_error,
            error_kind="no_key",
        )
    _price(turn, prices, settings)
    _score(turn, similarity)
    chat.turns.append(turn)
    return turn


def _price(turn: Turn, prices: pricing.PriceTable, settings: Settings | None) -> None:
    """Teacher cost from the price table; the student costs $0 a request when
    :func:`shadowtutor.cost.pricing.student_is_free` says so (the collector's rule)."""
    monthly = settings.student_monthly_cost_usd if settings else 0.0
    for who, ans in (("teacher", turn.teacher), ("student", turn.student)):
        if ans is None or ans.error is not None:
            continue
        free = who == "student" and pricing.student_is_free(
            ans.provider, ans.model, prices, monthly
        )
        ans.cost_usd = (
            0.0 if free else prices.cost(ans.model, ans.prompt_tokens, ans.completion_tokens)
        )
        ans.price_version = prices.version if ans.cost_usd is not None else None


def _score(turn: Turn, method: SimilarityMethod | None) -> None:
    if method is None or turn.teacher is None:
        return
    # An embedding server may be down: the turn is still good, the error is kept.
    found = compare(method, turn.teacher.text, turn.student.text)
    turn.similarity_method, turn.similarity = found.method, found.score
    turn.similarity_error = found.error


def ask(
    chat: Chat,
    prompt: str,
    *,
    settings: Settings,
    student: Backend,
    with_teacher: bool,
    on_text: Callable[[str, str], None] | None = None,
) -> Turn:
    """:func:`run_turn` with the teacher, similarity and prices taken from settings."""
    teacher = problem = None
    similarity = None
    if with_teacher:
        problem = teacher_problem(settings)
        teacher = None if problem else teacher_backend(settings, timeout=60.0)
        try:
            similarity = get_method(settings)
        except ShadowTutorError:
            similarity = SimilarityMethod()  # a bad setting must not lose the turn: lexical
    return run_turn(
        chat,
        prompt,
        student=student,
        teacher=teacher,
        teacher_error=problem,
        similarity=similarity,
        prices=pricing.load_table(settings.price_table),
        on_text=on_text,
        settings=settings,
    )


# --- saving ------------------------------------------------------------------------------------


def build_record(
    chat: Chat, index: int, *, username: str | None, teacher_model: str
) -> dict[str, Any]:
    """The shadow log record (source ``playground``) of turn ``index``."""
    try:
        turn = chat.turns[index]
    except IndexError:
        raise PlaygroundError(f"there is no turn {index + 1} in this conversation") from None
    teacher = (
        records.answer_fields(turn.teacher, digits=1)
        if turn.teacher is not None
        else {"model": teacher_model, "provider": "openai", "error": TEACHER_NOT_ASKED}
    )
    metadata: dict[str, Any] = {
        "playground": {
            "turn": index + 1,
            "temperature": turn.temperature,
            "max_tokens": turn.max_tokens,
        },
        "detected": ["language", "category"],
    }
    estimated = [
        who
        for who, a in (("teacher", turn.teacher), ("student", turn.student))
        if a and a.usage_estimated
    ]
    if estimated:
        metadata["usage_estimated"] = estimated
    if turn.similarity_error:
        metadata["similarity_error"] = turn.similarity_error
    unpriced = [
        who
        for who, a in (("teacher", turn.teacher), ("student", turn.student))
        if a is not None and a.error is None and a.cost_usd is None
    ]
    if unpriced:  # as the collector marks them: the Cost page counts these as unknown
        metadata["cost_unknown"] = unpriced
    return schema.make_record(
        ts=schema.parse_ts(turn.ts),
        source="playground",
        messages=turn.messages,
        teacher=teacher,
        student=records.answer_fields(turn.student, digits=1),
        user_hash=schema.pseudonymize(username),
        conversation_id=chat.conversation_id,
        category=detect.detect_category(turn.prompt),
        language=detect.detect_language(turn.prompt),
        similarity={"method": turn.similarity_method, "score": turn.similarity},
        routing={"served_by": "student", "stage": None, "bucket": None, "eligible": None},
        metadata=metadata,
    )


def unsavable(turn: Turn) -> str | None:
    """Why a turn cannot be saved as a pair (None when it can): the student must have
    answered (a turn without the teacher is saved with the teacher marked not asked)."""
    if turn.student.error is not None:  # its error is shown with the answer, not repeated
        return "the student did not answer"
    return None


@dataclass
class SaveResult:
    pair_id: str
    queued: bool
    already_queued: bool = False


def save_pair(
    chat: Chat,
    index: int,
    *,
    session: Any,
    actor_id: permissions.Actor,
    log_dir: Any,
    teacher_model: str,
    queue: bool = False,
    required_reviews: int = 1,
) -> SaveResult:
    """Write turn ``index`` to the shadow log as ``actor_id`` (``playground.save``: the
    account is checked in the database ``session``); with ``queue``, also put it in the
    review queue.

    Saving the same turn again writes nothing new and returns the same pair id."""
    who = permissions.require(session, actor_id, "playground.save")
    turn = chat.turns[index] if 0 <= index < len(chat.turns) else None
    if turn is None:
        raise PlaygroundError(f"there is no turn {index + 1} in this conversation")
    if (why := unsavable(turn)) is not None:
        raise PlaygroundError(
            f"turn {index + 1} cannot be saved as a pair: {why}. Fix the student and ask again."
        )
    record = build_record(chat, index, username=who.username, teacher_model=teacher_model)
    if turn.saved_id:
        record["id"] = turn.saved_id
    else:
        record = schema.validate(record)
        with LogWriter(log_dir) as writer:
            writer.append(record)
        turn.saved_id = record["id"]
    result = SaveResult(pair_id=record["id"], queued=turn.queued)
    if queue and not turn.queued:
        added = workflow.enqueue_records(
            session=session,
            records=[record],
            strategy=REVIEW_STRATEGY,
            required_reviews=required_reviews,
            enqueued_by=who,
            action="playground.save",
        )
        turn.queued = True
        result.queued = True
        result.already_queued = added.added == 0
    return result
