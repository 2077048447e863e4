"""The shadow log record (schema version 3), defined once: fields, validation, encoding.

A record is a plain ``dict`` that serialises to one JSON line. Its fields are the dataclasses
:class:`Record`, :class:`Request`, :class:`Answer`, :class:`Similarity`, :class:`Agreement`
and :class:`Routing` below; everything
else that names them is derived from those: the field lists the validator checks
(:data:`TOP_FIELDS`, :data:`ANSWER_FIELDS`), the DuckDB columns the log's SQL reads
(:data:`RAW_COLUMNS`, :data:`ANSWER_STRUCT`) and the Parquet schema of a compacted part
(:data:`PARQUET_SCHEMA`). The field names are the contract between the collector, imports,
DuckDB queries and tests (documented in the README).

Version 2 (several students): one record per (request, student). The records of one request
share ``request_id``; the one whose ``id`` equals it is the request's *primary* record, and
only the primary record's teacher cost and tokens are counted (the others repeat the teacher's
answer so each record is a whole pair). A version 1 record reads as the primary record of its
own request, answered by the default student (:data:`DEFAULT_STUDENT`).

Version 3 (what was asked and answered): the record names its ``protocol`` (``openai.chat``)
and its ``request`` (its kind: ``plain``, ``tools``, ``json_object``, ``json_schema``,
``images``; the tool names; hashes of the tool definitions and of the JSON schema); each
answer carries its ``tool_calls`` (``[{name, arguments}]``, the arguments exactly as sent),
``refusal`` and ``finish_reason``; ``agreement`` compares the two answers by what they are
(text, tool calls, JSON), with its method. Versions 1 and 2 read as before, their request of
kind ``plain`` (:func:`validate`).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from typing import Any, get_type_hints

import orjson
import pyarrow as pa

from shadowtutor.log.errors import RecordError

# --- the record, defined once ------------------------------------------------------------
# Each field names its column type: DuckDB's name and Arrow's type (Parquet). ``json`` is a
# nested free-form value (messages, metadata), kept as JSON text in DuckDB and Parquet.
_TYPES: dict[str, tuple[str, pa.DataType]] = {
    "text": ("VARCHAR", pa.string()),
    "int": ("INTEGER", pa.int32()),
    "bigint": ("BIGINT", pa.int64()),
    "double": ("DOUBLE", pa.float64()),
    "bool": ("BOOLEAN", pa.bool_()),
    "json": ("JSON", pa.string()),
}


def _column(kind: str, default: Any = None) -> Any:
    if isinstance(default, list | dict):
        return field(default_factory=type(default), metadata={"kind": kind})
    return field(default=default, metadata={"kind": kind})


@dataclass
class Answer:
    """One model's answer (the teacher's or the student's)."""

    model: str | None = _column("text")
    provider: str | None = _column("text")
    response: str | None = _column("text")
    latency_ms: float | None = _column("double")
    ttft_ms: float | None = _column("double")
    prompt_tokens: int | None = _column("bigint")
    completion_tokens: int | None = _column("bigint")
    cost_usd: float | None = _column("double")
    price_version: str | None = _column("text")
    error: str | None = _column("text")
    tool_calls: list[dict[str, Any]] | None = _column("json")  # [{name, arguments}], version 3
    refusal: str | None = _column("text")
    finish_reason: str | None = _column("text")
    # Prompt tokens written to / read from a prompt cache (Anthropic's cache creation and cache
    # read, OpenAI's cached tokens): part of prompt_tokens, priced at the cache prices.
    cache_creation_tokens: int | None = _column("bigint")
    cache_read_tokens: int | None = _column("bigint")


@dataclass
class Request:
    """What was asked, besides the messages (version 3; older records: kind ``plain``)."""

    kind: str | None = _column("text", "plain")
    tools: list[str] | None = _column("json")  # the tool names, in the request's order
    tools_hash: str | None = _column("text")  # of the tool definitions (canonical JSON)
    schema_hash: str | None = _column("text")  # of the response format's JSON schema
    # the request's tools (or functions), tool_choice, parallel_tool_calls and response_format
    # as the app sent them, for review, export and replay (version 3; a record without it: None)
    features: dict[str, Any] | None = _column("json")


