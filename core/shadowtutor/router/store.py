"""Router versions: train one, list them, roll back, switch the routing mode.

Every write is permission-checked (``router.manage``: admins, and the operator from cron) and
appended: a trained version is a new ``router_model`` row; the newest ``router_event`` of a
student names its active version and its mode (``category``: the gate's category GOs decide,
the router only scores; ``routed``: the router decides per request where its category has a
certified threshold; ``cascade``: the router decides who tries the student, and the version's
validator whether the student's answer is served or the teacher answers instead). The request
path reads that state in the background
(:mod:`shadowtutor.router.live`).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, func, select

from shadowtutor.accounts import permissions
from shadowtutor.errors import ShadowTutorError
from shadowtutor.gate.criteria import GateConfig, error_budget
from shadowtutor.router import labels, model, threshold
from shadowtutor.router.features import Scorer
from shadowtutor.tables import RouterEvent, RouterModel, User, as_utc, row_id, utcnow

MODES = ("category", "routed", "cascade")
DEFAULT_FLOOR = 0.9  # the acceptable rate of routed traffic the thresholds guarantee
RETRAIN_AFTER = 50  # new human labels that make the schedule hook retrain


class RouterError(ShadowTutorError, ValueError):
    """A router step that cannot be taken; the message says what to do."""


@dataclass(frozen=True)
class RouterState:
    student: str
    mode: str = "category"
    active: RouterModel | None = None
    event: RouterEvent | None = None


def newest_event(session: Session, student: str) -> RouterEvent | None:
    stmt = (
        select(RouterEvent)
        .where(RouterEvent.student == student)
        .order_by(col(RouterEvent.id).desc())
        .limit(1)
    )
    return session.exec(stmt).first()


def state(session: Session, student: str) -> RouterState:
    event = newest_event(session, student)
    if event is None:
        return RouterState(student)
    active = session.get(RouterModel, event.router_id) if event.router_id else None
    return RouterState(student, event.mode, active, event)


def versions(session: Session, student: str) -> list[RouterModel]:
    stmt = (
        select(RouterModel)
        .where(RouterModel.student == student)
        .order_by(col(RouterModel.version).desc())
    )
    return list(session.exec(stmt))


def students_with_routers(session: Session) -> list[str]:
    return sorted(set(session.exec(select(RouterModel.student)).all()))


def _event(
    session: Session,
    *,
    student: str,
    action: str,
    router_id: int | None,
    mode: str,
    actor: User | permissions.SystemActor,
    reason: str,
) -> RouterEvent:
    event = RouterEvent(
        student=student,
        action=action,
        router_id=router_id,
        mode=mode,
        actor_id=permissions.actor_id(actor),
        reason=reason,
    )
    session.add(event)
    session.flush()
    return event


def alpha_for(config: GateConfig, students: int, categories: int) -> float:
    """Each category threshold's error level: the gate's per-claim share of its family budget
    (:func:`shadowtutor.gate.criteria.error_budget`) for ``students`` x ``categories`` claims.
    In routed mode a (student, category) is claimed ready by its threshold instead of by a
    category GO, so each claim keeps one share."""
    confidence, _words = error_budget(config, students, categories)
    return 1 - confidence


def fit_version(
    found: labels.Labels, *, floor: float, alpha_of: Any
) -> tuple[Scorer, dict[str, Any], dict[str, Any], Scorer | None]:
    """The model, the per-category choices, held-out metrics and the cascade's validator
    (None: not trained), from labels. Pure apart from the learning. ``alpha_of(categories)``
    gives each category's level."""
    scorer = model.fit(found.train)
    # the grid is cut from scores of models that did not learn the example (cross-fitted):
    # a model's own training examples score higher than the requests it will see
    train_scores = model.out_of_fold_scores(found.train)
    held_scores = model.sklearn_scores(scorer, [lab.text for lab in found.held_out])
    cats = sorted({lab.category for lab in found.held_out})
    alpha = float(alpha_of(len(cats)))
    validator = _validator(found)
    held_v = _held_validator_scores(validator.scorer, found) if validator else []
    choices: dict[str, Any] = {}
    for cat in cats:
        idx = [i for i, lab in enumerate(found.held_out) if lab.category == cat]
        mine = [
            i
            for i, c in enumerate(found.train_categories)
            if c == cat and train_scores[i] == train_scores[i]  # NaN: a fold without both labels
        ]
        start = threshold.start_share(len(idx), floor, alpha)
        grid = threshold.grid([train_scores[i] for i in mine], start)
        choice = threshold.choose(
            cat,
            [held_scores[i] for i in idx],
            [found.held_out[i].acceptable for i in idx],
            grid,
            floor=floor,
            alpha=alpha,
        )
        gate_ok = threshold.category_gate(
            [found.held_out[i].acceptable for i in idx], floor=floor, alpha=alpha
        )
        choices[cat] = choice.as_dict() | {"category_gate": gate_ok}
        if validator is not None:
            path = threshold.cascade_path(
                [train_scores[i] for i in mine],
                [validator.train_scores[i] for i in mine],
                [found.train[i].acceptable for i in mine],
                [found.train[i].weight for i in mine],
                router_grid=grid,
                validator_grid=threshold.grid(
                    [s for i in mine if (s := validator.train_scores[i]) is not None]
                ),
                start=start,
            )
            cascade_choice = threshold.choose_cascade(
                cat,
                [held_scores[i] for i in idx],
                [held_v[i] for i in idx],
                [found.held_out[i].acceptable for i in idx],
                path,
                floor=floor,
                alpha=alpha,
            )
            choices[cat]["cascade"] = cascade_choice.as_dict()
    metrics = _metrics(held_scores, [lab.acceptable for lab in found.held_out])
    if validator is not None:
        metrics["validator"] = _metrics(
            [v for v in held_v if v is not None],
            [
                lab.acceptable
                for lab, v in zip(found.held_out, held_v, strict=True)
                if v is not None
            ],
        )
    return scorer, choices, metrics | {"alpha": alpha}, validator.scorer if validator else None


