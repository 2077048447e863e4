"""How far a student's answer agrees with the teacher's, by what the two answers are: pure
functions over the record's answer fields, giving the record's ``agreement``
(``{kind, method, score, details}``).

* **tool calls** (either side called a tool, :func:`tool_calls`): the calls are paired in
  order; per pair a graded score, the mean of three parts: the same function (``name``), the
  required arguments equal (``required``, from the tool's parameter schema), all arguments
  equal (``arguments``). Arguments are compared as JSON values after normalising: key order
  does not matter and numbers compare by value (``1`` equals ``1.0``), so an OpenAI
  JSON-text argument string and an Ollama object are the same call. A missing or extra call
  scores 0; a tool call against a text answer is a disagreement (score 0), never a text
  similarity of an empty string.
* **JSON** (a ``json_object`` or ``json_schema`` request, :func:`json_answers`): whether the
  student's answer is JSON and validates against the schema (``jsonschema``), and the share
  of the teacher's top-level fields whose values the student matches; the score is the
  field share, 0 when the student's JSON does not parse or does not validate.
* **text**: the similarity the collector's method computed (:func:`text`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import jsonschema

TOOLS_METHOD = "tool_calls:name+required+arguments"
JSON_METHOD = "json:schema+fields"


def normalised(value: Any) -> Any:
    """``value`` with numbers in one form (an integral float is its int) and object keys in
    sorted order, so two equal JSON values compare equal."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return int(value) if float(value).is_integer() else float(value)
    if isinstance(value, Mapping):
        return {str(k): normalised(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [normalised(v) for v in value]
    return value


def arguments_of(arguments: Any) -> Any:
    """A call's arguments as a JSON value: an OpenAI argument string parsed (kept as the
    string when it is not JSON), an Ollama object as it is."""
    if isinstance(arguments, str):
        try:
            return json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return arguments
    return arguments


def _required(tools: list[dict[str, Any]] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for tool in tools or []:
        fn = tool.get("function") or tool
        if isinstance(fn, Mapping) and fn.get("name"):
            params = fn.get("parameters") or {}
            out[str(fn["name"])] = list(params.get("required") or [])
    return out


def call_score(
    teacher: Mapping[str, Any], student: Mapping[str, Any], required: list[str]
) -> dict[str, float]:
    """The graded parts of one pair of calls (each 0 or 1) and their mean ``score``."""
    if teacher.get("name") != student.get("name"):
        return {"name": 0.0, "required": 0.0, "arguments": 0.0, "score": 0.0}
    want = normalised(arguments_of(teacher.get("arguments")))
    got = normalised(arguments_of(student.get("arguments")))
    same = float(want == got)
    if isinstance(want, dict) and isinstance(got, dict):
        names = required or list(want)
        req = float(all(k in got and got.get(k) == want.get(k) for k in names))
    else:
        req = same
    return {"name": 1.0, "required": req, "arguments": same, "score": (1.0 + req + same) / 3}


def tool_calls(
    teacher: Mapping[str, Any],
    student: Mapping[str, Any],
    tools: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The agreement of two answers of which at least one called a tool (see the module
    docstring); ``tools`` are the request's definitions (for the required arguments)."""
    want = list(teacher.get("tool_calls") or [])
    got = list(student.get("tool_calls") or [])
    required = _required(tools)
    parts = [
        call_score(t, s, required.get(str(t.get("name")), []))
        for t, s in zip(want, got, strict=False)
    ]
    n = max(len(want), len(got))
    score = sum(p["score"] for p in parts) / n if n else 0.0
    details: dict[str, Any] = {
        "teacher_calls": len(want),
        "student_calls": len(got),
        "same_functions": [c.get("name") for c in want] == [c.get("name") for c in got],
    }
    for part in ("name", "required", "arguments"):
        details[part] = sum(p[part] for p in parts) / n if n else 0.0
    if not got:
        details["student_answered"] = "text"
    elif not want:
        details["teacher_answered"] = "text"
    return {"kind": "tool_calls", "method": TOOLS_METHOD, "score": score, "details": details}


def _parsed(text: Any) -> tuple[bool, Any]:
    if not isinstance(text, str):
        return False, None
    try:
        return True, json.loads(text)
    except ValueError:
        return False, None


def _canonical(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, sort_keys=True, default=str)


@functools.lru_cache(maxsize=256)
def _validator(schema_text: str) -> Any:
    """The validator of a schema (given as canonical JSON), its schema checked once: checking
    it on every answer (``jsonschema.validate``) cost about 1.6 ms an answer, 85 % of the time."""
    schema = json.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def json_answers(
    teacher: Mapping[str, Any], student: Mapping[str, Any], schema: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The agreement of two JSON answers: the student's validity against ``schema`` (None or
    ``{}``: any JSON) and the share of the teacher's fields it matches."""
    ok, got = _parsed(student.get("response"))
    valid = ok
    error = None if ok else "not JSON"
    if ok and schema:
        try:
            problem = jsonschema.exceptions.best_match(
                _validator(_canonical(schema)).iter_errors(got)
            )
        except jsonschema.SchemaError as exc:
            error = f"the schema is not valid: {exc.message}"
        else:
            if problem is not None:
                valid, error = False, problem.message
    _, want = _parsed(teacher.get("response"))
    if isinstance(want, dict) and want:
        same = sum(
            1
            for k, v in want.items()
            if isinstance(got, dict) and k in got and normalised(got[k]) == normalised(v)
        )
        fields = same / len(want)
    else:
        fields = float(ok and normalised(want) == normalised(got))
    details: dict[str, Any] = {"valid": valid, "fields": fields}
    if error is not None:
        details["error"] = error
    score = fields if valid else 0.0
    return {"kind": "json", "method": JSON_METHOD, "score": score, "details": details}


def text(similarity: Mapping[str, Any] | None) -> dict[str, Any]:
    """The agreement of two text answers: their similarity, by its method."""
    sim = similarity or {}
    return {"kind": "text", "method": sim.get("method"), "score": sim.get("score"), "details": None}


def needs_calls(teacher: Mapping[str, Any], student: Mapping[str, Any]) -> bool:
    """Whether the pair is compared by tool calls (either side called a tool)."""
    return bool(teacher.get("tool_calls") or student.get("tool_calls"))


def schema_of(features: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON schema a request's ``response_format`` asks for (``{}`` for JSON mode), or
    None when it asks for no JSON."""
    response_format = features.get("response_format")
    if not isinstance(response_format, Mapping):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return {}
    if kind == "json_schema":
        return dict((response_format.get("json_schema") or {}).get("schema") or {})
    return None