@dataclass
class Similarity:
    method: str | None = _column("text")
    score: float | None = _column("double")


@dataclass
class Agreement:
    """How far the student's answer agrees with the teacher's, by what they are (version 3):
    ``kind`` ``text`` (the similarity), ``tool_calls`` or ``json``; ``score`` in 0..1;
    ``details`` the parts of the score (name, required and all arguments; validity, fields)."""

    kind: str | None = _column("text")
    method: str | None = _column("text")
    score: float | None = _column("double")
    details: dict[str, Any] | None = _column("json")


@dataclass
class Routing:
    served_by: str | None = _column("text", "teacher")
    stage: float | None = _column("double", 0)
    bucket: float | None = _column("double")
    eligible: bool | None = _column("bool")
    reason: str | None = _column("text")  # why the teacher served a request routed to the student
    # The request router (shadowtutor.router) in routed mode: its version, the request's
    # P(acceptable) and the category's threshold (None: no router decided). Optional fields
    # of version 3: older records read them as None.
    router_version: int | None = _column("int")
    router_score: float | None = _column("double")
    router_threshold: float | None = _column("double")
    # cascade mode: the validator's P(acceptable) of the student's answer and its threshold
    # (the answer was sent back to the teacher when the score is below it)
    validator_score: float | None = _column("double")
    validator_threshold: float | None = _column("double")


@dataclass
class Record:
    """One logged pair. ``request_id`` and ``student_name`` are new in version 2;
    ``protocol``, ``request`` and ``agreement`` in version 3."""

    id: str = _column("text", "")
    ts: str = _column("text", "")
    schema_version: int = _column("int", 3)
    source: str | None = _column("text")
    user_hash: str | None = _column("text")
    conversation_id: str | None = _column("text")
    category: str | None = _column("text")
    language: str | None = _column("text")
    messages: list[dict[str, Any]] = _column("json", [])
    teacher: Answer = field(default_factory=Answer)
    student: Answer = field(default_factory=Answer)
    similarity: Similarity = field(default_factory=Similarity)
    routing: Routing = field(default_factory=Routing)
    metadata: dict[str, Any] = _column("json", {})
    request_id: str | None = _column("text")
    student_name: str | None = _column("text")
    protocol: str | None = _column("text")
    request: Request = field(default_factory=Request)
    agreement: Agreement = field(default_factory=Agreement)


def _nested(cls: type, name: str) -> type | None:
    hint = get_type_hints(cls)[name]
    return hint if isinstance(hint, type) and is_dataclass(hint) else None


def duckdb_type(cls: type, names: tuple[str, ...] | None = None) -> str:
    """The DuckDB STRUCT of a dataclass of the record (of the fields ``names`` only)."""
    columns = duckdb_columns(cls)
    picked = names or tuple(columns)
    return "STRUCT(" + ", ".join(f"{n} {columns[n]}" for n in picked) + ")"


def duckdb_columns(cls: type) -> dict[str, str]:
    out = {}
    for f in fields(cls):
        inner = _nested(cls, f.name)
        out[f.name] = duckdb_type(inner) if inner else _TYPES[f.metadata["kind"]][0]
    return out


def arrow_type(cls: type) -> pa.StructType:
    return pa.struct(arrow_fields(cls))


def arrow_fields(cls: type) -> list[pa.Field[pa.DataType]]:
    out = []
    for f in fields(cls):
        inner = _nested(cls, f.name)
        out.append(pa.field(f.name, arrow_type(inner) if inner else _TYPES[f.metadata["kind"]][1]))
    return out


