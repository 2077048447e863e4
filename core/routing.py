"""The routing seam: which model answers a request.

The collector's wrapper and the proxy ask :func:`route` for every request. Until a rollout
is in progress (see the gate and rollout issue) the teacher always serves and the student
only shadows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    served_by: str  # "teacher" | "student"
    stage: int  # percent of eligible traffic the student serves at this moment
    bucket: float | None  # the request's position 0..100 in the stable hash ring
    eligible: bool | None  # whether the request's category may go to the student


def route(*, key: str | None, category: str | None) -> Route:
    """Decide who serves a request identified by ``key`` (user or conversation id)."""
    return Route(served_by="teacher", stage=0, bucket=None, eligible=None)
