"""The one interface the collector's front hands its jobs to."""

from __future__ import annotations

from typing import Any, Protocol

from shadowtutor.collect.job import Job


class Executor(Protocol):
    """Runs each job's work (students, records) and writes the records, off the request path.

    Nothing raises into the caller: what fails is counted in the collector's counters."""

    def submit(self, job: Job, *, block: bool = False, timeout: float | None = None) -> bool:
        """Take a job (``block=False``: never wait); False, counted as dropped, when full."""
        ...

    def flush(self, timeout: float | None) -> bool:
        """Wait until the jobs taken are processed and their records written; True when
        nothing is left."""
        ...

    def close(self, timeout: float | None) -> bool:
        """Flush, stop, release; True when everything taken was logged."""
        ...

    def stats(self) -> dict[str, Any]:
        """Gauges and the counts of work done elsewhere (added to the collector's stats)."""
        ...
