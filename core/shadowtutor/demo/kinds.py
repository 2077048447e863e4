"""The demo's traffic that is not plain chat, so every page shows tool calls and schemas.

* **A booking assistant** (kind ``tools``): a restaurant desk that calls one of three
  functions, ``search_availability``, ``book_table`` and ``cancel_booking``. The teacher calls
  the right one (arguments as OpenAI's JSON text); the demo's Llama (an Ollama server: its
  arguments are objects) mostly makes the same call, sometimes with a wrong argument, the
  wrong function, or a text answer instead of a call.
* **A JSON-schema extraction flow** (kind ``json_schema``): a travel enquiry turned into a
  booking object; the student's JSON is sometimes invalid against the schema (a number as a
  string, a missing field, prose around the JSON).

The demo's qwen (v1) ran on a server without tool support: its tool requests are recorded as
``unsupported: tools``, which the gate and the dashboards count apart from failures. Both
answers are compared as the collector compares them (:mod:`shadowtutor.collect.agreement`).
"""

from __future__ import annotations

import json
import math
import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from shadowtutor.collect import agreement
from shadowtutor.collect.records import digest
from shadowtutor.cost import pricing
from shadowtutor.demo.students import ELIGIBLE, PRIMARY, STUDENTS
from shadowtutor.log import schema

CATEGORY = "casual"  # a category the demo's gate considers, so Readiness shows both kinds
TEACHER = "gpt-4o"
STUDENT = "llama3.1:8b"


def _tool(name: str, description: str, props: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": props, "required": list(props)},
        },
    }


_STR, _INT = {"type": "string"}, {"type": "integer", "minimum": 1}
BOOKING_TOOLS = [
    _tool(
        "search_availability",
        "Free tables in a city on a date",
        {"city": _STR, "date": _STR, "people": _INT},
    ),
    _tool(
        "book_table",
        "Book a table at a restaurant",
        {"restaurant": _STR, "date": _STR, "time": _STR, "people": _INT},
    ),
    _tool("cancel_booking", "Cancel a booking by its id", {"booking_id": _STR}),
]
EXTRACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": _STR,
        "city": _STR,
        "check_in": _STR,
        "nights": _INT,
        "guests": _INT,
    },
    "required": ["name", "city", "check_in", "nights", "guests"],
    "additionalProperties": False,
}
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "stay_request", "schema": EXTRACTION_SCHEMA},
}

_CITIES = ["Roma", "Firenze", "Venezia", "Milano", "Napoli", "Bali", "Jakarta"]
_RESTAURANTS = ["Da Enzo", "Trattoria Sora Lella", "Osteria del Ponte", "Warung Made"]
_NAMES = ["Giulia Rossi", "Tom Baker", "Made Wirawan", "Sofia Ricci", "Anna Schmidt"]
_PROMPTS = {
    "search_availability": {
        "en": "Is there a table for {people} in {city} on {date}?",
        "it": "C'è un tavolo per {people} a {city} il {date}?",
    },
    "book_table": {
        "en": "Please book {restaurant} for {people} on {date} at {time}.",
        "it": "Prenota {restaurant} per {people} il {date} alle {time}, grazie.",
    },
    "cancel_booking": {
        "en": "Cancel my booking {booking_id}, our plans changed.",
        "it": "Annulla la prenotazione {booking_id}, per favore.",
    },
}
_TEXT_INSTEAD = {
    "en": "Sure! I have taken care of it, you will get a confirmation by email.",
    "it": "Certo! Ho sistemato tutto, riceverai una conferma via email.",
}
_SYSTEM = {
    "tools": "You are the booking desk of a travel agency. Use the functions to answer.",
    "json_schema": "Extract the stay request from the customer's message as JSON.",
}
_ENQUIRY = {
    "en": "Hello, this is {name}. We would like {nights} nights in {city} from {check_in}, "
    "{guests} of us. Can you help?",
    "it": "Buongiorno, sono {name}. Vorremmo {nights} notti a {city} dal {check_in}, siamo in "
    "{guests}. Potete aiutarci?",
}
UNSUPPORTED_TOOLS = (
    "unsupported: tools (HTTP 400 from Ollama: registry.ollama.ai/library/qwen2.5:7b does not "
    "support tools)"
)


def _call(name: str, args: dict[str, Any], as_text: bool) -> dict[str, Any]:
    """A call as the record keeps it: OpenAI's arguments are JSON text, Ollama's objects."""
    return {"name": name, "arguments": json.dumps(args) if as_text else args}


