"""Taking users' feedback: the proxy's ``POST /v1/feedback``, ``collector.feedback(...)``, the
implicit signals of :mod:`shadowtutor.collect.implicit` and ``shadowtutor feedback import``
all hand events to one :class:`FeedbackDesk`, which checks each
(:func:`shadowtutor.log.feedback.event`), drops a duplicate, writes the rest to the log's
feedback part and counts every outcome.

An event is acknowledged only once its line is written (in the kernel's page cache, like the
pairs' lines: it outlives a ``kill -9`` of the process). A write that fails (a full disk) is
answered as not stored (``write_failed``; the proxy answers 503, the app may send it again),
and the same event sent again is taken, never doubled: its id is remembered only once written.

Counters (``stats()``, on ``/healthz`` under ``collector.feedback`` and on ``/metrics``):
``accepted``, ``duplicate`` (an event with the id of one already taken, kept once),
``malformed`` (refused, with the reason in the answer and the last one in ``last_malformed``),
``unknown_id`` (taken, but this process did not answer that id recently: kept with
``matched: false``; the ``feedback`` view's join with ``pairs`` finds its pair if the log holds
one), ``write_failed``, ``untrusted`` (the proxy refused the caller), and ``by_kind``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from shadowtutor.collect.implicit import Conversations
from shadowtutor.log import feedback, schema
from shadowtutor.log.errors import LogWriteError
from shadowtutor.log.storage import LogDir
from shadowtutor.log.write import LogWriter

KNOWN_IDS = 50_000  # request ids this process answered, remembered for `matched` (~9 MB)
SEEN_EVENTS = 100_000  # event ids taken, remembered to tell a duplicate


@dataclass(frozen=True)
class Outcome:
    """What happened to one event: ``status`` is ``accepted``, ``duplicate``, ``malformed``
    or ``write_failed``; ``id`` the event's id (None when malformed); ``matched`` whether the
    request id was known; ``error`` why it was refused."""

    status: str
    id: str | None = None
    matched: bool | None = None
    error: str | None = None

    @property
    def stored(self) -> bool:
        """The event is in the log (now or before: a duplicate is stored once)."""
        return self.status in ("accepted", "duplicate")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status}
        if self.id is not None:
            out["id"] = self.id
        if self.matched is not None:
            out["matched"] = self.matched
        if self.error is not None:
            out["error"] = self.error
        return out


class _Lru:
    """A bounded insertion-ordered map (the oldest entries go first)."""

    def __init__(self, size: int):
        self.size = size
        self.items: OrderedDict[str, Any] = OrderedDict()

    def put(self, key: str, value: Any) -> None:
        self.items[key] = value
        self.items.move_to_end(key)
        if len(self.items) > self.size:
            self.items.popitem(last=False)

    def get(self, key: str) -> Any:
        return self.items.get(key)

    def __contains__(self, key: str) -> bool:
        return key in self.items


class FeedbackDesk:
    """Takes feedback events for one log (thread-safe); see the module docstring."""

    def __init__(
        self,
        log_dir: LogDir,
        *,
        regenerate_window_s: float = 0.0,
        abandon_after_s: float = 0.0,
        known_ids: int = KNOWN_IDS,
        seen: int = SEEN_EVENTS,
        clock: Any = time.monotonic,
    ):
        self.log_dir = log_dir
        self.conversations = Conversations(regenerate_window_s, abandon_after_s, clock)
        self._implicit: deque[Any] = deque()  # implicit events waiting for tick()
        self._writer: LogWriter | None = None
        self._known = _Lru(known_ids)  # request id -> True (answered here)
        self._seen = _Lru(seen)  # event ids written
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.by_kind: Counter[str] = Counter()
        self.last_malformed: str | None = None
        self.last_write_error: str | None = None

    def answered(self, request_id: str) -> None:
        """This process answered ``request_id`` (the request path calls it on every request)."""
        self._known.put(request_id, True)

    def request(
        self, request_id: str, conversation_id: str | None, messages: list[dict[str, Any]]
    ) -> None:
        """A request began (the request path): its id is known from now on, and its
        conversation followed for implicit signals (written later, by :meth:`tick`)."""
        self._known.put(request_id, True)
        if conversation_id and self.conversations.enabled:
            text = schema.prompt_text(messages)
            self._implicit.extend(self.conversations.request(conversation_id, text, request_id))

    def tick(self) -> list[Outcome]:
        """Write the implicit events found since the last tick, and the conversations that
        were abandoned (the collector's background thread calls it every second, and
        ``flush``)."""
        if self.conversations.due():
            self._implicit.extend(self.conversations.expired())
        events = []
        while self._implicit:
            events.append(self._implicit.popleft())
        return self.take(events, source="implicit") if events else []

    def remember(self, event_ids: set[str]) -> None:
        """Events already in the log (an import): sent again, they are duplicates."""
        with self._lock:
            for eid in event_ids:
                self._seen.put(eid, True)

    def knows(self, request_id: str) -> bool:
        return request_id in self._known

    @property
    def writer(self) -> LogWriter:
        if self._writer is None:
            self._writer = LogWriter(self.log_dir, part=feedback.PART)
        return self._writer

    def take(
        self, events: list[Any], *, source: str = "app", matched: bool | None = None
    ) -> list[Outcome]:
        """Check, deduplicate, write and count ``events``; one :class:`Outcome` each, in
        order. ``matched`` given (an import that checked the log) overrides this process's
        memory of the ids it answered."""
        outcomes: list[Outcome | None] = []
        fresh: list[dict[str, Any]] = []
        with self._lock:
            batch: set[str] = set()
            for obj in events:
                try:
                    rid = obj.get("request_id") if isinstance(obj, dict) else None
                    known = (
                        matched
                        if matched is not None
                        else (isinstance(rid, str) and rid in self._known)
                    )
                    rec = feedback.event(obj, source=source, matched=known)
                except feedback.FeedbackError as exc:
                    self.counts["malformed"] += 1
                    self.last_malformed = str(exc)
                    outcomes.append(Outcome("malformed", error=str(exc)))
                    continue
                if rec["id"] in self._seen or rec["id"] in batch:
                    self.counts["duplicate"] += 1
                    outcomes.append(Outcome("duplicate", rec["id"], rec["matched"]))
                    continue
                batch.add(rec["id"])
                fresh.append(rec)
                outcomes.append(None)
            written = self._write(fresh)
            results = iter(fresh)
            out: list[Outcome] = []
            for outcome in outcomes:
                if outcome is None:
                    rec = next(results)
                    outcome = self._written(rec) if written > 0 else self._failed(rec)
                    written -= 1
                out.append(outcome)
        return out

    def _written(self, rec: dict[str, Any]) -> Outcome:
        self._seen.put(rec["id"], True)
        self.counts["accepted"] += 1
        self.by_kind[rec["kind"]] += 1
        if not rec["matched"]:
            self.counts["unknown_id"] += 1
        return Outcome("accepted", rec["id"], rec["matched"])

    def _failed(self, rec: dict[str, Any]) -> Outcome:
        self.counts["write_failed"] += 1
        return Outcome("write_failed", rec["id"], error=self.last_write_error)

    def _write(self, recs: list[dict[str, Any]]) -> int:
        """How many of ``recs`` (from the start) the log took."""
        if not recs:
            return 0
        try:
            taken = self.writer.append_many(recs)
        except LogWriteError as exc:
            self.last_write_error = f"feedback not stored: {exc}"
            return exc.written
        except OSError as exc:
            self.last_write_error = f"feedback not stored: {exc}"
            return 0
        self.last_write_error = None
        return taken

    def refused(self, reason: str) -> None:
        """A body that holds no event at all (not JSON, an empty batch): counted as malformed."""
        with self._lock:
            self.counts["malformed"] += 1
            self.last_malformed = reason

    def untrusted(self) -> None:
        """The proxy refused a caller it does not trust (counted, never written)."""
        with self._lock:
            self.counts["untrusted"] += 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            out: dict[str, Any] = {
                k: self.counts.get(k, 0)
                for k in (
                    "accepted",
                    "duplicate",
                    "malformed",
                    "unknown_id",
                    "write_failed",
                    "untrusted",
                )
            }
            out["by_kind"] = dict(self.by_kind)
            out["implicit_pending"] = len(self._implicit)
            out["conversations"] = self.conversations.stats()
            out["last_malformed"] = self.last_malformed
            out["last_write_error"] = self.last_write_error
        return out

    def close(self) -> None:
        self.tick()
        self.conversations.close()
        if self._writer is not None:
            self._writer.close()
