"""The shadow log record (schema version 2): building, validating, converting.

A record is a plain ``dict`` that serialises to one JSON line. Field names are the contract
between the collector, imports, DuckDB queries and tests (documented in the README):

    id, ts, schema_version, source, user_hash, conversation_id, category, language,
    messages, teacher, student, similarity, routing, metadata, request_id, student_name

Version 2 (several students): one record per (request, student). The records of one request
share ``request_id``; the one whose ``id`` equals it is the request's *primary* record, and
only the primary record's teacher cost and tokens are counted (the others repeat the teacher's
answer so each record is a whole pair). A version 1 record reads as the primary record of its
own request, answered by the default student (:data:`DEFAULT_STUDENT`).

``teacher`` and ``student`` are :data:`ANSWER_FIELDS` objects; ``similarity`` is
``{method, score}``; ``routing`` is ``{served_by, stage, bucket, eligible}``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from shadowtutor.errors import ShadowTutorError

SCHEMA_VERSION = 2
SUPPORTED_VERSIONS = (1, 2)
DEFAULT_STUDENT = "default"  # the single-student settings' student (shadowtutor.students)
SOURCES = ("live", "replay", "playground", "import", "demo")
ROLES = ("system", "user", "assistant", "tool", "developer")
ANSWER_FIELDS = (
    "model",
    "provider",
    "response",
    "latency_ms",
    "ttft_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "price_version",
    "error",
)
TOP_FIELDS = (
    "id",
    "ts",
    "schema_version",
    "source",
    "user_hash",
    "conversation_id",
    "category",
    "language",
    "messages",
    "teacher",
    "student",
    "similarity",
    "routing",
    "metadata",
    "request_id",
    "student_name",
)
_NUMERIC = ("latency_ms", "ttft_ms", "prompt_tokens", "completion_tokens", "cost_usd")
MAX_ID_LENGTH = 64  # the review queue's pair_id column (VARCHAR(64) on PostgreSQL)
_PSEUDONYM = re.compile(r"[0-9a-f]{16}")


# --- "success": one rule for the gate, the dashboards and the Home page ------------------
# The student was *asked* when its answer names a model or carries an error (an imported record
# may have only the error); it *succeeded* when it answered, that is it has a response and no
# error (a timeout is an error). The gate's success rate, the dashboards' student error rate and
# every student latency percentile count with this rule. The SQL forms take the column prefix:
# ``"student_"`` for the flat ``pairs`` view, ``"student."`` for the raw nested record.
STUDENT_ASKED_SQL = "({p}model IS NOT NULL OR {p}error IS NOT NULL)"
# (Asked and no error means a model is named, hence the model test in the second form.)
STUDENT_OK_SQL = "({p}model IS NOT NULL AND {p}error IS NULL AND {p}response IS NOT NULL)"


def student_asked_sql(prefix: str = "student_") -> str:
    return STUDENT_ASKED_SQL.format(p=prefix)


def student_ok_sql(prefix: str = "student_") -> str:
    return STUDENT_OK_SQL.format(p=prefix)


def student_asked(student: dict[str, Any] | None) -> bool:
    """The record's ``student`` answer says the student was asked (see the SQL above)."""
    return bool(student) and (student.get("model") is not None or student.get("error") is not None)


def student_succeeded(student: dict[str, Any] | None) -> bool:
    """The student was asked and answered: a response and no error."""
    return (
        student_asked(student)
        and student.get("error") is None
        and student.get("response") is not None
    )


class RecordError(ShadowTutorError, ValueError):
    """A record that does not follow the schema; the message says which field and why."""


def new_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_ts(ts: datetime) -> str:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ts(value: str) -> datetime:
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def pseudonymize(user: str | None, salt: str = "shadowtutor") -> str | None:
    """A stable pseudonymous id for a user (never store the raw e-mail)."""
    if not user:
        return None
    return hashlib.sha256(f"{salt}:{user}".encode()).hexdigest()[:16]


