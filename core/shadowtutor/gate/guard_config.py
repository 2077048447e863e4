"""The ``[guard]`` section of the criteria file: how users' reactions are compared during a
rollout (:mod:`shadowtutor.gate.guard`). Parsed here, apart from the gate's criteria, so
:mod:`shadowtutor.gate.criteria` only calls :func:`parse` and stays the one place the file is
read.

Example (the shipped defaults)::

    [guard]
    min_events = 100          # per arm: rated answers (thumbs) or answers (regenerates, errors)
    rollback = true           # WORSE rolls the rollout back to 0 % at the next evaluation
    require_no_worse = false  # advancing a stage needs NO_WORSE on every signal

    [guard.margins]           # percentage points the student's rate may exceed the teacher's
    thumbs_down = 1.0
    regenerate = 1.0
    error = 0.5
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shadowtutor.errors import ShadowTutorError

# The users' signals the guard compares, and what each is a rate of.
SIGNALS = ("thumbs_down", "regenerate", "error")
SIGNAL_WORDS = {
    "thumbs_down": "thumbs down",
    "regenerate": "regenerated",
    "error": "errors",
}
OUT_OF = {"thumbs_down": "rated answers", "regenerate": "answers", "error": "answers"}
DEFAULT_MARGINS = {"thumbs_down": 1.0, "regenerate": 1.0, "error": 0.5}


class GuardConfigError(ShadowTutorError, ValueError):
    """The ``[guard]`` section cannot be used (the criteria module names the file)."""


@dataclass(frozen=True)
class GuardConfig:
    # signal -> the non-inferiority margin in percentage points: the student's rate may be at
    # most this much above the teacher's. Signals left out are not compared.
    margins: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MARGINS))
    min_events: int = 100  # per arm, of the signal's denominator, before any verdict
    rollback: bool = True  # WORSE rolls an active rollout back to 0 %
    require_no_worse: bool = False  # advancing a stage needs NO_WORSE on every signal

    @property
    def signals(self) -> tuple[str, ...]:
        return tuple(s for s in SIGNALS if s in self.margins)


def parse(section: Any) -> GuardConfig:
    """The ``[guard]`` table (``{}`` when the file has none: the defaults)."""
    if not isinstance(section, Mapping):
        raise GuardConfigError("[guard] must be a table")
    known = {"margins", "min_events", "rollback", "require_no_worse"}
    extra = sorted(set(section) - known)
    if extra:
        raise GuardConfigError(
            f"[guard] has unknown key(s) {', '.join(extra)}; use {', '.join(sorted(known))}"
        )
    margins = _margins(section.get("margins", DEFAULT_MARGINS))
    min_events = section.get("min_events", 100)
    if isinstance(min_events, bool) or not isinstance(min_events, int) or min_events < 1:
        raise GuardConfigError(
            f"[guard] min_events must be a whole number >= 1, got {min_events!r}"
        )
    flags = {}
    for key, default in (("rollback", True), ("require_no_worse", False)):
        value = section.get(key, default)
        if not isinstance(value, bool):
            raise GuardConfigError(f"[guard] {key} must be true or false, got {value!r}")
        flags[key] = value
    return GuardConfig(margins=margins, min_events=min_events, **flags)


def _margins(table: Any) -> dict[str, float]:
    if not isinstance(table, Mapping):
        raise GuardConfigError("[guard.margins] must be a table of signal = points")
    unknown = sorted(set(table) - set(SIGNALS))
    if unknown:
        raise GuardConfigError(
            f"[guard.margins] has unknown signal(s) {', '.join(unknown)}; use {', '.join(SIGNALS)}"
        )
    out = {}
    for signal, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise GuardConfigError(
                f"[guard.margins] {signal} must be a number of percentage points, got {value!r}"
            )
        if not 0 <= value < 100:
            raise GuardConfigError(
                f"[guard.margins] {signal} is in percentage points (0 to 100, e.g. 1.0 for one "
                f"point), got {value}"
            )
        out[str(signal)] = float(value)
    if not out:
        raise GuardConfigError(
            "[guard.margins] names no signal; give at least one of " + ", ".join(SIGNALS)
        )
    return out