def _booking(rng: random.Random, lang: str) -> tuple[str, str, dict[str, Any]]:
    name = rng.choice(list(_PROMPTS))
    day = f"2026-{rng.randint(4, 9):02d}-{rng.randint(1, 28):02d}"
    values = {
        "city": rng.choice(_CITIES),
        "date": day,
        "people": rng.randint(1, 8),
        "restaurant": rng.choice(_RESTAURANTS),
        "time": f"{rng.choice([12, 13, 19, 20, 21])}:{rng.choice(['00', '30'])}",
        "booking_id": f"BK-{rng.randint(10000, 99999)}",
    }
    props = next(t for t in BOOKING_TOOLS if t["function"]["name"] == name)["function"]
    args = {k: values[k] for k in props["parameters"]["properties"]}
    return name, _PROMPTS[name][lang].format(**values), args


def _student_call(
    rng: random.Random, name: str, args: dict[str, Any], lang: str
) -> tuple[list[dict[str, Any]] | None, str, list[str]]:
    """The Llama's answer to a booking request: (tool calls, text, flaws)."""
    roll = rng.random()
    if roll < 0.84:
        return [_call(name, args, False)], "", []
    if roll < 0.91 and len(args) > 1:  # one argument wrong: a person more, a date's form
        wrong = dict(args)
        if "people" in wrong:
            wrong["people"] = int(wrong["people"]) + 1
        else:
            wrong["date"] = "/".join(reversed(str(wrong.get("date", "")).split("-")))
        return [_call(name, wrong, False)], "", ["wrong argument"]
    if roll < 0.95:  # the wrong function
        other = "search_availability" if name != "search_availability" else "book_table"
        return [_call(other, args, False)], "", ["wrong function"]
    return None, _TEXT_INSTEAD[lang], ["text instead of a call"]


def _stay(rng: random.Random) -> dict[str, Any]:
    return {
        "name": rng.choice(_NAMES),
        "city": rng.choice(_CITIES),
        "check_in": f"2026-{rng.randint(4, 9):02d}-{rng.randint(1, 28):02d}",
        "nights": rng.randint(1, 10),
        "guests": rng.randint(1, 6),
    }


def _student_json(rng: random.Random, stay: dict[str, Any]) -> str:
    """The Llama's extraction: mostly the same object; sometimes invalid against the schema
    (a number as a string, a field left out, prose around the JSON) or one value off."""
    roll = rng.random()
    got = dict(stay)
    if roll < 0.80:
        pass
    elif roll < 0.86:
        got["nights"] = str(got["nights"])  # a string where the schema wants an integer
    elif roll < 0.90:
        del got["check_in"]
    elif roll < 0.93:
        return "Here is the JSON you asked for: " + json.dumps(got)
    else:
        got["guests"] = int(got["guests"]) + 1  # valid, one field disagrees
    return json.dumps(got, ensure_ascii=False)


