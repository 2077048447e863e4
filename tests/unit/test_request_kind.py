"""The request's kind (one pure function of its keys), routing by kind, the teacher's tool
calls read from complete and streamed answers, and an OpenAI request translated for the
Ollama API."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shadowtutor.backends import ollama
from shadowtutor.collect import openai_shape
from shadowtutor.gate import routing

USER = {"role": "user", "content": "hi"}
IMAGE = {
    "role": "user",
    "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ],
}
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
SCHEMA_FORMAT = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"messages": [USER]}, "plain"),
        ({"messages": [USER], "tools": [TOOL]}, "tools"),
        ({"messages": [USER], "functions": [TOOL["function"]]}, "tools"),
        ({"messages": [USER], "tools": []}, "plain"),
        ({"messages": [USER], "response_format": {"type": "json_object"}}, "json_object"),
        ({"messages": [USER], "response_format": SCHEMA_FORMAT}, "json_schema"),
        ({"messages": [USER], "response_format": {"type": "text"}}, "plain"),
        ({"messages": [IMAGE]}, "images"),
        ({"messages": [IMAGE], "tools": [TOOL]}, "tools"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}, "plain"),
    ],
)
def test_the_kind_of_a_request(body: dict[str, Any], kind: str) -> None:
    assert openai_shape.request_kind(body) == kind
    assert openai_shape.ChatRequest.parse(body).kind == kind


def test_a_parsed_request_keeps_the_features_the_student_gets() -> None:
    body = {"messages": [USER], "tools": [TOOL], "tool_choice": "auto", "temperature": 0.2}
    request = openai_shape.ChatRequest.parse(body)
    assert request.features == {"tools": [TOOL], "tool_choice": "auto"}


@pytest.mark.parametrize("kind", ["tools", "json_object", "json_schema", "images"])
def test_the_student_serves_plain_requests_only(kind: str) -> None:
    served = routing.Route("student", 100, 3.0, True, "s1")
    assert routing.by_kind(served, "plain") == served
    held = routing.by_kind(served, kind)
    assert (held.served_by, held.stage, held.reason) == ("teacher", 100, f"kind: {kind}")
    teacher = routing.Route("teacher", 10, 50.0, True)
    assert routing.by_kind(teacher, kind) == teacher  # nothing to hold: no reason counted


def test_a_teachers_tool_call_is_read_with_its_arguments_exactly_as_sent() -> None:
    completion = {
        "model": "gpt-4o-mini",
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a":1}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }
    fields = openai_shape.teacher_from_completion(completion)
    assert fields["tool_calls"] == [{"name": "f", "arguments": '{"a":1}'}]
    assert fields["finish_reason"] == "tool_calls" and fields["response"] == ""


def test_streamed_tool_call_deltas_are_assembled() -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    chunks = [
        chunk({"role": "assistant", "content": None}),
        chunk(
            {"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": ""}}]}
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
        chunk(
            {"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "{}"}}]}
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Rome"}'}}]}),
        chunk({}, "tool_calls"),
    ]
    fields = openai_shape.teacher_from_chunks(chunks)
    assert fields["tool_calls"] == [
        {"name": "f", "arguments": '{"city": "Rome"}'},
        {"name": "g", "arguments": "{}"},
    ]
    assert fields["finish_reason"] == "tool_calls" and "error" not in fields


def test_an_openai_request_in_the_ollama_apis_form() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    messages = [IMAGE, {"role": "assistant", "content": None, "tool_calls": [call]}]
    out = ollama.ollama_messages(messages)
    assert out[0] == {"role": "user", "content": "what is this?", "images": ["iVBORw0KGgo="]}
    assert out[1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}],
    }
    assert messages[1]["tool_calls"][0]["function"]["arguments"] == '{"a": 1}'  # not changed
    features = {"tools": [TOOL], "tool_choice": "auto", "response_format": SCHEMA_FORMAT}
    assert ollama.ollama_features(features) == {"tools": [TOOL], "format": {"type": "object"}}
    assert ollama.ollama_features({"response_format": {"type": "json_object"}}) == {
        "format": "json"
    }
    assert json.dumps(ollama.ollama_messages([USER])) == json.dumps([USER])
