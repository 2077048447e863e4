"""The collector's counters: what was enqueued, dropped, logged, failed, and why.

One :class:`Counters` is shared by the front (the request path's counts), the work (student
and teacher outcomes) and the executor (queue, writes, recovery); ``stats()`` reads it.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

STAT_KEYS = (
    "enqueued dropped not_sampled ineligible logged student_ok student_errors "
    "student_unsupported student_timeouts breaker_skipped teacher_errors similarity_errors "
    "write_errors lost usage_estimated served_by_student student_fallbacks route_errors "
    "streams_abandoned teacher_only unrecorded_calls invalid recovered "
    "recovered_already_logged unfinished_at_exit companion_failures context_held "
    "validator_sent_back"
).split()


class Counters:
    """Thread-safe counts, the models priced as unknown, and the last error said."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._unknown: Counter[str] = Counter()
        self._teacher_only: Counter[str] = Counter()
        self._forwarded: Counter[str] = Counter()
        self.last_error: str | None = None

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def unknown_model(self, model: str) -> None:
        with self._lock:
            self._unknown[model] += 1

    def teacher_only(self, reason: str) -> None:
        """A request routed to the student was answered by the teacher for ``reason`` (its
        kind: ``kind: tools``)."""
        with self._lock:
            self._teacher_only[reason] += 1

    def teacher_only_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._teacher_only)

    def forwarded(self, path: str) -> None:
        """The proxy passed a request it does not shadow to the teacher (``path``: its label,
        :func:`shadowtutor.collect.forward.path_label`)."""
        with self._lock:
            self._forwarded[path] += 1

    def forwarded_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._forwarded)

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        """(every :data:`STAT_KEYS` count, the unknown models' counts)."""
        with self._lock:
            return {k: self._counts.get(k, 0) for k in STAT_KEYS}, dict(self._unknown)


# Gauges and counts an executor (or the companion's child) adds to the collector's own.
ADDED = (
    "queue_depth",
    "unwritten",
    "journal_pending",
    "journal_errors",
    "breaker_opened",
    "breaker_abandoned_probes",
)


def merged(base: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """``base`` stats with an executor's ``more`` added: its ``counts`` and :data:`ADDED`
    summed, its unknown models counted, its breaker state when ``base``'s breaker is closed,
    its students when it has them (the fan-out runs there), its last error when ``base`` has
    none, its ``companion`` state."""
    out = dict(base)
    for k, v in (more.get("counts") or {}).items():
        out[k] = out.get(k, 0) + v
    for k in ADDED:
        out[k] = out.get(k, 0) + (more.get(k) or 0)
    unknown = dict(out.get("unknown_models") or {})
    for model, n in (more.get("unknown_models") or {}).items():
        unknown[model] = unknown.get(model, 0) + n
    out["unknown_models"] = unknown
    out["last_error"] = out.get("last_error") or more.get("last_error")
    if more.get("breaker") and out.get("breaker") == "closed":
        out["breaker"] = more["breaker"]
    if more.get("students"):
        out["students"] = more["students"]
    if "companion" in more:
        out["companion"] = more["companion"]
    return out