@dataclass(frozen=True)
class _Validator:
    scorer: Scorer
    train_scores: list[float | None]  # cross-fitted, per training example (None: no answer)


def _validator(found: labels.Labels) -> _Validator | None:
    """The cascade's validator (request and answer -> P(acceptable)), learned from the
    training examples with an answer; None when they do not hold both labels."""
    answered = [i for i, e in enumerate(found.train) if e.answer_text]
    examples = [found.train[i].as_validator() for i in answered]
    if len({e.acceptable for e in examples}) < 2:
        return None
    scorer = model.fit(examples)
    oof = model.out_of_fold_scores(examples)
    scores: list[float | None] = [None] * len(found.train)
    for i, s in zip(answered, oof, strict=True):
        scores[i] = s if s == s else None
    return _Validator(scorer, scores)


def _held_validator_scores(v: Scorer, found: labels.Labels) -> list[float | None]:
    texts = [lab.answer_text for lab in found.held_out]
    scored = [t for t in texts if t]
    values = iter(model.sklearn_scores(v, scored) if scored else [])
    return [next(values) if t else None for t in texts]


def _metrics(scores: list[float], ys: list[bool]) -> dict[str, Any]:
    if not ys:
        return {"held_out": 0}
    out: dict[str, Any] = {
        "held_out": len(ys),
        "brier": statistics.fmean((s - y) ** 2 for s, y in zip(scores, ys, strict=True)),
        "mean_score": statistics.fmean(scores),
        "acceptable_rate": statistics.fmean(ys),
    }
    if 0 < sum(ys) < len(ys):
        from sklearn.metrics import roc_auc_score

        out["auc"] = float(roc_auc_score(ys, scores))
    return out


