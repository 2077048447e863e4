"""Widgets of the Review page: the pair (as text only) and the judgement form.

Model output and user messages are untrusted: they are shown with ``st.code`` (a literal
text block), never as Markdown or HTML.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from typing import Any

import streamlit as st

from shadowtutor.app import shortcuts
from shadowtutor.app.text import md
from shadowtutor.review import workflow
from shadowtutor.views import display

SCORES = [1, 2, 3, 4, 5]
KEY_HINTS = {"left": " (keys 1-5)", "right": " (Shift+1-5)", "verdict": " (Q / W / E)"}
LONG = 1500  # characters: longer texts get a scrolling box, so both answers stay in reach


def show_text(text: str) -> None:
    st.code(
        text or "(empty)",
        language=None,
        wrap_lines=True,
        height=320 if len(text) > LONG else "content",
    )


def show_json(value: Any) -> None:
    """A JSON value (tool calls, definitions, a schema) formatted, as code: never Markdown."""
    st.code(pretty_json(value), language="json", wrap_lines=True)


def pretty_json(value: Any) -> str:
    """``value`` indented with its keys in order; a tool call's ``arguments`` string that
    holds JSON is shown parsed (the app sent it as text), anything else as it is."""
    return json.dumps(_parsed_arguments(value), indent=2, ensure_ascii=False, default=str)


def _parsed_arguments(value: Any) -> Any:
    if isinstance(value, list):
        return [_parsed_arguments(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _parsed_arguments(v) if k == "function" else v for k, v in value.items()}
    if isinstance(out.get("arguments"), str):
        try:
            out["arguments"] = json.loads(out["arguments"])
        except ValueError:  # not JSON: shown as the text the model sent
            pass
    return out


def _fmt(value: Any, fmt: str, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{fmt}}{unit}"


def show_header(item: Any, *, tz: Any = None, note: str = "") -> None:
    """The pair's facts in one caption line (five metrics took a screen's fifth and pushed
    both answers below the fold, issue 27 item 10); ``note`` follows them."""
    snap = item.snapshot
    # Every value here came from the log: the caption renders Markdown, so each is escaped.
    method = snap.get("similarity_method")
    similarity = _fmt(snap.get("similarity"), ".3f") + (f" ({md(method)})" if method else "")
    facts = [
        f"Similarity {similarity}",
        md(snap.get("language") or "language n/a"),
        md(snap.get("category") or "category n/a"),
        f"reviews {item.reviews_done} of {item.required_reviews}",
        f"source {md(snap.get('source') or 'n/a')}",
        f"pair {md(item.pair_id)}",
        f"logged {md(display.moment(snap.get('ts'), tz))}",
        f"queued as {md(item.strategy)}",
    ]
    st.caption(" · ".join(facts) + (f". {note}" if note else ""))
    show_request(snap.get("request") or {}, snap.get("agreement") or {})


def show_request(request: dict[str, Any], agreement: dict[str, Any]) -> None:
    """What was asked besides the messages: the kind, the agreement by what the answers are,
    and the tool definitions and JSON schema at hand (folded; shown as JSON code)."""
    kind = request.get("kind") or "plain"
    if kind == "plain" and not agreement.get("kind"):
        return
    facts = [f"Request kind {md(kind)}"]
    if request.get("tools"):
        facts.append("tools " + ", ".join(md(t) for t in request["tools"]))
    if agreement.get("score") is not None:
        facts.append(f"agreement ({md(agreement.get('kind'))}) {float(agreement['score']):.2f}")
    st.caption(" · ".join(facts))
    features = request.get("features") or {}
    tools = features.get("tools") or features.get("functions")
    if tools:
        with st.expander(f"Tool definitions ({len(tools)})"):
            show_json(tools)
            if features.get("tool_choice") is not None:
                st.caption("tool_choice")
                show_json(features["tool_choice"])
    response_format = features.get("response_format")
    if isinstance(response_format, dict):
        with st.expander("Response format (JSON schema)"):
            show_json(response_format)
    if (kind == "tools" and not tools) or (kind == "json_schema" and not response_format):
        st.caption(
            "The tool definitions and the schema were not kept with this pair (logged before "
            "the record stored them): the tool names and hashes above are what is known."
        )
    if agreement.get("details"):
        with st.expander("Agreement details"):
            show_json(agreement["details"])


def earlier_turns(messages: list[dict[str, Any]]) -> int:
    """How many messages (system prompts aside) come before the last user message: the
    earlier turns, folded so that the question asked and both answers fit one screen."""
    last = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=0)
    return sum(1 for m in messages[:last] if m.get("role") not in ("system", "developer"))


def show_conversation(messages: list[dict[str, Any]]) -> None:
    folded = earlier_turns(messages)
    shown = 0
    earlier: Any = None
    for msg in messages:
        role = str(msg.get("role", "?"))
        text = workflow.content_text(msg.get("content"))
        if role in ("system", "developer"):  # long and the same for many pairs: folded
            with st.expander(f"{md(role.upper())} prompt ({len(text):,} characters)"):
                show_text(text)
            continue
        if folded and earlier is None:  # where the first of them was
            earlier = st.expander(f"Earlier turns ({folded} messages)")
        with earlier if shown < folded else nullcontext():
            shown += 1
            call_id = msg.get("tool_call_id")
            st.caption(md(role.upper()) + (f" (answer to {md(call_id)})" if call_id else ""))
            if text or not msg.get("tool_calls"):
                show_text(text)
            if msg.get("tool_calls"):
                show_json(msg["tool_calls"])


def show_answer(label: str, answer: dict[str, Any], *, reveal: bool) -> None:
    st.subheader(label)
    facts = [
        f"latency {_fmt(answer.get('latency_ms'), ',.0f', ' ms')}",
        f"tokens {_fmt(answer.get('completion_tokens'), ',d')}",
    ]
    if reveal:
        facts.insert(0, f"model {md(answer.get('model') or 'n/a')}")
    if answer.get("finish_reason"):
        facts.append(f"finish {md(answer['finish_reason'])}")
    st.caption(" · ".join(facts))
    if answer.get("error"):
        st.caption("Error:")
        show_text(str(answer["error"]))
    if answer.get("refusal"):
        st.caption("Refusal:")
        show_text(str(answer["refusal"]))
    calls = answer.get("tool_calls")
    if calls:
        st.caption(f"Tool calls ({len(calls)})")
        show_json(calls)
        if answer.get("response"):
            show_text(answer["response"])
        return
    response = answer.get("response") or ""
    parsed = _json_value(response)
    if parsed is not None:  # a JSON answer (json_object / json_schema): formatted
        show_json(parsed)
    else:
        show_text(response)


def _json_value(text: str) -> Any:
    """``text`` parsed when it is a JSON object or array, else None."""
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict | list) else None


def show_pair(item: Any, slots: list[tuple[str, str, dict]], *, reveal: bool) -> None:
    """The conversation, then the two answers side by side."""
    show_conversation(item.snapshot.get("messages") or [])
    for col, (label, _who, answer) in zip(st.columns(2), slots, strict=True):
        with col:
            show_answer(label, answer, reveal=reveal)


def reveal_text(slots: list[tuple[str, str, dict]]) -> str:
    return ", ".join(
        f"{label} was the {who} ({answer.get('model') or 'unknown model'})"
        for label, who, answer in slots
    )


def recent_rows(mine: list[tuple[Any, Any]], tz: Any) -> list[dict[str, Any]]:
    return [
        {
            "review": r.id,
            "when": r.created_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
            "pair": i.pair_id,
            "decision": r.decision,
            # a skip (or a review without that score) shows a dash, never "None"
            "student score": display.cell(r.student_score),
            "teacher score": display.cell(r.teacher_score),
            "verdict": display.cell(r.verdict),
            "tags": ", ".join(r.tags or []),
            "edited": r.previous_id is not None,
        }
        for r, i in mine
    ]


def answer_slots(item: Any, *, blind: bool, swap: bool) -> list[tuple[str, str, dict]]:
    """(label, who, answer) for the left and right column. Left is the student (or A)."""
    snap = item.snapshot
    student, teacher = snap.get("student") or {}, snap.get("teacher") or {}
    if not blind:
        return [("Student", "student", student), ("Teacher", "teacher", teacher)]
    pair = [("teacher", teacher), ("student", student)]
    if not swap:
        pair.reverse()
    return [("Answer A", pair[0][0], pair[0][1]), ("Answer B", pair[1][0], pair[1][1])]


def judgement_form(
    prefix: str,
    tag_names: list[str],
    slots: list[tuple[str, str, dict]],
    initial: dict | None = None,
    *,
    keys: bool = True,
    bar: Any = None,
) -> dict[str, Any]:
    """Scores, verdict, tags, note and correction. Returns widget values keyed by the
    left/right slot, which the caller maps to student/teacher. ``keys``: label the widgets
    with their shortcuts (bound by :func:`bind_keys`)."""
    initial = initial or {}
    hint = KEY_HINTS if keys else dict.fromkeys(KEY_HINTS, "")
    left, right = slots[0][0], slots[1][0]
    with bar if bar is not None else nullcontext():  # scores and verdict: in the action bar
        c1, c2, c3 = st.columns([2, 2, 3])
    with c1:
        left_score = st.radio(
            f"{left} score{hint['left']}",
            SCORES,
            index=_index(SCORES, initial.get("left")),
            horizontal=True,
            key=f"{prefix}left",
        )
    with c2:
        right_score = st.radio(
            f"{right} score{hint['right']}",
            SCORES,
            index=_index(SCORES, initial.get("right")),
            horizontal=True,
            key=f"{prefix}right",
        )
    options = ["left", "tie", "right"]
    with c3:
        verdict = st.radio(
            f"Which is better?{hint['verdict']}",
            options,
            index=_index(options, initial.get("verdict")),
            format_func={"left": f"{left} better", "tie": "Tie", "right": f"{right} better"}.get,
            horizontal=True,
            key=f"{prefix}verdict",
        )
    tags = st.multiselect(
        "Tags",
        tag_names,
        default=[t for t in initial.get("tags", []) if t in tag_names],
        key=f"{prefix}tags",
    )
    note = st.text_area("Note", value=initial.get("note", ""), height=68, key=f"{prefix}note")
    corrected = st.text_area(
        "Corrected ideal answer (optional)",
        value=initial.get("corrected") or "",
        height=100,
        key=f"{prefix}corrected",
    )
    return {
        "left": left_score,
        "right": right_score,
        "verdict": verdict,
        "tags": tags,
        "note": note,
        "corrected": corrected,
    }


def _index(options: list, value: Any) -> int | None:
    return options.index(value) if value in options else None


def to_judgement(
    values: dict[str, Any], slots: list, decision: str, seconds: float | None, blind: bool
) -> workflow.Judgement:
    """Map left/right widget values to student/teacher fields."""
    who = {"left": slots[0][1], "right": slots[1][1]}
    scores = {who["left"]: values["left"], who["right"]: values["right"]}
    verdict = {"left": who["left"], "right": who["right"], "tie": "tie"}.get(values["verdict"])
    return workflow.Judgement(
        decision=decision,
        student_score=scores["student"],
        teacher_score=scores["teacher"],
        verdict=verdict,
        tags=values["tags"],
        note=values["note"],
        corrected_answer=values["corrected"],
        seconds_spent=seconds,
        blind=blind,
    )


def from_review(r: Any) -> dict[str, Any]:
    """Initial widget values (non-blind layout: left = student) from a stored review."""
    verdict = {"student": "left", "teacher": "right", "tie": "tie"}.get(r.verdict or "")
    return {
        "left": r.student_score,
        "right": r.teacher_score,
        "verdict": verdict,
        "tags": list(r.tags or []),
        "note": r.note,
        "corrected": r.corrected_answer,
    }


def decision_buttons(prefix: str, bar: Any = None) -> str | None:
    with bar if bar is not None else nullcontext():
        c1, c2, c3 = st.columns(3)
    if c1.button("Approve (A)", type="primary", key=f"{prefix}approve", width="stretch"):
        return "approve"
    if c2.button("Reject (R)", key=f"{prefix}reject", width="stretch"):
        return "reject"
    if c3.button("Skip (S)", key=f"{prefix}skip", width="stretch"):
        return "skip"
    return None


def bind_keys(prefix: str) -> None:
    keys = {str(n): shortcuts.option(f"{prefix}left", n - 1) for n in SCORES}
    keys |= {f"shift+{n}": shortcuts.option(f"{prefix}right", n - 1) for n in SCORES}
    keys |= {k: shortcuts.option(f"{prefix}verdict", i) for i, k in enumerate("qwe")}
    keys |= {
        "a": shortcuts.button(f"{prefix}approve"),
        "r": shortcuts.button(f"{prefix}reject"),
        "s": shortcuts.button(f"{prefix}skip"),
    }
    shortcuts.bind(keys)
    st.caption(
        "Keyboard: **1-5** score the left answer · **Shift+1-5** the right one · **Q / W / E** "
        "left better / tie / right better · **A** approve · **R** reject · **S** skip · "
        "**Esc** leaves a text field."
    )
