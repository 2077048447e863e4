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


def test_the_judge_line_says_when_the_gate_leaves_the_judge_out() -> None:
    """A judge not calibrated before the evidence epoch is not used by the gate: the line
    said its scores were combined with the reviews whatever the decision did."""
    judge = {"judge_version": "pairwise-v1 / m", "weighted_kappa": 0.81, "pairs": 40}
    used = {**judge, "before_epoch": {"used": True, "why": "used: weighted kappa 0.80"}}
    assert "are combined with human reviews" in readiness.judge_note({"judge": used})
    why = "not used: before the evidence epoch the judge was calibrated on 0 reviewed pairs"
    left = {**judge, "before_epoch": {"used": False, "why": why}}
    note = readiness.judge_note({"judge": left})
    assert "leaves its scores out: not used: before the evidence epoch" in note
    assert "combined" not in note


def test_the_criteria_line_names_the_decisions_file_and_a_change_since() -> None:
    """Readiness showed only the current criteria file's hash: a decision made under an
    earlier file looked as if it was made under today's."""
    from shadowtutor.tables import GateDecision
    from tests.support.gatecases import config

    cfg = config()
    same = GateDecision(id=7, outcome="GO", config_version=cfg.version, config_hash=cfg.hash)
    assert readiness.criteria_note(same, cfg) == (
        f"Decision #7 was made under criteria version {cfg.version}, sha256 {cfg.hash[:12]} "
        "(the current file)."
    )
    old = GateDecision(id=6, outcome="GO", config_version="2026-01-01.1", config_hash="ab" * 32)
    note = readiness.criteria_note(old, cfg)
    assert "version 2026-01-01.1, sha256 abababababab; the criteria file has changed" in note
    assert f"now version {cfg.version}, sha256 {cfg.hash[:12]}" in note
    assert readiness.criteria_note(None, cfg) == ""