def _defaults(cls: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(cls):
        if f.default_factory is not MISSING:
            out[f.name] = f.default_factory()
        else:
            out[f.name] = f.default
    return out


TOP_FIELDS = tuple(f.name for f in fields(Record))
ANSWER_FIELDS = tuple(f.name for f in fields(Answer))
_NUMERIC = tuple(f.name for f in fields(Answer) if f.metadata["kind"] in ("double", "bigint"))
ANSWER_STRUCT = duckdb_type(Answer)
RAW_COLUMNS = duckdb_columns(Record)  # how DuckDB reads a JSONL line
PARQUET_SCHEMA = pa.schema(arrow_fields(Record))  # the columns of a compacted Parquet part

SCHEMA_VERSION = 3
SUPPORTED_VERSIONS = (1, 2, 3)
PROTOCOLS = ("openai.chat", "anthropic.messages", "openai.responses")
KINDS = ("plain", "tools", "json_object", "json_schema", "images")
DEFAULT_STUDENT = "default"  # the single-student settings' student (shadowtutor.students)
SOURCES = ("live", "replay", "playground", "import", "demo")
ROLES = ("system", "user", "assistant", "tool", "developer")
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


# The student's server refused a feature of the request (tools, a JSON schema, images): the
# collector records the error "unsupported: <feature> (...)". Such a pair is counted apart
# from quality failures: the student was asked, but it is no failure of its answers.
UNSUPPORTED = "unsupported:"
STUDENT_UNSUPPORTED_SQL = "({p}error IS NOT NULL AND starts_with({p}error, 'unsupported:'))"


def student_unsupported_sql(prefix: str = "student_") -> str:
    return STUDENT_UNSUPPORTED_SQL.format(p=prefix)


def student_unsupported(student: dict[str, Any] | None) -> bool:
    """The student's server refused the request's feature (see the SQL above)."""
    error = (student or {}).get("error")
    return isinstance(error, str) and error.startswith(UNSUPPORTED)


def student_asked_sql(prefix: str = "student_") -> str:
    return STUDENT_ASKED_SQL.format(p=prefix)


def student_ok_sql(prefix: str = "student_") -> str:
    return STUDENT_OK_SQL.format(p=prefix)


def student_asked(student: dict[str, Any] | None) -> bool:
    """The record's ``student`` answer says the student was asked (see the SQL above)."""
    if not student:
        return False
    return student.get("model") is not None or student.get("error") is not None


def student_succeeded(student: dict[str, Any] | None) -> bool:
    """The student was asked and answered: a response and no error."""
    if not student or not student_asked(student):
        return False
    return student.get("error") is None and student.get("response") is not None


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
    protocol: str | None = "openai.chat",
    request: dict[str, Any] | None = None,
    agreement: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a complete record; missing answer fields are filled with ``None``. Without a
    ``request_id`` the record is its own request's primary record; without a
    ``student_name`` it is the default student's; without a ``request`` a plain one."""
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
        "similarity": similarity or _defaults(Similarity),
        "routing": routing or _defaults(Routing),
        "metadata": metadata or {},
        "request_id": request_id or id,
        "student_name": student_name or DEFAULT_STUDENT,
        "protocol": protocol,
        "request": _defaults(Request) | (request or {}),
        "agreement": _defaults(Agreement) | (agreement or {}),
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
            f"schema_version {obj.get('schema_version')!r} is not supported "
            f"(expected {', '.join(map(str, SUPPORTED_VERSIONS))})"
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
        protocol=_opt_str(obj, "protocol") or "openai.chat",
        request=_validate_request(obj.get("request")),
        agreement=_validate_agreement(obj.get("agreement")),
    )
    if record["routing"] is not None:
        given = record["routing"]
        record["routing"] = {k: given.get(k, d) for k, d in _defaults(Routing).items()}
    return record


def _validate_request(request: Any) -> dict[str, Any]:
    """The request's fields; a record before version 3 (none) asked a ``plain`` request."""
    if request is None:
        return _defaults(Request)
    if not isinstance(request, dict):
        raise RecordError(
            "'request' must be an object {kind, tools, tools_hash, schema_hash, features}"
        )
    extra = set(request) - set(_defaults(Request))
    if extra:
        raise RecordError(f"unknown field(s) in 'request': {', '.join(sorted(extra))}")
    out = _defaults(Request) | request
    if out["kind"] is None:
        out["kind"] = "plain"
    if out["kind"] not in KINDS:
        raise RecordError(f"'request.kind' must be one of {', '.join(KINDS)}, not {out['kind']!r}")
    tools = out["tools"]
    if tools is not None and not (
        isinstance(tools, list) and all(isinstance(t, str) for t in tools)
    ):
        raise RecordError("'request.tools' must be a list of tool names")
    features = out["features"]
    if features is not None and not isinstance(features, dict):
        raise RecordError(
            "'request.features' must be an object {tools, tool_choice, parallel_tool_calls, "
            "functions, response_format}"
        )
    return out


