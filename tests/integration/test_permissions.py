"""Every write in the library, called as every kind of actor, on SQLite and PostgreSQL.

Table-driven from ``shadowtutor.accounts.permissions.ACTIONS``: ``WRITES`` names, for each
action, the library functions it guards and how to call each one. An action without a write
here fails (``test_every_action_has_writes``), and so does a library function that calls
``permissions.require`` without being listed (``test_every_checked_function_is_listed``).

For each write and actor the expectation comes from the table: the admin, reviewer and manager
accounts are allowed exactly when their role is in the action's roles; a disabled admin, an
unknown id and no actor at all are always refused; the operator (``permissions.SYSTEM``) is
allowed where the action says so. A refused call raises ``PermissionDenied`` naming the action
and changes nothing (every table's row count and the log folder stay as they were); an allowed
call succeeds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from shadowtutor import db, students
from shadowtutor.accounts import permissions, users
from shadowtutor.backends import Answer
from shadowtutor.cost import budget
from shadowtutor.export import jobs
from shadowtutor.gate import criteria, decisions, epochs, rollout
from shadowtutor.gate.criteria import Window
from shadowtutor.log import analytics, read, schema
from shadowtutor.log.write import LogWriter
from shadowtutor.playground import chat
from shadowtutor.review import taxonomy, workflow
from shadowtutor.router import store
from shadowtutor.tables import Review, ReviewItem, Tag, User, UserCreate
from tests.support import codescan
from tests.support.exportdata import add_many
from tests.unit.test_gate import agg, config

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class World:
    """What a write needs, made inside the savepoint of one (write, actor) case."""

    session: Session
    tmp: Path
    ids: dict[str, int]  # admin, reviewer, manager, disabled, target (a user to manage)


def _record(i: int, source: str = "live") -> dict[str, Any]:
    return schema.make_record(
        id=f"perm-{source}-{i}",
        ts=schema.utc_now(),
        source=source,
        language="en",
        category="casual",
        messages=[{"role": "user", "content": f"Question {i}?"}],
        teacher={"model": "gpt-4o-mini", "response": f"Teacher {i}"},
        student={"model": "llama3", "response": f"Student {i}"},
        similarity={"method": "lexical", "score": 0.5},
    )


def _item(w: World) -> int:
    return workflow.enqueue_records(
        session=w.session, records=[_record(1)], enqueued_by=permissions.SYSTEM
    ).item_ids[0]


def _review_of(w: World, actor: Any) -> int:
    """A current review of a fresh item by ``actor`` when it is an account, else by the
    reviewer (the permission check comes before the ownership check either way)."""
    item_id = _item(w)
    owner = actor.id if isinstance(actor, User) else actor
    if owner not in w.ids.values():
        owner = w.ids["reviewer"]
    row = Review(item_id=item_id, pair_id="perm-live-1", reviewer_id=owner, decision="approve")
    w.session.add(row)
    w.session.flush()
    return row.id


def _tag(w: World) -> int:
    tag = Tag(name="perm tag", kind="other")
    w.session.add(tag)
    w.session.flush()
    return tag.id


def _decision(w: World, **kw: Any):  # noqa: ANN202
    d = criteria.decide(config(), Window(None, None, {"greeting": agg(**kw)}))
    return decisions.record(session=w.session, decision=d, actor_id=permissions.SYSTEM)


def _approved_go(w: World) -> None:
    d = _decision(w)
    decisions.approve(session=w.session, decision_id=d.id, actor_id=w.ids["admin"])


def _fill_queue(w: World, a: Any) -> Call:
    with LogWriter(w.tmp / "log") as writer:
        writer.append_many([_record(i) for i in range(3)])
    con = analytics.connect(w.tmp / "log")
    return lambda: workflow.fill_queue(
        session=w.session, con=con, strategy="random", size=2, enqueued_by=a
    )


def _chat() -> chat.Chat:
    conversation = chat.Chat(model="llama3")
    conversation.turns.append(
        chat.Turn(
            prompt="Ciao!",
            messages=[{"role": "user", "content": "Ciao!"}],
            student=Answer(model="llama3", provider="ollama", text="Ciao, come va?"),
        )
    )
    return conversation


def _save_pair(w: World, a: Any, queue: bool = True) -> Call:
    conversation = _chat()
    return lambda: chat.save_pair(
        conversation,
        0,
        session=w.session,
        actor_id=a,
        log_dir=w.tmp / "pg-log",
        teacher_model="gpt-4o-mini",
        queue=queue,
    )


def _export(w: World, a: Any) -> Call:
    add_many(w.session, w.ids["reviewer"], 4)
    return lambda: jobs.run_export(session=w.session, actor_id=a, export_root=w.tmp / "out")


def _record_decision(w: World, a: Any) -> Call:
    d = criteria.decide(config(), Window(None, None, {"greeting": agg()}))
    return lambda: decisions.record(session=w.session, decision=d, actor_id=a)


def _claim_next(w: World, a: Any) -> Call:
    _item(w)
    return lambda: workflow.claim_next(session=w.session, reviewer_id=a)


def _advance(w: World, a: Any) -> Call:
    _approved_go(w)
    return lambda: rollout.advance(
        session=w.session, config=config(), actor_id=a, served_at_stage=0
    )


def _submit(w: World, a: Any) -> Call:
    item_id = _item(w)
    judgement = workflow.Judgement(decision="approve", student_score=4)
    return lambda: workflow.submit_review(
        session=w.session, item_id=item_id, reviewer_id=a, judgement=judgement
    )


def _edit(w: World, a: Any) -> Call:
    review_id = _review_of(w, a)
    judgement = workflow.Judgement(decision="reject", student_score=2)
    return lambda: workflow.edit_review(
        session=w.session, review_id=review_id, reviewer_id=a, judgement=judgement
    )


def _with_item(fn: Callable[..., object]) -> Prepare:
    def prepare(w: World, a: Any) -> Call:
        item_id = _item(w)
        return lambda: fn(session=w.session, item_id=item_id, reviewer_id=a)

    return prepare


def _with_tag(fn: Callable[..., object], **kw: Any) -> Prepare:
    def prepare(w: World, a: Any) -> Call:
        tag_id = _tag(w)
        return lambda: fn(session=w.session, tag_id=tag_id, actor_id=a, **kw)

    return prepare


def _with_decision(fn: Callable[..., object], agg: dict | None = None, **kw: Any) -> Prepare:
    def prepare(w: World, a: Any) -> Call:
        decision_id = _decision(w, **(agg or {})).id
        return lambda: fn(session=w.session, decision_id=decision_id, actor_id=a, **kw)

    return prepare


def _retire_student(w: World, a: Any) -> Call:
    students.add(
        session=w.session, actor_id=permissions.SYSTEM, name="old", backend="ollama", model="llama3"
    )
    return lambda: students.retire(session=w.session, actor_id=a, name="old")


def _reviewed(w: World) -> None:
    """Reviewed pairs of the default student, acceptable and not: what a router learns from."""
    records = [_record(i) for i in range(40)]
    items = workflow.enqueue_records(
        session=w.session, records=records, enqueued_by=permissions.SYSTEM
    ).item_ids
    for i, item_id in enumerate(items):
        score = 5 if i % 2 else 2
        w.session.add(
            Review(
                item_id=item_id,
                pair_id=f"perm-live-{i}",
                reviewer_id=w.ids["reviewer"],
                decision="approve",
                student_score=score,
            )
        )
    w.session.flush()


def _router(w: World, trained: bool = True) -> None:
    _reviewed(w)
    if trained:
        store.train(
            session=w.session,
            actor_id=permissions.SYSTEM,
            config=config(),
            student=schema.DEFAULT_STUDENT,
            students=1,
        )


def _router_write(fn: Callable[..., object], trained: bool = True, **kw: Any) -> Prepare:
    def prepare(w: World, a: Any) -> Call:
        _router(w, trained)
        student = schema.DEFAULT_STUDENT
        return lambda: fn(session=w.session, actor_id=a, student=student, **kw)

    return prepare


def _plain(fn: Callable[..., object], **kw: Any) -> Prepare:
    return lambda w, a: lambda: fn(session=w.session, actor_id=a, **kw)


Call = Callable[[], object]
Prepare = Callable[[World, Any], Call]  # makes what the write needs, returns the write
# action -> {function as "module.function" (its place in core/) -> how to prepare and call it}
WRITES: dict[str, dict[str, Prepare]] = {
    "review.submit": {
        "review.workflow.claim_next": _claim_next,
        "review.workflow.claim_item": _with_item(workflow.claim_item),
        "review.workflow.release_claim": _with_item(workflow.release_claim),
        "review.workflow.submit_review": _submit,
        "review.workflow.edit_review": _edit,
    },
    "review.enqueue": {
        "review.workflow.enqueue_records": lambda w, a: (
            lambda: workflow.enqueue_records(session=w.session, records=[_record(7)], enqueued_by=a)
        ),
        "review.workflow.fill_queue": _fill_queue,
    },
    "tags.edit": {
        "review.taxonomy.seed_default_tags": _plain(taxonomy.seed_default_tags),
        "review.taxonomy.add_tag": _plain(taxonomy.add_tag, name="new tag"),
        "review.taxonomy.update_tag": _with_tag(taxonomy.update_tag, name="renamed"),
        "review.taxonomy.delete_tag": _with_tag(taxonomy.delete_tag),
    },
    "budget.set": {"cost.budget.set_budget": _plain(budget.set_budget, monthly_usd=500)},
    "gate.approve": {
        "gate.decisions.approve": _with_decision(decisions.approve),
        "gate.decisions.revoke": _with_decision(decisions.revoke, reason="not yet"),
        # Recording a decision releases nothing: the operator (cron) may, accounts need
        # gate.approve (see OPERATOR_OVERRIDES). `evidence.evaluate` records through it.
        "gate.decisions.record": _record_decision,
    },
    "gate.override": {
        "gate.decisions.override": _with_decision(
            decisions.override,
            agg={"pairs": 3000, "fail": 100},
            reason="a known network blip, fixed since",
        ),
    },
    "gate.epoch": {
        "gate.epochs.start": _plain(
            epochs.start, config=config(), student=None, reason="the prompt template changed"
        ),
    },
    "rollout.advance": {"gate.rollout.advance": _advance},
    "rollout.kill": {
        "gate.rollout.rollback": _plain(rollout.rollback, reason="drill"),
        "gate.rollout.set_kill": _plain(rollout.set_kill, on=True, reason="drill"),
    },
    "export.run": {"export.jobs.run_export": _export},
    "playground.save": {"playground.chat.save_pair": _save_pair},
    "router.manage": {
        "router.store.train": _router_write(
            store.train, trained=False, config=config(), students=1
        ),
        "router.store.rollback": _router_write(store.rollback, version=1, reason="drill"),
        "router.store.set_mode": _router_write(store.set_mode, mode="routed", reason="drill"),
    },
    "students.manage": {
        "students.registry.add": _plain(
            students.add, name="qwen", backend="ollama", model="qwen2.5:7b"
        ),
        "students.registry.retire": _retire_student,
    },
    "users.manage": {
        "accounts.users.add_user": _plain(
            users.add_user,
            user=UserCreate(username="newcomer", role="reviewer", password="password-new"),
        ),
        "accounts.users.set_role": _plain(users.set_role, username="target", role="manager"),
        "accounts.users.set_disabled": _plain(users.set_disabled, username="target"),
        "accounts.users.set_password": _plain(
            users.set_password, username="target", password="a-new-password"
        ),
    },
}
# Writes whose operator rule differs from their action's (documented where they are defined).
OPERATOR_OVERRIDES = {"gate.decisions.record": True}

ACTORS = (
    "admin",
    "admin as User",
    "reviewer",
    "manager",
    "disabled",
    "unknown",
    "none",
    "operator",
)
CASES = [(action, name) for action, writes in WRITES.items() for name in writes]


def test_every_action_has_writes() -> None:
    assert set(WRITES) == set(permissions.ACTIONS), "add the new action's writes to WRITES"
    assert all(WRITES.values())


def _checked_functions() -> set[str]:
    """``module.function`` of every function in core/ that calls ``permissions.require``."""
    return {f"{m.removeprefix('shadowtutor.')}.{f}" for m, f in codescan.permission_checked()}


# Functions that check but are not writes of their own: the CLI checks early, before work.
NOT_WRITES = {"cli.export.run"}


# Automatic writes: they take no actor and act as the operator (permissions.SYSTEM), checked
# through the same table (the guard's and the decision's rollbacks need the operator's
# rollout.kill); their audit is tested where they are (test_guard_rollback.py, test_rollout.py).
AUTOMATIC = {"gate.rollout.apply_guard", "gate.rollout.apply_decision"}


def test_every_checked_function_is_listed() -> None:
    listed = {name for writes in WRITES.values() for name in writes}
    assert _checked_functions() - NOT_WRITES - AUTOMATIC == listed


def _expected(action: str, name: str, actor: str) -> bool:
    spec = permissions.ACTIONS[action]
    if actor in ("admin", "admin as User"):
        return permissions.ADMIN in spec.roles
    if actor in permissions.ROLES:
        return actor in spec.roles
    if actor == "operator":
        return OPERATOR_OVERRIDES.get(name, spec.operator)
    return False  # disabled, unknown, none


def _counts(session: Session) -> dict[str, int]:
    session.flush()
    return {
        t.name: session.execute(select(func.count()).select_from(t)).scalar_one()
        for t in SQLModel.metadata.sorted_tables
    }


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def people(session: Session) -> dict[str, int]:
    ids = {}
    for name, role, disabled in (
        ("admin", "admin", False),
        ("reviewer", "reviewer", False),
        ("manager", "manager", False),
        ("disabled", "admin", True),
        ("target", "reviewer", False),
    ):
        user = User(username=name, role=role, disabled=disabled, password_hash="not-a-login")
        session.add(user)
        session.flush()
        ids[name] = user.id
    return ids


def _actor(session: Session, ids: dict[str, int], kind: str) -> Any:
    return {
        "admin": ids["admin"],
        "admin as User": session.get(User, ids["admin"]) if kind == "admin as User" else None,
        "reviewer": ids["reviewer"],
        "manager": ids["manager"],
        "disabled": ids["disabled"],
        "unknown": max(ids.values()) + 1000,
        "none": None,
        "operator": permissions.SYSTEM,
    }[kind]


@pytest.mark.parametrize(("action", "name"), CASES, ids=[n for _, n in CASES])
def test_write_refuses_exactly_who_the_table_refuses(
    session: Session, people: dict[str, int], tmp_path: Path, action: str, name: str
) -> None:
    prepare = WRITES[action][name]
    outcomes = {}
    for kind in ACTORS:
        tmp = tmp_path / kind.replace(" ", "-")
        tmp.mkdir()
        savepoint = session.begin_nested()
        try:
            world = World(session, tmp, people)
            actor = _actor(session, people, kind)
            write = prepare(world, actor)
            before, files = _counts(session), _files(tmp)
            try:
                write()
            except permissions.PermissionDenied as exc:
                assert exc.action == action and f"({action})" in str(exc), str(exc)
                assert _counts(session) == before and _files(tmp) == files, "a refusal wrote"
                outcomes[kind] = False
            else:
                outcomes[kind] = True
        finally:
            savepoint.rollback()
    expected = {kind: _expected(action, name, kind) for kind in ACTORS}
    assert outcomes == expected


def test_the_refusal_names_the_roles_and_the_fix(session: Session, people) -> None:
    with pytest.raises(permissions.PermissionDenied) as refused:
        budget.set_budget(session=session, monthly_usd=10, actor_id=people["manager"])
    assert str(refused.value) == (
        "manager is a manager; only admins may set the monthly budget (budget.set). Ask an "
        "admin to do it, or to give you the role: shadowtutor users set-role manager admin"
    )
    assert isinstance(refused.value, PermissionError)
    with pytest.raises(permissions.PermissionDenied, match="'disabled' is disabled"):
        budget.set_budget(session=session, monthly_usd=10, actor_id=people["disabled"])
    with pytest.raises(permissions.PermissionDenied, match="named account; in the CLI pass --by"):
        jobs.run_export(session=session, actor_id=permissions.SYSTEM, export_root=Path("/nowhere"))


def test_a_role_change_takes_effect_at_once(session: Session, people) -> None:
    budget.set_budget(session=session, monthly_usd=10, actor_id=people["admin"])
    users.set_role(session=session, username="admin", role="manager", actor_id=permissions.SYSTEM)
    with pytest.raises(permissions.PermissionDenied, match="admin is a manager"):
        budget.set_budget(session=session, monthly_usd=20, actor_id=people["admin"])


def test_allowed_reads_the_same_table() -> None:
    for name, spec in permissions.ACTIONS.items():
        assert {r for r in permissions.ROLES if permissions.allowed(r, name)} == set(spec.roles)
        assert not permissions.allowed(None, name)
    with pytest.raises(ValueError, match="unknown action"):
        permissions.allowed("admin", "reviews.submit")


def test_pages_and_menu_follow_the_table() -> None:
    from shadowtutor.app import registry

    for key, action in {
        "review": "review.submit",
        "review-queue": "review.enqueue",
        "playground": "playground.save",
        "export": "export.run",
    }.items():
        assert set(registry.page(key).roles) == set(permissions.roles_for(action))


def test_docs_permissions_table_matches_the_module() -> None:
    assert permissions.markdown_table() in (ROOT / "docs" / "security.md").read_text()


def test_nothing_reaches_the_log_when_a_manager_saves(session: Session, people, tmp_path) -> None:
    world = World(session, tmp_path / "w", people)
    with pytest.raises(permissions.PermissionDenied):
        _save_pair(world, people["manager"], queue=False)()
    assert not (tmp_path / "w").exists()
    _save_pair(world, people["reviewer"], queue=False)()
    (rec,) = list(read.iter_records(tmp_path / "w" / "pg-log"))
    assert rec["source"] == "playground"
    assert session.exec(select(ReviewItem)).first() is None  # not queued without queue=True


# --- the CLI: the named account, or the operator -------------------------------------------


def test_cli_acts_as_the_named_account_or_the_operator(migrated, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from shadowtutor.cli import main

    def run(*args: str):  # noqa: ANN202
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    # The first admin of an empty database: the operator, no account needed.
    assert run("users", "add", "root", "--role", "admin", "--password", "password-1").exit_code == 0
    assert (
        run("users", "add", "rita", "--role", "reviewer", "--password", "password-2").exit_code == 0
    )
    refused = run(
        "users", "add", "eve", "--role", "admin", "--password", "password-3", "--by", "rita"
    )
    assert refused.exit_code == 1 and "rita is a reviewer; only admins may" in refused.output
    assert "(users.manage)" in refused.output
    ok = run("users", "set-role", "rita", "manager", "--by", "root")
    assert ok.exit_code == 0, ok.output
    tag = run("review", "tags", "add", "verbose", "--by", "rita")
    assert tag.exit_code == 1 and "rita is a manager" in tag.output and "(tags.edit)" in tag.output
    assert run("review", "tags", "add", "verbose").exit_code == 0  # the operator may
    enqueue = run("review", "enqueue", "--size", "5", "--by", "rita")
    assert enqueue.exit_code == 1 and "(review.enqueue)" in enqueue.output
    assert run("rollout", "kill", "--by", "rita").exit_code == 1
    assert run("users", "disable", "root").exit_code == 0
    gone = run("rollout", "kill", "--by", "root")
    assert gone.exit_code == 1 and "'root' is disabled" in gone.output
    assert "kill switch ON" in run("rollout", "kill", "--reason", "drill").output
    with db.session_scope(migrated.db_url) as s:
        assert [t.name for t in taxonomy.list_tags(session=s)] == ["verbose"]
        assert s.exec(select(ReviewItem)).first() is None
        (event,) = rollout.history(session=s)
        assert event.action == "kill" and event.actor_id is None  # "system/CLI"


def test_a_reviewer_queues_only_playground_pairs(session: Session, people) -> None:
    """Saving from the Playground may queue that pair (playground.save), nothing else."""
    rita = people["reviewer"]
    with pytest.raises(workflow.ReviewError, match="only queue pairs whose source is 'playground'"):
        workflow.enqueue_records(
            session=session, records=[_record(1)], enqueued_by=rita, action="playground.save"
        )
    with pytest.raises(permissions.PermissionDenied, match=r"\(review.enqueue\)"):
        workflow.enqueue_records(session=session, records=[_record(1)], enqueued_by=rita)
    added = workflow.enqueue_records(
        session=session,
        records=[_record(2, source="playground")],
        enqueued_by=rita,
        action="playground.save",
    )
    assert added.added == 1
    with pytest.raises(ValueError, match="not 'tags.edit'"):
        workflow.enqueue_records(
            session=session, records=[_record(3)], enqueued_by=rita, action="tags.edit"
        )