def pseudonymize_conversation(conversation_id: str | None) -> str | None:
    """A stable pseudonymous conversation id, like :func:`pseudonymize` for users: the same
    raw id always gives the same pseudonym, so a conversation stays together. Idempotent: a
    value that already has the pseudonym's form (16 lowercase hex digits) is kept, so
    replaying or re-importing a logged record does not hash it twice."""
    if not conversation_id:
        return None
    if _PSEUDONYM.fullmatch(conversation_id):
        return conversation_id
    return pseudonymize(f"conversation:{conversation_id}")


def empty_answer(**values: Any) -> dict[str, Any]:
    answer: dict[str, Any] = dict.fromkeys(ANSWER_FIELDS)
    answer.update(values)
    return answer


def make_record(
    *,
    messages: list[dict[str, Any]],
    teacher: dict[str, Any],
    student: dict[str, Any] | None = None,
    source: str = "live",
    ts: datetime | None = None,
    id: str | None = None,
    user_hash: str | None = None,
    conversation_id: str | None = None,
    category: str | None = None,
    language: str | None = None,
    similarity: dict[str, Any] | None = None,
    routing: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    request_id: str | None = None,
    student_name: str | None = None,
) -> dict[str, Any]:
    """Build a complete record; missing answer fields are filled with ``None``. Without a
    ``request_id`` the record is its own request's primary record; without a
    ``student_name`` it is the default student's."""
    id = id or new_id()
    return {
        "id": id,
        "ts": format_ts(ts or utc_now()),
        "schema_version": SCHEMA_VERSION,
        "source": source,
        "user_hash": user_hash,
        "conversation_id": conversation_id,
        "category": category,
        "language": language,
        "messages": messages,
        "teacher": empty_answer(**teacher),
        "student": empty_answer(**(student or {})),
        "similarity": similarity or {"method": None, "score": None},
        "routing": routing
        or {"served_by": "teacher", "stage": 0, "bucket": None, "eligible": None},
        "metadata": metadata or {},
        "request_id": request_id or id,
        "student_name": student_name or DEFAULT_STUDENT,
    }


def is_primary(record: dict[str, Any]) -> bool:
    """Whether the record carries its request's teacher cost (see the module docstring)."""
    return record.get("request_id") in (None, record.get("id"))


def secondary_id(request_id: str, student_name: str) -> str:
    """The id of a student's record that is not its request's primary one: stable (a replayed
    or recovered job gets the same id, so it is never logged twice) and short."""
    return hashlib.sha256(f"{request_id}|{student_name}".encode()).hexdigest()[:32]