def train(
    *,
    session: Session,
    actor_id: permissions.Actor,
    config: GateConfig,
    student: str,
    students: int,
    judge_records: Sequence[Mapping[str, Any]] | None = None,
    liked: Mapping[str, bool] | None = None,
    feedback_records: Sequence[Mapping[str, Any]] | None = None,
    floor: float = DEFAULT_FLOOR,
    reason: str = "",
    now: datetime | None = None,
) -> RouterModel:
    """Train and store a new version of ``student``'s router (``router.manage``) from its
    people's labels (and the judge's, see :mod:`shadowtutor.router.labels`); it becomes the
    active version, the mode kept. ``judge_records``: the log records of pairs only the judge
    scored; ``liked`` and ``feedback_records``: users' verdicts on answers the student served
    and those pairs' records (the caller reads the log)."""
    who = permissions.require(session, actor_id, "router.manage")
    if not 0.5 <= floor < 1:
        raise RouterError(f"the floor is an acceptable rate between 0.5 and 1, not {floor}")
    human = labels.human_labels(session, student=student, bar=config.min_review_score)
    if not human:
        raise RouterError(
            f"no reviewed pairs of student {student!r} yet: review some first "
            "(`shadowtutor review sample`, then the Review page)"
        )
    judged = labels.judge_scores(session, bar=config.min_review_score)
    reviewed = {lab.pair_id for lab in human}
    extra = [r for r in judge_records or [] if str(r["id"]) not in reviewed and r["id"] in judged]
    fed_back = [r for r in feedback_records or [] if str(r["id"]) not in reviewed]
    found = labels.assemble(human, judged, extra, liked or {}, fed_back)
    try:
        scorer, choices, metrics, validator = fit_version(
            found, floor=floor, alpha_of=lambda n: alpha_for(config, students, n)
        )
    except model.RouterModelError as exc:
        raise RouterError(str(exc)) from exc
    number = 1 + int(
        session.exec(
            select(func.coalesce(func.max(RouterModel.version), 0)).where(
                RouterModel.student == student
            )
        ).one()
    )
    row = RouterModel(
        student=student,
        version=number,
        created_at=now or utcnow(),
        created_by=permissions.actor_id(who),
        floor=floor,
        alpha=float(metrics["alpha"]),
        counts=found.counts
        | {"features": len(scorer.weights)}
        | ({"validator_features": len(validator.weights)} if validator else {}),
        choices=choices,
        metrics=metrics,
        labels_through=found.newest,
        model=model.dumps(scorer, validator),
    )
    session.add(row)
    session.flush()
    current = state(session, student)
    _event(
        session,
        student=student,
        action="train",
        router_id=row_id(row),
        mode=current.mode,
        actor=who,
        reason=reason or f"trained version {number}",
    )
    return row


def rollback(
    *, session: Session, actor_id: permissions.Actor, student: str, version: int, reason: str
) -> RouterEvent:
    """Make an earlier ``version`` the active one again (``router.manage``)."""
    who = permissions.require(session, actor_id, "router.manage")
    row = session.exec(
        select(RouterModel).where(RouterModel.student == student, RouterModel.version == version)
    ).first()
    if row is None:
        raise RouterError(
            f"student {student!r} has no router version {version}: "
            "`shadowtutor router show` lists them"
        )
    return _event(
        session,
        student=student,
        action="rollback",
        router_id=row_id(row),
        mode=state(session, student).mode,
        actor=who,
        reason=reason.strip() or f"rolled back to version {version}",
    )


def set_mode(
    *, session: Session, actor_id: permissions.Actor, student: str, mode: str, reason: str
) -> RouterEvent:
    """``routed``: the router decides per request (the rollout's stage still applies on top);
    ``cascade``: the router decides who tries the student and the validator whether its
    answer is served (non-streamed plain requests; a stream is routed); ``category``: the
    gate's category GOs decide again (``router.manage``)."""
    who = permissions.require(session, actor_id, "router.manage")
    if mode not in MODES:
        raise RouterError(f"unknown mode {mode!r}; use one of: {', '.join(MODES)}")
    current = state(session, student)
    if mode != "category" and current.active is None:
        raise RouterError(
            f"student {student!r} has no router yet: `shadowtutor router train` first"
        )
    if mode == "cascade" and current.active is not None and not has_cascade(current.active):
        raise RouterError(
            f"router version {current.active.version} of {student!r} has no validator or no "
            "certified cascade point (its training pairs need the student's answers with both "
            "labels): train a new version, or use mode routed"
        )
    return _event(
        session,
        student=student,
        action="mode",
        router_id=current.active.id if current.active else None,
        mode=mode,
        actor=who,
        reason=reason.strip() or f"mode {mode}",
    )


def has_cascade(row: RouterModel) -> bool:
    """Whether the version has a validator with a certified cascade point somewhere."""
    return any(
        isinstance(c, Mapping) and (c.get("cascade") or {}).get("chosen")
        for c in (row.choices or {}).values()
    )


def new_labels(session: Session, *, student: str, config: GateConfig) -> int:
    """People's labels of ``student`` given after its active version's newest label."""
    current = state(session, student)
    since = as_utc(current.active.labels_through) if current.active else None
    human = labels.human_labels(session, student=student, bar=config.min_review_score)
    if since is None:
        return len(human)
    return sum(1 for lab in human if lab.at is not None and lab.at > since)
