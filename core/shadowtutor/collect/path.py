"""The one request path: decide -> serve -> hand-off, for the wrapper (sync and async) and the
proxy alike.

1. **decide**: :meth:`ShadowCollector.begin` routes the request (rollout stage, eligibility)
   and samples it; the result is a :class:`~shadowtutor.collect.job.Call`.
2. **serve**: routed to the student, :meth:`ShadowCollector.student_call` asks it (unless its
   breaker is open); its answer goes back shaped as the teacher's response, once
   :meth:`ShadowCollector.validate` let it through (the router's cascade: a validator sends a
   poor answer back). Otherwise, or when the student fails or is sent back, the teacher
   answers, and its answer (or error) goes back unchanged; a teacher stream is teed so the
   app reads it as it comes.
3. **hand-off**: for a shadowed request, :meth:`ShadowCollector.hand_off` queues the pair
   (the student's answer with a background teacher call, or the teacher's answer in whatever
   form the path has it: a response, stream chunks, raw bytes) for the collector's executor.

The walk is written once, in :meth:`RequestPath.walk`, as a generator that yields the I/O it
needs (:data:`STUDENT`, :data:`TEACHER`) and gets the results (or the teacher's exception)
back; :class:`SyncRequestPath` and :class:`AsyncRequestPath` run it and only say how the I/O
is done: blocking, or awaited (the student on a worker thread), which is the whole
difference between the sync and the async wrapper (the pattern of simonw/llm's
``_BaseConversation`` / ``Conversation`` / ``AsyncConversation``). A subclass says how to talk
to its teacher and how its answers look (:meth:`RequestPath.ask_teacher` and the shaping
hooks).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Generator
from typing import Any, Protocol

from shadowtutor.backends import Answer, StreamClock
from shadowtutor.collect.job import Call, Context
from shadowtutor.collect.openai_shape import ChatRequest

STUDENT = "student"  # the walk needs the student's answer (Answer or None)
TEACHER = "teacher"  # the walk needs the teacher's reply (or its exception)

Walk = Generator[str, Any, Any]


class Front(Protocol):
    """What the request path asks of the collector
    (:class:`~shadowtutor.collect.collector.ShadowCollector`)."""

    def begin(self, request: ChatRequest, context: Context, origin: Any = None) -> Call: ...

    def student_call(self, call: Call) -> Answer | None: ...

    def validate(self, call: Call, result: Answer) -> bool: ...

    def hand_off(self, call: Call, **answers: Any) -> None: ...

    def teacher_failed(self) -> None: ...

    def teacher_only(self, call: Call, reason: str) -> None: ...

    def unrecorded(self, style: str) -> None: ...

    def stream_abandoned(self) -> None: ...


class RequestPath:
    """All the logic of serving one request (see the module docstring); no I/O."""

    def __init__(self, collector: Front):
        self.collector = collector

    def walk(self, call: Call) -> Walk:
        """decide (done: ``call``) -> serve -> hand-off; returns what the caller gets."""
        c = self.collector
        if call.route.served_by == "student":
            result = yield STUDENT
            # in cascade mode the validator may send the answer back: the teacher answers
            if result is not None and c.validate(call, result):
                if call.shadowed:
                    teacher = self.background_teacher(call)
                    c.hand_off(call, student_result=result, teacher_call=teacher)
                return self.student_reply(call, result)
        clock = StreamClock()
        try:
            reply = yield TEACHER
        except BaseException:
            c.teacher_failed()  # the app gets the teacher's error exactly as without us
            raise
        if not call.shadowed:
            return self.teacher_reply(call, reply)
        if call.stream:
            return self.tee(call, reply, clock)
        latency_ms = clock.elapsed_ms()
        return self.teacher_reply_then(
            call,
            reply,
            lambda: c.hand_off(call, teacher_latency_ms=latency_ms, **self.teacher_answer(reply)),
        )

    # --- the end of a teed teacher stream (called by the subclasses' tees) ------------------
    def stream_done(
        self, call: Call, clock: StreamClock, end: float | None = None, **answer: Any
    ) -> None:
        """The teacher's stream ended complete (at ``end``, else now): hand the pair off."""
        self.collector.hand_off(
            call,
            teacher_latency_ms=clock.elapsed_ms(end),
            teacher_ttft_ms=clock.ttft_ms,
            **answer,
        )

    def stream_failed(self, exc: BaseException | None) -> None:
        """The teacher's stream broke (``exc``), or the app stopped reading it (None)."""
        if exc is not None:
            self.collector.teacher_failed()
        else:
            self.collector.stream_abandoned()

    # --- what a subclass says: its teacher and its shapes ---------------------------------------
    def ask_teacher(self, call: Call) -> Any:
        """The teacher's reply to ``call`` (a coroutine in an async path); raises the
        teacher's error as the app must see it."""
        raise NotImplementedError

    def background_teacher(self, call: Call) -> Callable[[], Answer]:
        """A blocking teacher call for a worker thread, when the student served the user."""
        raise NotImplementedError

    def student_reply(self, call: Call, result: Answer) -> Any:
        """The student's answer shaped as the teacher's response."""
        raise NotImplementedError

    def teacher_reply(self, call: Call, reply: Any) -> Any:
        """What the caller gets for the teacher's (complete) reply."""
        return reply

    def teacher_reply_then(self, call: Call, reply: Any, hand_off: Callable[[], None]) -> Any:
        """:meth:`teacher_reply` of a shadowed call, with its ``hand_off``: here at once; the
        proxy runs it once the answer is sent, so the companion's work never starts while
        the app still waits for its bytes."""
        hand_off()
        return self.teacher_reply(call, reply)

    def teacher_answer(self, reply: Any) -> dict[str, Any]:
        """The teacher's complete reply as Job fields (``teacher_obj=``, ``teacher_raw=``)."""
        raise NotImplementedError

    def tee(self, call: Call, reply: Any, clock: StreamClock) -> Any:
        """The teacher's stream, passed to the caller as it comes; it ends with
        :meth:`stream_done` or :meth:`stream_failed`."""
        raise NotImplementedError


