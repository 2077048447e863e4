"""ShadowTutor: shadow a paid cloud LLM (the teacher) with a local model (the student), review
the pairs, watch cost, decide with evidence when the student may serve, and export training data.

The integrator's API::

    import openai, shadowtutor

    collector = shadowtutor.ShadowCollector()      # settings from the environment
    client = collector.wrap(openai.OpenAI())       # or shadowtutor.wrap(openai.OpenAI(), collector)
    claude = collector.wrap(anthropic.Anthropic()) # Claude's Messages API (anthropic: optional)

Everything else lives in one package per domain noun: ``collect`` (request path, collector,
proxy, replay), ``log`` (record, store, analytics), ``backends``, ``students``, ``review``,
``judge``, ``gate``, ``accounts`` (the one permission table, users, sessions), ``cost``,
``views`` (the pages' read-only view-models), ``export``, ``playground``, ``demo``, ``cli``.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Public name -> module; imported on first use so `import shadowtutor` stays cheap.
_PUBLIC = {
    "ShadowCollector": "shadowtutor.collect.collector",
    "Job": "shadowtutor.collect.job",
    "wrap": "shadowtutor.collect.wrapper",
    "request_id": "shadowtutor.collect.request_ids",
    "Settings": "shadowtutor.config",
    "SettingsError": "shadowtutor.config",
    "ShadowTutorError": "shadowtutor.errors",
    "LogWriter": "shadowtutor.log.write",
    "student_backend": "shadowtutor.backends",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'shadowtutor' has no attribute {name!r}")
    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
