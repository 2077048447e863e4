"""The Messages and Responses shapes, pure: requests read into the chat form, teacher answers
read into the record's fields, student answers shaped as the protocol's, cache pricing."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pydantic
import pytest
from openai.types.responses import Response, ResponseStreamEvent

from shadowtutor.backends import Answer
from shadowtutor.collect import anthropic_shape, responses_shape
from shadowtutor.cost import pricing


@pytest.mark.parametrize(
    ("choice", "want"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
        (None, None),
    ],
)
def test_anthropic_tool_choice(choice: Any, want: Any) -> None:
    assert anthropic_shape.chat_tool_choice(choice) == want


def test_a_messages_request_in_the_chat_form() -> None:
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 100,
        "temperature": 0.2,
        "system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
        "metadata": {"user_id": "u-1"},
        "tools": [{"name": "f", "input_schema": {"type": "object"}}, {"type": "web_search_x"}],
        "tool_choice": {"type": "any"},
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "is_error": True,
                        "content": [{"type": "text", "text": "boom"}],
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                    {"type": "text", "text": "look"},
                ],
            },
        ],
    }
    req = anthropic_shape.parse_request(body)
    assert req.protocol == "anthropic.messages" and req.kind == "tools"
    assert (req.model, req.max_tokens, req.temperature, req.user) == (
        "claude-haiku-4-5",
        100,
        0.2,
        "u-1",
    )
    assert req.messages[0] == {"role": "system", "content": "A\nB"}
    assert req.messages[2]["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a": 1}'}
    assert req.messages[3] == {"role": "tool", "tool_call_id": "t1", "content": "error: boom"}
    assert req.messages[4]["content"] == [
        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
        {"type": "text", "text": "look"},
    ]
    assert [t["function"]["name"] for t in req.features["tools"]] == ["f", "web_search_x"]
    assert req.features["tool_choice"] == "required"
    assert req.body is body and "stream" not in anthropic_shape.teacher_body(req)


def test_a_body_without_messages_is_not_ours() -> None:
    with pytest.raises(ValueError):
        anthropic_shape.parse_request({"model": "m"})
    with pytest.raises(ValueError):
        responses_shape.parse_request({"model": "m"})


def test_a_cut_claude_stream_is_incomplete() -> None:
    events = [
        {"type": "message_start", "message": {"model": "c", "usage": {"input_tokens": 3}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
    ]
    cut = anthropic_shape.teacher_from_events(events)
    assert cut["response"] == "Hel" and cut["error"] == anthropic_shape.INCOMPLETE_STREAM
    done = anthropic_shape.teacher_from_events(
        [
            *events,
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": 2},
            },
            {"type": "message_stop"},
        ]
    )
    assert "error" not in done and done["finish_reason"] == "end_turn"
    assert (done["prompt_tokens"], done["completion_tokens"]) == (3, 2)


@pytest.mark.parametrize(
    ("answer", "stop"),
    [
        (Answer(model="s", provider="ollama", text="hi", finish_reason="stop"), "end_turn"),
        (Answer(model="s", provider="ollama", text="hi", finish_reason="length"), "max_tokens"),
        (
            Answer(
                model="s",
                provider="ollama",
                text="",
                tool_calls=[
                    {"name": "f", "arguments": {"a": 1}},
                    {"name": "g", "arguments": '{"b": 2}'},
                ],
            ),
            "tool_use",
        ),
    ],
)
def test_a_student_answer_as_a_claude_message_and_stream(answer: Answer, stop: str) -> None:
    message = anthropic.types.Message.model_validate(anthropic_shape.message_dict(answer))
    assert message.stop_reason == stop
    adapter: Any = pydantic.TypeAdapter(anthropic.types.RawMessageStreamEvent)
    events = [adapter.validate_python(e) for e in anthropic_shape.event_dicts(answer)]
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    back = anthropic_shape.teacher_from_events(anthropic_shape.event_dicts(answer))
    assert back["response"] == answer.text and "error" not in back
    if answer.tool_calls:
        assert [b.input for b in message.content if b.type == "tool_use"] == [{"a": 1}, {"b": 2}]
        assert back["tool_calls"] == [
            {"name": "f", "arguments": {"a": 1}},
            {"name": "g", "arguments": {"b": 2}},
        ]


def test_a_responses_request_in_the_chat_form() -> None:
    body = {
        "model": "gpt-4.1",
        "instructions": "Be kind",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "a"},
                    {"type": "input_image", "image_url": "data:image/png;base64,xx"},
                ],
            },
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {"type": "reasoning", "summary": []},
        ],
        "text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "object"}}},
        "max_output_tokens": 50,
        "safety_identifier": "u-2",
    }
    req = responses_shape.parse_request(body)
    assert req.protocol == "openai.responses" and req.kind == "json_schema"
    assert req.user == "u-2" and req.max_tokens == 50
    assert [m["role"] for m in req.messages] == ["system", "user", "assistant", "tool"]
    assert len(req.messages[2]["tool_calls"]) == 2  # parallel calls: one assistant message
    assert req.messages[1]["content"][1]["type"] == "image_url"
    assert req.features["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert not responses_shape.context_held(body)
    assert responses_shape.context_held(body | {"previous_response_id": "resp_1"})


def test_a_student_answer_as_a_response_and_its_events() -> None:
    answer = Answer(
        model="llama3",
        provider="ollama",
        text="ok",
        prompt_tokens=4,
        completion_tokens=1,
        tool_calls=[{"name": "f", "arguments": {"a": 1}}],
    )
    response = Response.model_validate(responses_shape.response_dict(answer, {"model": "x"}))
    assert response.output_text == "ok"
    assert [o.type for o in response.output] == ["message", "function_call"]
    adapter: Any = pydantic.TypeAdapter(ResponseStreamEvent)
    events = [adapter.validate_python(e) for e in responses_shape.event_dicts(answer)]
    assert events[-1].type == "response.completed"
    back = responses_shape.teacher_from_events(responses_shape.event_dicts(answer))
    assert back["response"] == "ok" and back["tool_calls"] == [
        {"name": "f", "arguments": '{"a": 1}'}
    ]
    cut = responses_shape.teacher_from_events(responses_shape.event_dicts(answer)[:-1])
    assert cut["error"] == responses_shape.INCOMPLETE_STREAM and cut["response"] == "ok"


def test_cache_tokens_are_priced_at_the_cache_prices() -> None:
    table = pricing.load_table()
    # Sonnet 4.5: input 3, cache write 3.75, cache read 0.30, output 15 ($ per million)
    cost = table.cost(
        "claude-sonnet-4-5-20250929", 1_000_000, 0, cache_write=200_000, cache_read=500_000
    )
    assert cost == pytest.approx(0.3 * 3 + 0.2 * 3.75 + 0.5 * 0.30)
    # a model without cache prices: cached tokens cost as input
    assert table.cost("gpt-4o", 1_000_000, 0, cache_read=500_000) == pytest.approx(2.5)
    assert table.lookup("claude-opus-4-5-20251101").input_per_m == 5.0  # type: ignore[union-attr]


def test_the_protocol_crosses_the_companion_pipe_and_the_journal() -> None:
    from shadowtutor.collect import frames, journal
    from shadowtutor.collect.job import Job

    message = {
        "model": "claude-haiku-4-5",
        "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 5, "output_tokens": 3, "cache_read_input_tokens": 10},
    }
    raw = json.dumps(message).encode()
    job = Job(messages=[{"role": "user", "content": "x"}], id="j1", teacher_raw=raw)
    job.protocol = "anthropic.messages"
    got, _ = frames.decode_job(memoryview(frames.encode_job(job))[5:])
    assert got.protocol == "anthropic.messages"
    back = journal.decode(journal.encode(job) | {"ts": None})
    for each in (got, back):
        fields = each.teacher_fields()
        assert fields is not None and each.protocol == "anthropic.messages"
        assert fields["tool_calls"] == [{"name": "f", "arguments": {"a": 1}}]
        assert (fields["prompt_tokens"], fields["cache_read_tokens"]) == (15, 10)
    # the object the wrapper holds (an SDK Message) crosses as its fields
    obj = anthropic.types.Message.model_validate(
        message | {"id": "m", "type": "message", "role": "assistant", "stop_sequence": None}
    )
    sent = Job(messages=[{"role": "user", "content": "x"}], id="j2", teacher_obj=obj)
    sent.protocol = "anthropic.messages"
    got, form = frames.decode_job(memoryview(frames.encode_job(sent))[5:])
    assert form == "obj" and got.teacher_fields()["tool_calls"][0]["name"] == "f"  # type: ignore[index]
