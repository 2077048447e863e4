"""The settings' kill switch ``SHADOWTUTOR_KILL_SWITCH``: :func:`killed` is the one reader of
it (routing, the rollout's stage, the CLI and the pages ask it). The environment variable is read
on every call, so it acts at once, and wins over the settings' value (from Streamlit secrets,
say), as everywhere in the settings. Its own module so that routing and the rollout store, which
reads the kill switch too, need not import each other.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shadowtutor.config import Settings

log = logging.getLogger(__name__)

KILL_ENV = "SHADOWTUTOR_KILL_SWITCH"


def killed(settings: Settings | None = None) -> bool:
    """Whether the kill switch setting is on: the environment variable as it is now, else
    (unset) the value in ``settings`` (which may come from Streamlit secrets). The one reader
    of ``SHADOWTUTOR_KILL_SWITCH``; a value that is not a boolean counts as off, with a
    warning (routing must never fail a request)."""
    raw = os.environ.get(KILL_ENV)
    if raw is None:
        return bool(settings is not None and settings.kill_switch)
    from shadowtutor.config import SettingsError, parse_value

    try:
        return bool(parse_value(KILL_ENV, raw, bool))
    except SettingsError as exc:
        log.warning("%s; the kill switch counts as off", exc)
        return False


def env_killed() -> bool:
    """The kill switch without settings at hand (see :func:`killed`)."""
    return killed()
