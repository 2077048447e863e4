"""The log's exceptions, in one place.

::

    ShadowTutorError
     ├── RecordError (ValueError)        a record that does not follow the schema
     ├── LogStorageError (RuntimeError)  the log's object storage cannot be used
     ├── CorruptPartError (ValueError)   a compressed part whose bytes do not decompress
     ├── LogReadError (OSError)          a log file that cannot be read (say a truncated
     │                                   Parquet part), in Python or in DuckDB
     └── TimezoneError (ValueError)      the display time zone is not a known IANA name
    LogWriteError (OSError)              a write that failed part way (says how many were taken)
"""

from __future__ import annotations

from shadowtutor.errors import ShadowTutorError


class RecordError(ShadowTutorError, ValueError):
    """A record that does not follow the schema; the message says which field and why."""


class LogStorageError(ShadowTutorError, RuntimeError):
    """The log's object storage cannot be used; the message names the variable to fix."""


class CorruptPartError(ShadowTutorError, ValueError):
    """A compressed part whose bytes do not decompress."""


class LogReadError(ShadowTutorError, OSError):
    """A log file that cannot be read (a truncated or corrupt Parquet part, a file DuckDB
    cannot read); the message names the file and what to do."""


class TimezoneError(ShadowTutorError, ValueError):
    """The configured display time zone is not a known IANA name."""


class LogWriteError(OSError):
    """``append_many`` failed part way (a full disk, say). ``written`` is how many of the
    records, from the start of the list, the writer took: their lines are on disk, or the
    rest of the one torn line is kept and written first by the next call, so they must not
    be sent again. The records after them were not written at all: re-send exactly those."""

    def __init__(self, written: int, cause: OSError):
        super().__init__(cause.errno, f"{cause.strerror or cause} ({written} records written)")
        self.written = written
        self.cause = cause
