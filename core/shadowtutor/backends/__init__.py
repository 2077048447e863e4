"""Model backends the student (and the teacher, and the judge) is reached through.

* :mod:`shadowtutor.backends.answer`: :class:`Answer`, one model's answer (everyone's type).
* :mod:`shadowtutor.backends.base`: the :class:`Backend` interface,
  :class:`ChatChunk`, :class:`ModelInfo`, the errors, and the stream timing written once.
* :mod:`shadowtutor.backends.breaker`: :class:`Breaker`, a backend's circuit breaker.
* :mod:`shadowtutor.backends.ollama`: :class:`OllamaBackend` (the official ``ollama`` client).
* :mod:`shadowtutor.backends.openai`: :class:`OpenAIBackend` (any OpenAI-compatible server).

:func:`student_backend` picks the student named by ``SHADOWTUTOR_STUDENT_BACKEND`` from a
small registry (:data:`STUDENT_BACKENDS`); :func:`teacher_backend` is the teacher.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from shadowtutor.backends.answer import Answer
from shadowtutor.backends.base import (
    Backend,
    BackendError,
    BackendHTTPError,
    BackendProtocolError,
    BackendTimeout,
    BackendUnavailable,
    ChatChunk,
    Messages,
    ModelInfo,
    ModelNotFound,
    StreamClock,
)
from shadowtutor.backends.ollama import OllamaBackend
from shadowtutor.backends.openai import OpenAIBackend
from shadowtutor.config import Settings
from shadowtutor.errors import ShadowTutorError

__all__ = [
    "STUDENT_BACKENDS",
    "Backend",
    "BackendError",
    "BackendHTTPError",
    "BackendProtocolError",
    "BackendTimeout",
    "BackendUnavailable",
    "ChatChunk",
    "Answer",
    "Messages",
    "ModelInfo",
    "ModelNotFound",
    "OllamaBackend",
    "OpenAIBackend",
    "ShadowTutorError",
    "StreamClock",
    "student_backend",
    "teacher_api_key",
    "teacher_backend",
]


def _ollama(settings: Settings, timeout: float) -> Backend:
    return OllamaBackend(
        base_url=settings.student_base_url,
        model=settings.student_model,
        timeout=timeout,
        keep_alive=settings.student_keep_alive or None,
    )


def _openai_compatible(settings: Settings, timeout: float) -> Backend:
    return OpenAIBackend(
        base_url=settings.student_base_url,
        api_key=settings.student_api_key,
        model=settings.student_model,
        timeout=timeout,
        provider="openai-compatible",
    )


# SHADOWTUTOR_STUDENT_BACKEND value -> factory (settings, timeout) -> Backend.
STUDENT_BACKENDS: dict[str, Callable[[Settings, float], Backend]] = {
    "ollama": _ollama,
    "openai": _openai_compatible,
}


def student_backend(settings: Settings, *, timeout: float | None = None) -> Backend:
    """The student configured in settings (``SHADOWTUTOR_STUDENT_*``)."""
    factory = STUDENT_BACKENDS.get(settings.student_backend)
    if factory is None:
        raise BackendError(
            f"SHADOWTUTOR_STUDENT_BACKEND={settings.student_backend!r} is not a backend; "
            f"use {' or '.join(f'`{name}`' for name in STUDENT_BACKENDS)}"
        )
    return factory(settings, settings.student_timeout_s if timeout is None else timeout)


def teacher_api_key(settings: Settings) -> str:
    """The teacher's key: ``SHADOWTUTOR_TEACHER_API_KEY``, else ``OPENAI_API_KEY``."""
    return settings.teacher_api_key or os.environ.get("OPENAI_API_KEY", "")


def teacher_backend(settings: Settings, *, timeout: float = 120.0) -> OpenAIBackend:
    """The teacher configured in settings (``SHADOWTUTOR_TEACHER_*``, else ``OPENAI_API_KEY``)."""
    return OpenAIBackend(
        base_url=settings.teacher_base_url,
        api_key=teacher_api_key(settings),
        model=settings.teacher_model,
        timeout=timeout,
        provider="openai",
    )
