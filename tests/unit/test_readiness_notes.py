"""Readiness's lines about the evidence, in words (views/readiness.py)."""

from __future__ import annotations

from shadowtutor.views import readiness


def test_the_budget_line_names_the_budget_once() -> None:
    evidence = {"budget": "error budget 5% for the family: epoch 1 spends 80% of it"}
    assert readiness.budget_note(evidence) == (
        "Error budget 5% for the family: epoch 1 spends 80% of it."
    )
    assert readiness.budget_note({}) == ""


def test_the_epoch_line_says_since_when_and_why() -> None:
    evidence = {
        "epoch": {"since": "2026-10-08T04:00:00+00:00", "reason": "student llama registered"}
    }
    assert readiness.epoch_note(evidence) == (
        "Evidence since 2026-10-08 04:00 UTC, because student llama registered."
    )
    assert readiness.epoch_note({}) == ""
