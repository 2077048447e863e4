"""The one base class for errors a user can cause and fix.

The CLI turns these into a one-line message (no traceback) and pages into ``st.error``; the
message always names what to fix.
"""


class ShadowTutorError(Exception):
    """An error with a message meant for the person running ShadowTutor."""
