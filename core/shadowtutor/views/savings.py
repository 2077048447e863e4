"""Which categories the Cost page's savings count: read from the gate's decisions and the
rollout (the cost maths in ``shadowtutor.cost.budget`` stays free of the gate)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from shadowtutor.gate import decisions, rollout


@dataclass(frozen=True)
class Eligible:
    """The categories savings are computed for, and where that list comes from."""

    categories: frozenset[str] | None  # None: every category; empty: none
    source: str  # said under the figures

    @property
    def none(self) -> bool:
        return self.categories is not None and not self.categories

    def describe(self) -> str:
        if self.categories is None:
            names = "all categories"
        else:
            names = ", ".join(sorted(self.categories)) or "no category"
        return f"{names} ({self.source})"


def eligible_categories(*, session: Session, configured: frozenset[str]) -> Eligible:
    """The categories the student may take over, in the order the system itself trusts them:
    the rollout's categories (what routing uses), else the newest gate decision's eligible
    categories (what Readiness shows), else ``SHADOWTUTOR_ELIGIBLE_CATEGORIES``, else all."""
    state = rollout.state(session=session)
    if state.categories:
        return Eligible(frozenset(state.categories), "the rollout's categories")
    newest = decisions.latest(session=session)
    if newest is not None:
        cats = newest.evidence.get("eligible") or []
        return Eligible(frozenset(cats), f"eligible in gate decision #{newest.id}")
    if configured:
        return Eligible(configured, "SHADOWTUTOR_ELIGIBLE_CATEGORIES")
    return Eligible(None, "no gate decision yet")
