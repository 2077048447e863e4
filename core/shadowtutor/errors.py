"""The one base class for errors a user can cause and fix.

The CLI turns these into a one-line message (no traceback) and pages into ``st.error``; the
message always names what to fix.
"""


class ShadowTutorError(Exception):
    """An error with a message meant for the person running ShadowTutor."""


def error_text(exc: BaseException) -> str:
    """How a failure is written into a record or shown beside an answer: ``kind: message``
    (the backend's error kind, else the exception's class), at most 500 characters."""
    kind = getattr(exc, "kind", None) or type(exc).__name__
    return f"{kind}: {exc}"[:500]