def records(
    timestamps: list[datetime], *, seed: int, end: datetime, users: list[str]
) -> Iterator[dict[str, Any]]:
    """The booking and extraction records at ``timestamps`` (two of three booking requests),
    the Llama's and, in its shadowed days, qwen's."""
    rng = random.Random(seed + 29)
    prices = pricing.load_table()
    qwen = STUDENTS[1]
    for ts in timestamps:
        kind = "tools" if rng.random() < 2 / 3 else "json_schema"
        lang = "en" if rng.random() < 0.55 else "it"
        user = rng.choice(users)
        if kind == "tools":
            name, prompt, args = _booking(rng, lang)
            teacher_calls = [_call(name, args, True)]
            teacher_text, request = "", _tools_request()
        else:
            stay = _stay(rng)
            prompt = _ENQUIRY[lang].format(**stay)
            teacher_calls, teacher_text = None, json.dumps(stay, ensure_ascii=False)
            request = {
                "kind": "json_schema",
                "tools": None,
                "tools_hash": None,
                "schema_hash": digest(EXTRACTION_SCHEMA),
            }
        messages = [
            {"role": "system", "content": _SYSTEM[kind]},
            {"role": "user", "content": prompt},
        ]
        p_tok = sum(pricing.estimate_tokens(m["content"]) + 4 for m in messages) + (
            180 if kind == "tools" else 90
        )  # the tool definitions or the schema
        c_tok = max(8, pricing.estimate_tokens(teacher_text or json.dumps(teacher_calls)))
        teacher = {
            "model": TEACHER,
            "provider": "openai",
            "response": teacher_text,
            "latency_ms": round(rng.lognormvariate(math.log(700), 0.3) + 12 * c_tok, 1),
            "ttft_ms": round(rng.lognormvariate(math.log(450), 0.3), 1),
            "prompt_tokens": p_tok,
            "completion_tokens": c_tok,
            "cost_usd": prices.cost(TEACHER, p_tok, c_tok),
            "price_version": prices.version,
            "tool_calls": teacher_calls,
            "finish_reason": "tool_calls" if teacher_calls else "stop",
        }
        rid = uuid.UUID(int=rng.getrandbits(128)).hex
        base = {
            "ts": ts,
            "source": "demo",
            "user_hash": schema.pseudonymize(user),
            "conversation_id": f"c-{schema.pseudonymize(user)}-{ts:%Y%m%d}",
            "category": CATEGORY,
            "language": lang,
            "messages": messages,
            "teacher": teacher,
            "routing": {
                "served_by": "teacher",
                "stage": 0,
                "bucket": None,
                "eligible": CATEGORY in ELIGIBLE,
            },  # fmt: skip
            "metadata": {"flow": "booking" if kind == "tools" else "extraction"},
            "request_id": rid,
            "request": request,
        }
        if kind == "tools":
            calls, text, _ = _student_call(rng, name, args, lang)
        else:
            calls, text = None, _student_json(rng, stay)
        yield _record(rng, base, rid, PRIMARY, STUDENT, calls, text, p_tok, 380)
        if ts >= end - timedelta(days=qwen.days):
            if kind == "tools":
                refused = {"model": qwen.model, "provider": "ollama", "latency_ms": 35.0}
                answer: dict[str, Any] = refused | {"error": UNSUPPORTED_TOOLS}
                yield _finish(base, schema.secondary_id(rid, qwen.name), qwen.name, answer)
            else:
                text = _student_json(rng, stay)
                yield _record(rng, base, schema.secondary_id(rid, qwen.name), qwen.name,
                              qwen.model, None, text, p_tok, qwen.base_ms)  # fmt: skip


def _tools_request() -> dict[str, Any]:
    return {
        "kind": "tools",
        "tools": [t["function"]["name"] for t in BOOKING_TOOLS],
        "tools_hash": digest(BOOKING_TOOLS),
        "schema_hash": None,
    }


def _record(
    rng: random.Random,
    base: dict[str, Any],
    id_: str,
    name: str,
    model: str,
    calls: list[dict[str, Any]] | None,
    text: str,
    p_tok: int,
    base_ms: float,
) -> dict[str, Any]:
    if rng.random() < 0.008:
        answer: dict[str, Any] = {"model": model, "provider": "ollama",
                                  "error": "timeout: no answer within 10.0 s",
                                  "latency_ms": 10000.0}  # fmt: skip
        return _finish(base, id_, name, answer)
    c_tok = max(8, pricing.estimate_tokens(text or json.dumps(calls)))
    answer = {
        "model": model,
        "provider": "ollama",
        "response": text,
        "latency_ms": round(rng.lognormvariate(math.log(base_ms), 0.35) + 15 * c_tok, 1),
        "ttft_ms": round(rng.lognormvariate(math.log(210), 0.35), 1),
        "prompt_tokens": p_tok,
        "completion_tokens": c_tok,
        "cost_usd": 0.0,
        "tool_calls": calls,
        "finish_reason": "stop",  # what an Ollama server says, with or without a call
    }
    return _finish(base, id_, name, answer)


def _finish(base: dict[str, Any], id_: str, name: str, student: dict[str, Any]) -> dict[str, Any]:
    """The record, its answers compared as the collector compares them."""
    teacher = base["teacher"]
    if not schema.student_succeeded(student):
        agreed = None
    elif agreement.needs_calls(teacher, student):
        agreed = agreement.tool_calls(teacher, student, BOOKING_TOOLS)
    else:
        agreed = agreement.json_answers(teacher, student, EXTRACTION_SCHEMA)
    return schema.make_record(
        **base,
        id=id_,
        student=student,
        student_name=name,
        similarity={"method": None, "score": None},  # never a text similarity of a call
        agreement=agreed,
    )
