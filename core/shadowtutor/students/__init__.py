"""Several students on the same live prompts: the registry (students as data), the fan-out
the collector runs for each sampled request, the leaderboard that compares them, and the
servers' health.

``registry`` holds who is shadowed (a ``student`` table, the single-student settings as the
default student when none is registered); ``fanout`` asks every active student in parallel,
each with its own backend, timeout, breaker and sampling share; ``leaderboard`` ranks them on
the prompts they share; ``health`` asks a student's server whether it is up and what the model
is (the Playground page and ``shadowtutor students health`` print the same facts).
"""

from shadowtutor.students import registry
from shadowtutor.students.registry import (
    DEFAULT,
    StudentError,
    StudentSpec,
    active_specs,
    add,
    default_spec,
    get,
    list_students,
    retire,
)

__all__ = [
    "registry",
    "DEFAULT",
    "StudentError",
    "StudentSpec",
    "active_specs",
    "add",
    "default_spec",
    "get",
    "list_students",
    "retire",
]
