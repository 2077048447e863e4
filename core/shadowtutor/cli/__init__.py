"""The `shadowtutor` command: the root group (``root``) and one module per command group,
registered here by name so the list of commands reads in one place."""

from __future__ import annotations

from shadowtutor.cli import (
    app,
    collect,
    config,
    db,
    demo,
    export,
    feedback,
    gate,
    judge,
    logs,
    review,
    router,
    students,
    users,
)
from shadowtutor.cli.root import main

for _command in (
    app.app_cmd,
    collect.proxy_cmd,
    collect.replay_cmd,
    config.config_cmd,
    db.db_group,
    demo.demo_cmd,
    export.export_group,
    feedback.feedback_group,
    gate.gate_group,
    gate.rollout_group,
    judge.judge_group,
    logs.logs_group,
    review.review_group,
    router.router_group,
    students.students_group,
    students.student_group,
    users.users_group,
):
    main.add_command(_command)

__all__ = ["main"]
