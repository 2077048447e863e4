"""Old import path of the backends, kept so ``shadowtutor.backends.clients`` still imports.

Everything moved to :mod:`shadowtutor.backends` (``base``, ``ollama``, ``openai``); import
from there.
"""

from shadowtutor.backends import *  # noqa: F403
from shadowtutor.backends import __all__  # noqa: F401