def validate(obj: Any) -> dict[str, Any]:
    """Return the record normalised (missing optional fields filled) or raise RecordError."""
    if not isinstance(obj, dict):
        raise RecordError("a record must be a JSON object")
    unknown = set(obj) - set(TOP_FIELDS)
    if unknown:
        raise RecordError(f"unknown field(s): {', '.join(sorted(unknown))}")
    for name in ("id", "ts", "messages", "teacher"):
        if obj.get(name) in (None, ""):
            raise RecordError(f"missing required field '{name}'")
    if not isinstance(obj["id"], str):
        raise RecordError("'id' must be a string")
    if len(obj["id"]) > MAX_ID_LENGTH:
        raise RecordError(
            f"'id' is {len(obj['id'])} characters long; at most {MAX_ID_LENGTH} are allowed "
            "(shorten or hash the ids in the file)"
        )
    if obj.get("schema_version", SCHEMA_VERSION) not in SUPPORTED_VERSIONS:
        raise RecordError(
            f"schema_version {obj.get('schema_version')!r} is not supported (expected 1 or 2)"
        )
    for name in ("request_id", "student_name"):
        value = obj.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise RecordError(f"'{name}' must be a non-empty string")
        if isinstance(value, str) and len(value) > MAX_ID_LENGTH:
            raise RecordError(f"'{name}' is longer than {MAX_ID_LENGTH} characters")
    try:
        ts = format_ts(parse_ts(str(obj["ts"])))
    except ValueError:
        raise RecordError(f"'ts' is not an ISO 8601 timestamp: {obj['ts']!r}") from None
    except OverflowError:  # e.g. 9999-12-31T23:59:59-05:00 is past year 9999 in UTC
        raise RecordError(f"'ts' is out of range (after 9999 in UTC): {obj['ts']!r}") from None
    source = obj.get("source") or "import"
    if source not in SOURCES:
        raise RecordError(f"'source' must be one of {', '.join(SOURCES)}, not {source!r}")
    record = make_record(
        id=obj["id"],
        ts=parse_ts(ts),
        source=source,
        messages=validate_messages(obj["messages"]),
        teacher=_validate_answer("teacher", obj["teacher"], required=True),
        student=_validate_answer("student", obj.get("student") or {}, required=False),
        user_hash=_opt_str(obj, "user_hash"),
        conversation_id=_opt_str(obj, "conversation_id"),
        category=_opt_str(obj, "category"),
        language=_opt_str(obj, "language"),
        similarity=_validate_similarity(obj.get("similarity")),
        routing=obj.get("routing") if isinstance(obj.get("routing"), dict) else None,
        metadata=obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {},
        request_id=obj.get("request_id"),
        student_name=obj.get("student_name"),
    )
    if record["routing"] is not None:
        record["routing"] = {
            "served_by": record["routing"].get("served_by", "teacher"),
            "stage": record["routing"].get("stage", 0),
            "bucket": record["routing"].get("bucket"),
            "eligible": record["routing"].get("eligible"),
        }
    return record