class _Steps:
    """Runs a walk: iterating gives the I/O steps it asks for; after each, ``result(value)``
    or ``failed(exc)`` says how the I/O went; at the end ``value`` is what the walk returned.
    (Both paths iterate it; only how they do the I/O differs.)"""

    __slots__ = ("_walk", "_send", "_arg", "value")

    def __init__(self, walk: Walk):
        self._walk = walk
        self._send: Callable[[Any], str] = walk.send
        self._arg: Any = None
        self.value: Any = None

    def __iter__(self) -> _Steps:
        return self

    def __next__(self) -> str:
        try:
            return self._send(self._arg)  # the walk's own exceptions go to the caller
        except StopIteration as done:
            self.value = done.value
            raise

    def result(self, value: Any) -> None:
        self._send, self._arg = self._walk.send, value

    def failed(self, exc: BaseException) -> None:
        self._send, self._arg = self._walk.throw, exc


class SyncRequestPath(RequestPath):
    """Drives the walk with blocking I/O (the ``openai.OpenAI`` wrapper)."""

    def run(self, call: Call) -> Any:
        steps = _Steps(self.walk(call))
        for step in steps:
            try:
                io = self.collector.student_call if step == STUDENT else self.ask_teacher
                steps.result(io(call))
            except BaseException as exc:
                steps.failed(exc)
        return steps.value


class AsyncRequestPath(RequestPath):
    """Drives the walk with awaited I/O (the ``openai.AsyncOpenAI`` wrapper, the proxy); the
    blocking student call runs on a worker thread."""

    async def run(self, call: Call) -> Any:
        steps = _Steps(self.walk(call))
        for step in steps:
            try:
                if step == STUDENT:
                    steps.result(await asyncio.to_thread(self.collector.student_call, call))
                else:
                    steps.result(await self.ask_teacher(call))
            except BaseException as exc:
                steps.failed(exc)
        return steps.value


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and how long it took, in milliseconds (background teacher calls)."""
    start = time.perf_counter()
    out = fn()
    return out, (time.perf_counter() - start) * 1000
