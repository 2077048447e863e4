"""The feedback record: users' reactions to an answer, defined once (fields, validation, the
DuckDB ``feedback`` view).

Feedback is its own record kind, keyed by the answer's ``request_id`` (the id the proxy's
``X-ShadowTutor-Request-Id`` header and ``shadowtutor.request_id(response)`` give the app).
It lives beside the pairs in the same log, in its own part, so no reader of pairs ever meets
it::

    feedback/date=YYYY-MM-DD/<host>-<pid>-<token>.jsonl     one file per day and writer process

written by the same writer as the pairs (:class:`shadowtutor.log.write.LogWriter` with
``part="feedback"``: whole lines, a torn line resumed, never doubled) and, with the log in a
bucket, spooled and uploaded the same way.

Kinds (:data:`KINDS`): ``thumbs`` (value 1 up, -1 down), ``rating`` (a number from 0 to its
``scale``, 5 unless given), ``correction`` (``text``: the answer the user wanted), ``flag``
(``text``: the reason, optional), and the implicit ``regenerate`` (the conversation sent the
same last message again) and ``abandoned`` (the conversation sent nothing more after this
answer). :func:`event` reads what an app sends (``"up"``/``"down"`` too) into a record;
:func:`validate` checks a stored one. An event's ``id`` is stable: the app's ``event_id`` if
it sent one, else a hash of what it says, so the same event sent twice is one event
(a duplicate, counted by whoever takes it, and kept once by the view).
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, fields
from dataclasses import field as dc_field
from datetime import datetime
from typing import Any

from shadowtutor.log import schema, storage
from shadowtutor.log.errors import CorruptPartError, LogReadError, RecordError

PART = "feedback"  # the log's folder of feedback records (beside jsonl/ and parquet/)
RECORD = "feedback"  # the record kind
VERSION = 1
EXPLICIT = ("thumbs", "rating", "correction", "flag")
IMPLICIT = ("regenerate", "abandoned")
KINDS = EXPLICIT + IMPLICIT
SOURCES = ("app", "import", "implicit", "demo")
DEFAULT_SCALE = 5.0
MAX_TEXT = 32_000
MAX_COMMENT = 4_000
_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
_THUMBS = {"up": 1.0, "down": -1.0, "+1": 1.0, "-1": -1.0, "1": 1.0}


class FeedbackError(RecordError):
    """A feedback event that cannot be taken; the message says which field and why."""


@dataclass
class Feedback:
    """One feedback event (the record's fields, each naming its column type)."""

    id: str = schema._column("text", "")
    ts: str = schema._column("text", "")
    record: str = schema._column("text", RECORD)
    feedback_version: int = schema._column("int", VERSION)
    request_id: str = schema._column("text", "")
    kind: str = schema._column("text", "")
    value: float | None = schema._column("double")  # thumbs: 1 / -1; rating: the rating
    scale: float | None = schema._column("double")  # a rating's top value
    text: str | None = schema._column("text")  # a correction's answer; a flag's reason
    comment: str | None = schema._column("text")
    source: str = schema._column("text", "app")
    # whether whoever took the event knew the request id (it answered it, recently); the
    # view's `paired` says whether the log holds the request's pair
    matched: bool | None = schema._column("bool")
    user_hash: str | None = schema._column("text")
    conversation_id: str | None = schema._column("text")
    metadata: dict[str, Any] = schema._column("json", {})


FIELDS = tuple(f.name for f in fields(Feedback))
COLUMNS = schema.duckdb_columns(Feedback)


def event_id(request_id: str, kind: str, source: str, what: tuple[Any, ...]) -> str:
    """The stable id of an event (see the module docstring)."""
    text = "\x1f".join([request_id, kind, source, *(repr(v) for v in what)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _request_id(value: Any, name: str = "request_id") -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise FeedbackError(
            f"'{name}' must be the answer's id (1 to 64 letters, digits or _.:-), "
            f"not {_short(value)}"
        )
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FeedbackError(f"'{name}' must be a finite number, not {_short(value)}")
    return float(value)


def _text(value: Any, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise FeedbackError(f"'{name}' must be text, not {_short(value)}")
    if len(value) > limit:
        raise FeedbackError(f"'{name}' is {len(value)} characters long (at most {limit})")
    return value


def _thumbs(value: Any) -> float:
    if value is True or value is False:
        return 1.0 if value else -1.0
    if isinstance(value, str) and value.strip().lower() in _THUMBS:
        return _THUMBS[value.strip().lower()]
    if isinstance(value, int | float) and value in (1, -1):
        return float(value)
    raise FeedbackError(
        f"a thumbs 'value' is up or down (or 1 / -1, true / false), not {_short(value)}"
    )


def _value(kind: str, obj: dict[str, Any]) -> tuple[float | None, float | None, str | None]:
    """(value, scale, text) of one kind."""
    value = obj.get("value")
    if kind == "thumbs":
        return _thumbs(value), None, None
    if kind == "rating":
        scale = DEFAULT_SCALE if obj.get("scale") is None else _number(obj["scale"], "scale")
        rating = _number(value, "value")
        if scale <= 0 or not 0 <= rating <= scale:
            raise FeedbackError(
                f"a rating 'value' is from 0 to its scale ({scale:g}), not {rating:g}"
            )
        return rating, scale, None
    if kind == "correction":
        text = _text(value if obj.get("text") is None else obj["text"], "text", MAX_TEXT)
        if not text or not text.strip():
            raise FeedbackError("a correction needs the corrected answer in 'value' (text)")
        return None, None, text
    if kind == "flag":
        return (
            None,
            None,
            _text(value if obj.get("text") is None else obj["text"], "text", MAX_TEXT),
        )
    if value is not None:
        raise FeedbackError(f"a {kind} event has no 'value'")
    return None, None, None


_ACCEPTED = {
    "request_id", "kind", "value", "scale", "text", "comment", "event_id", "user",
    "conversation_id", "ts", "metadata",
}  # fmt: skip


def event(
    obj: Any,
    *,
    source: str = "app",
    now: datetime | None = None,
    matched: bool | None = None,
) -> dict[str, Any]:
    """The record of one event as an app sends it (``request_id``, ``kind``, ``value``,
    optional ``comment``, ``event_id``, ``user``, ``conversation_id``, ``ts``, ``metadata``), or
    :class:`FeedbackError` saying what is wrong."""
    if not isinstance(obj, dict):
        raise FeedbackError("a feedback event must be a JSON object")
    unknown = set(obj) - _ACCEPTED
    if unknown:
        raise FeedbackError(f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    rid = _request_id(obj.get("request_id"))
    kind = obj.get("kind")
    if kind not in KINDS:
        raise FeedbackError(f"'kind' must be one of {', '.join(KINDS)}, not {_short(kind)}")
    if source not in SOURCES:
        raise FeedbackError(f"'source' must be one of {', '.join(SOURCES)}, not {source!r}")
    value, scale, text = _value(kind, obj)
    comment = _text(obj.get("comment"), "comment", MAX_COMMENT)
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise FeedbackError("'metadata' must be an object")
    ts = now or schema.utc_now()
    if obj.get("ts") is not None:
        try:
            ts = schema.parse_ts(str(obj["ts"]))
        except (ValueError, OverflowError):
            raise FeedbackError(f"'ts' is not an ISO 8601 time: {_short(obj['ts'])}") from None
    given = obj.get("event_id")
    if given is not None:
        given = _request_id(given, "event_id")
        eid = event_id(rid, kind, source, (given,))
    else:
        eid = event_id(rid, kind, source, (value, scale, text, comment))
    user = obj.get("user")
    if user is not None and not isinstance(user, str):
        raise FeedbackError("'user' must be text")
    conversation = _text(obj.get("conversation_id"), "conversation_id", 200)
    return {
        "id": eid,
        "ts": schema.format_ts(ts),
        "record": RECORD,
        "feedback_version": VERSION,
        "request_id": rid,
        "kind": kind,
        "value": value,
        "scale": scale,
        "text": text,
        "comment": comment,
        "source": source,
        "matched": matched,
        "user_hash": schema.pseudonymize(user),
        "conversation_id": schema.pseudonymize_conversation(conversation),
        "metadata": metadata,
    }


def validate(obj: Any) -> dict[str, Any]:
    """A stored feedback record, checked (every field of :class:`Feedback`, none else)."""
    if not isinstance(obj, dict):
        raise FeedbackError("a feedback record must be a JSON object")
    unknown = set(obj) - set(FIELDS)
    if unknown:
        raise FeedbackError(f"unknown field(s): {', '.join(sorted(unknown))}")
    if obj.get("record") != RECORD or obj.get("feedback_version") != VERSION:
        raise FeedbackError(f"not a feedback record of version {VERSION}")
    if obj.get("source") not in SOURCES:
        raise FeedbackError(f"'source' must be one of {', '.join(SOURCES)}")
    _request_id(obj.get("id"), "id")
    given = {k: obj.get(k) for k in ("request_id", "kind", "comment", "metadata")}
    if obj.get("kind") in ("correction", "flag"):
        given["text"] = obj.get("text")
    elif obj.get("kind") in ("thumbs", "rating"):
        given |= {"value": obj.get("value"), "scale": obj.get("scale")}
    again = event(given, source=obj["source"], now=_ts(obj.get("ts")), matched=obj.get("matched"))
    return again | {
        k: obj.get(k) for k in ("id", "user_hash", "conversation_id") if obj.get(k) is not None
    }


def _ts(value: Any) -> datetime:
    try:
        return schema.parse_ts(str(value))
    except (ValueError, OverflowError):
        raise FeedbackError(f"'ts' is not an ISO 8601 time: {_short(value)}") from None


def negative_sql(prefix: str = "") -> str:
    """SQL: the event says the answer was bad (thumbs down, a rating at most 40 % of its
    scale, a correction, a flag, a regenerate). An answer's thumbs count by the latest one
    (:data:`DISLIKED_SQL`)."""
    p = prefix
    return (
        f"(({p}kind = 'thumbs' AND {p}value < 0) OR ({p}kind = 'rating' AND "
        f"{p}value <= 0.4 * {p}scale) OR {p}kind IN ('correction', 'flag', 'regenerate'))"
    )


# The request ids whose answer users disliked: the latest thumbs is down, or any other event
# says it was bad (a thumbs changed from down to up is no longer a complaint).
DISLIKED_SQL = (
    "SELECT request_id FROM feedback GROUP BY request_id HAVING "
    "coalesce(arg_max(value, ts) FILTER (WHERE kind = 'thumbs') < 0, false) "
    f"OR coalesce(bool_or({negative_sql()}) FILTER (WHERE kind <> 'thumbs'), false)"
)


def read_sql(urls: list[str]) -> str:
    """The stored feedback records of the JSONL files ``urls`` (DuckDB), valid lines only,
    each event once (the first of its id)."""
    cols = "{" + ", ".join(f"'{k}': '{v}'" for k, v in COLUMNS.items()) + "}"
    files = "[" + ", ".join("'" + u.replace("'", "''") + "'" for u in urls) + "]"
    kinds = ", ".join(f"'{k}'" for k in KINDS)
    return (
        f"SELECT * EXCLUDE (ts, rn), ts FROM (SELECT *, CAST(left(replace(ts_text, 'T', ' '), 23) "
        "AS TIMESTAMP) AS ts, row_number() OVER (PARTITION BY id ORDER BY ts_text) AS rn FROM ("
        f"SELECT * EXCLUDE (ts), ts AS ts_text FROM read_json({files}, "
        f"format='newline_delimited', columns={cols}, ignore_errors=true) "
        f"WHERE record = '{RECORD}' AND id IS NOT NULL AND request_id IS NOT NULL "
        f"AND kind IN ({kinds}) AND "
        "try_cast(left(replace(ts, 'T', ' '), 23) AS TIMESTAMP) IS NOT NULL)) WHERE rn = 1"
    )


EMPTY_SQL = (
    "SELECT "
    + ", ".join(f"CAST(NULL AS {t}) AS {k}" for k, t in COLUMNS.items() if k != "ts")
    + ", CAST(NULL AS TIMESTAMP) AS ts WHERE false"
)


def files(log_dir: Any) -> list[Any]:
    """The feedback part's JSONL files (plain or compressed)."""
    return storage.resolve(log_dir).files(PART, storage.JSONL_SUFFIXES)


def unreadable(exc: Exception) -> LogReadError:
    """The error to raise when DuckDB cannot read the feedback part (a corrupt file)."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return LogReadError(
        f"the log's feedback part cannot be read ({first}); `shadowtutor feedback stats` names "
        "the bad file: move it out of the log folder"
    )


def create_view(con: Any, log_dir: Any) -> None:
    """Create (or replace) the view ``feedback`` on a DuckDB connection prepared for the log
    (joinable to ``pairs`` on ``request_id``)."""
    loc = storage.resolve(log_dir)
    urls = [loc.url(p) for p in files(log_dir)]
    con.execute(f"CREATE OR REPLACE TEMP VIEW feedback AS {read_sql(urls) if urls else EMPTY_SQL}")


@dataclass
class Scan:
    """What the feedback part holds: valid events (each id once), lines repeating an
    event already seen, and bad lines (with their reasons; a torn last line after a crash
    is one)."""

    events: int = 0
    repeated: int = 0
    bad: list[tuple[str, int, str]] = dc_field(default_factory=list)
    ids: set[str] = dc_field(default_factory=set)


def scan(log_dir: Any) -> Scan:
    """Read every feedback line of the log and check it (:func:`validate`)."""
    loc = storage.resolve(log_dir)
    out = Scan()
    for path in files(log_dir):
        try:
            data = loc.read_bytes(path)
        except CorruptPartError as exc:
            out.bad.append((str(path), 0, str(exc)))
            continue
        for i, raw in enumerate(data.split(b"\n"), start=1):
            if not raw.strip():
                continue
            try:
                rec = validate(schema.loads(raw))
            except RecordError as exc:
                out.bad.append((str(path), i, str(exc)))
                continue
            if rec["id"] in out.ids:
                out.repeated += 1
            else:
                out.ids.add(rec["id"])
                out.events += 1
    return out
