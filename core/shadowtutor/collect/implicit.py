"""Implicit feedback read from the traffic itself, per conversation (the caller's
``conversation_id``: the wrapper's ``shadow={"conversation_id": ...}``, the proxy's
``X-ShadowTutor-Conversation`` header; requests without one are not followed):

* **regenerate**: the conversation sends the same last user message again within
  ``SHADOWTUTOR_REGENERATE_WINDOW_S`` seconds: the earlier answer was not what the user
  wanted. The event is recorded on the earlier answer's request id.
* **abandoned**: the conversation sends nothing more for ``SHADOWTUTOR_ABANDON_AFTER_S``
  seconds after an answer: the event is recorded on that last answer. Every conversation
  ends, so this marks the last answer of each: compare its rate between the student's and
  the teacher's answers, never read one event as a complaint.

:class:`Conversations` is pure bookkeeping (no I/O, a clock passed in); it returns the events
(as an app would send them) for the collector to hand to its
:class:`~shadowtutor.collect.feedback.FeedbackDesk` with ``source="implicit"``, off the
request path. At most ``limit`` conversations are followed: past it the quietest is
forgotten (counted in ``forgotten``, no event), as are those still open when the collector
closes (``open_at_close``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LIMIT = 100_000


@dataclass(slots=True)
class _Turn:
    text_hash: int
    request_id: str
    at: float


class Conversations:
    """Follows conversations for regenerates and abandonment (see the module docstring)."""

    def __init__(
        self,
        regenerate_window_s: float,
        abandon_after_s: float,
        clock: Callable[[], float],
        limit: int = LIMIT,
    ):
        self.regenerate_window_s = regenerate_window_s
        self.abandon_after_s = abandon_after_s
        self.clock = clock
        self.limit = limit
        self._turns: OrderedDict[str, _Turn] = OrderedDict()  # quietest first
        self._lock = threading.Lock()
        self.forgotten = 0
        self.open_at_close = 0

    @property
    def enabled(self) -> bool:
        return self.regenerate_window_s > 0 or self.abandon_after_s > 0

    def request(self, conversation_id: str, last_user_text: str, request_id: str) -> list[Any]:
        """A request of the conversation: the regenerate event it makes, if any."""
        now = self.clock()
        text_hash = hash(last_user_text)
        out = []
        with self._lock:
            before = self._turns.pop(conversation_id, None)
            if (
                before is not None
                and self.regenerate_window_s > 0
                and before.text_hash == text_hash
                and now - before.at <= self.regenerate_window_s
            ):
                out.append(_event(before.request_id, "regenerate", conversation_id))
            self._turns[conversation_id] = _Turn(text_hash, request_id, now)
            while len(self._turns) > self.limit:
                self._turns.popitem(last=False)
                self.forgotten += 1
        return out

    def due(self) -> bool:
        """Whether :meth:`expired` has anything to give (cheap: the quietest conversation)."""
        if self.abandon_after_s <= 0 or not self._turns:
            return False
        first = next(iter(self._turns.values()), None)
        return first is not None and self.clock() - first.at > self.abandon_after_s

    def expired(self) -> list[Any]:
        """The abandoned events of conversations quiet for longer than the setting."""
        if self.abandon_after_s <= 0:
            return []
        now = self.clock()
        out = []
        with self._lock:
            while self._turns:
                conversation_id, turn = next(iter(self._turns.items()))
                if now - turn.at <= self.abandon_after_s:
                    break
                self._turns.popitem(last=False)
                out.append(_event(turn.request_id, "abandoned", conversation_id))
        return out

    def close(self) -> None:
        with self._lock:
            self.open_at_close += len(self._turns)
            self._turns.clear()

    def stats(self) -> dict[str, int]:
        return {
            "followed": len(self._turns),
            "forgotten": self.forgotten,
            "open_at_close": self.open_at_close,
        }


def _event(request_id: str, kind: str, conversation_id: str) -> dict[str, Any]:
    return {"request_id": request_id, "kind": kind, "conversation_id": conversation_id}