def _opt_str(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise RecordError(f"'{name}' must be a string")
    return value


def validate_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise RecordError("'messages' must be a non-empty list of chat messages")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg:
            raise RecordError(f"messages[{i}] must be an object with a 'role'")
        if msg["role"] not in ROLES:
            raise RecordError(f"messages[{i}].role {msg['role']!r} is not a chat role")
        if not isinstance(msg.get("content"), str | list | type(None)):
            raise RecordError(f"messages[{i}].content must be text or a list of parts")
    return messages


def _validate_answer(name: str, answer: Any, *, required: bool) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise RecordError(f"'{name}' must be an object")
    extra = set(answer) - set(ANSWER_FIELDS)
    if extra:
        raise RecordError(f"unknown field(s) in '{name}': {', '.join(sorted(extra))}")
    if required and not answer.get("model"):
        raise RecordError(f"'{name}.model' is required")
    if required and answer.get("response") is None and not answer.get("error"):
        raise RecordError(f"'{name}' needs a 'response' or an 'error'")
    for key in _NUMERIC:
        value = answer.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise RecordError(f"'{name}.{key}' must be a number")
        if value is not None and not math.isfinite(value):
            raise RecordError(f"'{name}.{key}' must be a finite number, not {value!r}")
        if value is not None and value < 0:
            raise RecordError(f"'{name}.{key}' must not be negative")
    if answer.get("response") is not None and not isinstance(answer["response"], str):
        raise RecordError(f"'{name}.response' must be text")
    return answer


def _validate_similarity(sim: Any) -> dict[str, Any] | None:
    if sim is None:
        return None
    if not isinstance(sim, dict):
        raise RecordError("'similarity' must be an object {method, score}")
    score = sim.get("score")
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
            raise RecordError("'similarity.score' must be a number from 0 to 1")
    return {"method": sim.get("method"), "score": score}


def openai_id(messages: list[dict[str, Any]]) -> str:
    """The id of an OpenAI chat line: a hash of its messages, so the same line imported or
    replayed twice gets the same id."""
    digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()[:32]
    return f"oai-{digest}"


def from_openai_chat(obj: Any, *, line_no: int | None = None) -> dict[str, Any]:
    """Convert an OpenAI chat fine-tuning line ``{"messages": [...]}`` into a record.

    The last assistant message is the teacher's answer; the messages before it are the prompt.
    The id is a hash of the content, so importing the same line twice yields the same id.
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("messages"), list):
        raise RecordError("an OpenAI chat line must be an object with a 'messages' list")
    messages = validate_messages(obj["messages"])
    last = messages[-1]
    if last.get("role") != "assistant" or not isinstance(last.get("content"), str):
        raise RecordError("the last message must be the assistant's (teacher's) answer")
    prompt = messages[:-1]
    if not prompt:
        raise RecordError("there is no prompt before the assistant's answer")
    extra = {k: v for k, v in obj.items() if k != "messages"}
    return make_record(
        id=openai_id(messages),
        source="import",
        messages=prompt,
        teacher={"model": str(obj.get("model") or "unknown"), "response": last["content"]},
        metadata=extra if extra else {},
    )


def _refuse_constant(name: str) -> Any:
    raise RecordError(f"not standard JSON: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise RecordError(f"not standard JSON: the number {text} is out of range")
    return value


def loads(line: str | bytes) -> Any:
    """Strict JSON: ``NaN``, ``Infinity`` and numbers beyond a float (``1e999``) are refused,
    invalid UTF-8 and too deep nesting are a RecordError, never another exception."""
    try:
        return json.loads(line, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise RecordError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise RecordError(f"not valid UTF-8 (byte {exc.start + 1} of the line)") from None
    except RecursionError:
        raise RecordError("not valid JSON (nested too deeply)") from None


def parse_line(line: str | bytes) -> dict[str, Any]:
    """Parse one JSON line in either our schema or OpenAI chat format into a valid record."""
    obj = loads(line)
    if isinstance(obj, dict) and "teacher" not in obj and "messages" in obj:
        return from_openai_chat(obj)
    return validate(obj)


_DUMP_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE


def _non_finite(value: Any) -> bool:
    """Whether a NaN or an infinity hides anywhere in ``value`` (strings are skipped: they
    are most of a record's bytes and cannot hold one)."""
    kind = type(value)
    if kind is float:
        return value != value or value in (math.inf, -math.inf)
    if kind is dict:
        value = value.values()
    elif kind is not list and kind is not tuple:
        return False
    for item in value:  # a plain loop: any() over a generator costs twice as much here
        if type(item) is not str and _non_finite(item):
            return True
    return False


def dump_line(record: dict[str, Any]) -> bytes:
    """One log line as UTF-8 bytes, newline included; standard JSON only: a NaN or an
    infinity raises ValueError (orjson would write ``null`` for them), a value JSON cannot
    hold (an integer beyond 64 bits, an object) raises TypeError."""
    if _non_finite(record):
        raise ValueError("Out of range float values are not JSON compliant (NaN or infinity)")
    try:
        return orjson.dumps(record, option=_DUMP_OPTIONS)
    except orjson.JSONEncodeError as exc:
        raise TypeError(str(exc)) from None


def dumps(record: dict[str, Any]) -> str:
    """One JSON line without its newline (see :func:`dump_line`)."""
    return dump_line(record)[:-1].decode()


def check_for_log(record: dict[str, Any]) -> dict[str, Any]:
    """The record as it will be written, or RecordError: it must pass :func:`validate` (so
    ``logs validate`` never flags what the collector wrote) and serialise as standard JSON."""
    validate(record)
    try:
        dumps(record)
    except (TypeError, ValueError) as exc:
        raise RecordError(f"the record cannot be written as standard JSON ({exc})") from None
    return record


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """The last user message's text (for tables and detection)."""
    for msg in reversed(messages):
        if msg.get("role") == "user":
            content = msg.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            return content or ""
    return ""