def _validate_agreement(agreement: Any) -> dict[str, Any]:
    if agreement is None:
        return _defaults(Agreement)
    if not isinstance(agreement, dict):
        raise RecordError("'agreement' must be an object {kind, method, score, details}")
    extra = set(agreement) - set(_defaults(Agreement))
    if extra:
        raise RecordError(f"unknown field(s) in 'agreement': {', '.join(sorted(extra))}")
    score = agreement.get("score")
    if score is not None and (
        isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1
    ):
        raise RecordError("'agreement.score' must be a number from 0 to 1")
    if agreement.get("details") is not None and not isinstance(agreement["details"], dict):
        raise RecordError("'agreement.details' must be an object")
    return _defaults(Agreement) | agreement


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
    calls = answer.get("tool_calls")
    if calls is not None and not (
        isinstance(calls, list)
        and all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in calls)
    ):
        raise RecordError(f"'{name}.tool_calls' must be a list of {{name, arguments}}")
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


_DUMP_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE


_INF, _NINF = math.inf, -math.inf


def _non_finite(value: Any) -> bool:
    """Whether a NaN or an infinity hides anywhere in ``value``. Only floats and containers
    are looked at, in the loop itself: a version 3 record is mostly strings and nulls (the
    request's and the agreement's empty fields), and a call per item for those cost a fifth
    of the log writer's throughput (bench/scale.py)."""
    kind = type(value)
    if kind is dict:
        value = value.values()
    elif kind is float:
        return bool(value != value or value == _INF or value == _NINF)
    elif kind is not list and kind is not tuple:
        return False
    for item in value:  # a plain loop: any() over a generator costs twice as much here
        kind = type(item)
        if kind is float:
            if item != item or item == _INF or item == _NINF:
                return True
        elif (kind is dict or kind is list or kind is tuple) and _non_finite(item):
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


# Labels come from callers' headers and request bodies (category, language, model names) and
# are shown on every page: only characters that real names use, so none carries Markdown or
# HTML (an image there would make every viewer's browser fetch it).
MAX_LABEL_LENGTH = 100
_LABEL = re.compile(r"[\w .:/@+,=-]+")
LABEL_FIELDS = ("category", "language", "teacher.model", "student.model")


def label_problem(value: str) -> str | None:
    """Why ``value`` cannot be a category, language or model name (None when it can): at
    most :data:`MAX_LABEL_LENGTH` characters of letters, digits, spaces and ``._:/@+,=-``."""
    if not value.strip():
        return "it is blank"
    if len(value) > MAX_LABEL_LENGTH:
        return f"it is {len(value)} characters long (at most {MAX_LABEL_LENGTH})"
    if not _LABEL.fullmatch(value):
        bad = sorted({c for c in value if not _LABEL.fullmatch(c)})
        return "it contains " + " ".join(repr(c) for c in bad)
    return None


def checked_labels(record: dict[str, Any]) -> dict[str, Any]:
    """The record with every invalid label (:data:`LABEL_FIELDS`) replaced: a category or
    language by None, a model name by ``"invalid"``; the names of the replaced fields are in
    ``metadata.invalid_labels`` (never their values)."""
    replaced: list[str] = []
    out = dict(record)
    for name in LABEL_FIELDS:
        part, _, key = name.rpartition(".")
        holder = dict(out[part]) if part else out
        value = holder.get(key)
        if not isinstance(value, str) or label_problem(value) is None:
            continue
        holder[key] = "invalid" if key == "model" else None
        replaced.append(name)
        if part:
            out[part] = holder
    if replaced:
        out["metadata"] = {**(out.get("metadata") or {}), "invalid_labels": replaced}
    return out


def check_for_log(record: dict[str, Any]) -> dict[str, Any]:
    """The record as it will be written, or RecordError: it must pass :func:`validate` (so
    ``logs validate`` never flags what the collector wrote) and serialise as standard JSON.
    Invalid labels are replaced first (:func:`checked_labels`)."""
    record = checked_labels(record)
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
