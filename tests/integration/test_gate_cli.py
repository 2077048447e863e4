"""`shadowtutor gate ...` and `shadowtutor rollout ...` as a user runs them (real SQLite, log)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from shadowtutor.cli import main
from shadowtutor.config import Settings
from tests.support.apputil import make_user
from tests.support.gatesim import fill


def run(*args: str):  # noqa: ANN201
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_full_rollout_and_kill_from_the_cli(migrated: Settings) -> None:
    fill(migrated)
    make_user(migrated.db_url, "admin", "root")
    make_user(migrated.db_url, "manager", "boss")

    first = run("rollout", "advance")
    assert first.exit_code == 1 and "no decision yet" in first.output

    ev = run("gate", "evaluate")
    assert ev.exit_code == 0, ev.output
    assert "decision #1: GO" in ev.output and "GO for greeting" in ev.output
    assert "1,000 more casual pairs needed" in ev.output

    refused = run("gate", "approve", "1", "--by", "boss")
    assert refused.exit_code == 1 and "boss is a manager; only admins may" in refused.output
    assert "(gate.approve)" in refused.output
    ok = run("gate", "approve", "1", "--by", "root")
    assert ok.exit_code == 0 and "approved" in ok.output
    assert "advanced to 10% for greeting" in run("rollout", "advance", "--by", "root").output

    status = run("rollout", "status").output
    assert "stage: 10%" in status and "eligible categories: greeting" in status
    assert "more requests served by the student at 10%" in status

    assert "kill switch ON" in run("rollout", "kill", "--reason", "drill").output
    assert "KILLED" in run("rollout", "status").output
    bare = run("rollout", "unkill")  # issue 27 item 7: releasing needs a reason like pulling
    assert bare.exit_code == 1 and "give a reason to release the kill switch" in bare.output
    assert "KILLED" in run("rollout", "status").output
    assert "stage 10% applies again" in run("rollout", "unkill", "--reason", "drill over").output
    assert "rolled back to 0%" in run("rollout", "rollback", "--reason", "test").output
    again = run("rollout", "advance", "--by", "root")
    assert again.exit_code == 1 and "no automatic re-promotion" in again.output
    assert "approved" in run("gate", "show").output


def test_replay_prints_a_line_a_day(migrated: Settings) -> None:
    fill(migrated)
    today = datetime.now(UTC).date()
    out = run("gate", "replay", "--from", str(today - timedelta(days=2)), "--to", str(today))
    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    assert len(lines) == 3 and lines[-1].startswith(str(today)) and "GO" in lines[-1]
    early = run("gate", "replay", "--from", str(today - timedelta(days=40)), "--to",
                str(today - timedelta(days=39)))  # fmt: skip
    assert [line[12:27] for line in early.output.strip().splitlines()] == [
        "NOT ENOUGH DATA",
        "NOT ENOUGH DATA",
    ]  # the outcome as people read it, as on the page
    bad = run("gate", "replay", "--from", str(today), "--to", str(today), "--step", "1h")
    assert bad.exit_code == 2 and "whole days" in bad.output
    backwards = run("gate", "replay", "--from", str(today), "--to", str(today - timedelta(days=3)))
    assert backwards.exit_code == 2 and "before --from" in backwards.output


def test_bad_gate_config_is_one_line(migrated: Settings, monkeypatch, tmp_path) -> None:  # noqa: ANN001
    monkeypatch.setenv("SHADOWTUTOR_GATE_CONFIG", str(tmp_path / "missing.toml"))
    out = run("gate", "evaluate")
    assert out.exit_code == 1 and "cannot read the gate config" in out.output
    assert "Traceback" not in out.output


def test_an_admin_starts_an_evidence_epoch_from_the_cli(migrated: Settings) -> None:
    """Issue 26: `shadowtutor gate epoch start --student S --reason TEXT`, permission-checked
    and audited; the evidence so far lapses for the next decisions."""
    from shadowtutor import db
    from shadowtutor.gate import decisions
    from shadowtutor.views import epoch, readiness

    fill(migrated)
    make_user(migrated.db_url, "admin", "root")
    make_user(migrated.db_url, "reviewer", "rita")
    assert "GO for greeting" in run("gate", "evaluate").output  # epoch 1: the default student's

    short = run("gate", "epoch", "start", "--reason", "new prompt", "--by", "root")
    assert short.exit_code == 1 and "written reason of at least 15 characters" in short.output
    denied = run("gate", "epoch", "start", "--reason", "the system prompt changed", "--by", "rita")
    assert denied.exit_code == 1 and "(gate.epoch)" in denied.output
    unknown = run(
        "gate", "epoch", "start", "--student", "nobody", "--reason", "the system prompt changed"
    )
    assert unknown.exit_code == 1 and "no student 'nobody'" in unknown.output
    missing = run("gate", "epoch", "start", "--by", "root")
    assert missing.exit_code == 2 and "--reason" in missing.output

    ok = run("gate", "epoch", "start", "--reason", "the system prompt changed", "--by", "root")
    assert ok.exit_code == 0, ok.output
    assert "evidence epoch 2 for default started: evidence since " in ok.output
    assert ok.output.rstrip().endswith("UTC, because the system prompt changed")
    with db.session_scope(migrated.db_url) as s:
        trail = decisions.audit(session=s)
        row = next(r for r in trail if r.what.startswith("evidence epoch for default (manual)"))
        assert row.who == "root" and row.flagged and "the system prompt changed" in row.detail

        before = decisions.latest(session=s).evidence
        pending = epoch.pending_note(session=s, student=None, evidence=before)
    assert pending.startswith("A new evidence epoch started since this decision (manual): ")
    assert "because the system prompt changed. Evaluate the gate" in pending

    after = run("gate", "evaluate")  # the pairs before the new epoch no longer count
    assert "GO for greeting" not in after.output and "NOT ENOUGH DATA" in after.output
    with db.session_scope(migrated.db_url) as s:
        now = decisions.latest(session=s).evidence
        assert epoch.pending_note(session=s, student=None, evidence=now) == ""
    assert readiness.epoch_note(now).endswith("because the system prompt changed.")
