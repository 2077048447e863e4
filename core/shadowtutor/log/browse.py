"""Reading pairs without opening files: one pair by its id, the newest pairs with filters,
and a pair as plain text (`shadowtutor logs show ID`, `shadowtutor logs tail`).

Pairs are rows of the log's flat ``pairs`` view (:data:`shadowtutor.log.sql.FLAT_SELECT`):
JSONL and Parquet alike, in a folder or a bucket, times in UTC.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from shadowtutor.log import read, sql
from shadowtutor.log.storage import LogDir

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """``30m``, ``2h``, ``7d``, ``1w`` before ``now``, or an ISO date or time (UTC when it
    names no zone); an aware UTC datetime, or ValueError saying what is understood."""
    now = now or datetime.now(UTC)
    value = text.strip().lower()
    if match := _RELATIVE.fullmatch(value):
        return now - timedelta(**{_UNITS[match[2]]: float(match[1])})
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"--since {text!r}: give a span like 30m, 2h, 7d or 1w, or a date or time like "
            "2026-12-07 or 2026-12-07T09:30"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _rows(
    log_dir: LogDir, where: list[str], params: dict[str, Any], limit: int
) -> list[dict[str, Any]]:
    con = sql.connect(log_dir)
    read.create_views(con, log_dir)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    # the flat row, and from the raw record what a pair's text needs besides (the protocol,
    # the tool names the request offered)
    cur = con.execute(
        "SELECT p.*, r.protocol AS protocol, r.request.tools AS request_tools FROM pairs p "
        "JOIN (SELECT id, protocol, request FROM raw_pairs) r USING (id) "
        f"{clause.replace('WHERE ', 'WHERE p.', 1) if clause else ''} "
        f"ORDER BY p.ts DESC, p.id LIMIT {int(limit)}",
        params,
    )
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    for row in rows:
        row["messages"] = json.loads(row["messages"]) if row["messages"] else []
        row["metadata"] = json.loads(row["metadata"]) if row["metadata"] else {}
    return rows


def find(log_dir: LogDir, pair_id: str) -> dict[str, Any] | None:
    """The pair with this id (a flat ``pairs`` row), or None."""
    rows = _rows(log_dir, ["id = $id"], {"id": pair_id}, 1)
    return rows[0] if rows else None


def newest(
    log_dir: LogDir,
    *,
    limit: int = 20,
    student: str | None = None,
    category: str | None = None,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    """The newest pairs first, of one student, one category, and since a time when given."""
    where: list[str] = []
    params: dict[str, Any] = {}
    if student is not None:
        where.append("student_name = $student")
        params["student"] = student
    if category is not None:
        where.append("category = $category")
        params["category"] = category
    if since is not None:
        where.append("ts >= $since")
        params["since"] = since.astimezone(UTC).replace(tzinfo=None)
    return _rows(log_dir, where, params, limit)


def _when(ts: datetime | None) -> str:
    return f"{ts:%Y-%m-%d %H:%M:%S} UTC" if ts else "?"


def _answer(row: dict[str, Any], who: str) -> str:
    facts = [str(row[f"{who}_model"] or "?")]
    if row[f"{who}_latency_ms"] is not None:
        facts.append(f"{row[f'{who}_latency_ms']:,.0f} ms")
    cost = row[f"{who}_cost_usd"]
    facts.append("cost unknown" if cost is None else f"${cost:.6f}")
    if row.get(f"{who}_finish_reason"):
        facts.append(f"finish {row[f'{who}_finish_reason']}")
    head = f"{who.upper()} ({', '.join(facts)})"
    if row[f"{who}_error"]:
        return f"{head}: error: {row[f'{who}_error']}"
    calls = _json(row.get(f"{who}_tool_calls")) or []
    if row[f"{who}_response"] is None and not calls:
        return f"{head}: not asked"
    parts = [row[f"{who}_response"]] if row[f"{who}_response"] else []
    if row.get(f"{who}_refusal"):
        parts.append(f"refused: {row[f'{who}_refusal']}")
    for call in calls:  # a tool call has no text: its name and arguments, as sent
        arguments = call.get("arguments") if isinstance(call, dict) else call
        name = call.get("name", "?") if isinstance(call, dict) else "?"
        text = arguments if isinstance(arguments, str) else json.dumps(arguments)
        parts.append(f"called {name}({text})")
    return f"{head}:\n" + "\n".join(parts)


def _json(value: Any) -> Any:
    """A JSON column as DuckDB hands it over (text, or already a list)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _content(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return str(content or "")


def as_text(row: dict[str, Any]) -> str:
    """A pair as plain text: what it is, the conversation, then both answers."""
    score = row["similarity"]
    similarity = "n/a" if score is None else f"{score:.3f} ({row['similarity_method']})"
    head = (
        f"pair {row['id']} · {_when(row['ts'])} · {row['source']} · student "
        f"{row['student_name']} · category {row['category'] or 'n/a'} · language "
        f"{row['language'] or 'n/a'} · similarity {similarity} · served by "
        f"{row['served_by'] or 'teacher'}"
    )
    kind = row.get("request_kind") or "plain"
    if kind != "plain" or (row.get("protocol") or "openai.chat") != "openai.chat":
        tools = _json(row.get("request_tools")) or []
        head += f"\nkind {kind}" + (f" ({', '.join(map(str, tools))})" if tools else "")
        head += f" · protocol {row.get('protocol') or 'openai.chat'}"
        if row.get("agreement_score") is not None:
            head += f" · agreement {row['agreement_score']:.2f} ({row.get('agreement_kind')})"
    turns = [f"{m.get('role', '?').upper()}: {_content(m)}" for m in row["messages"]]
    return "\n\n".join([head, *turns, _answer(row, "teacher"), _answer(row, "student")])


def as_line(row: dict[str, Any], width: int = 60) -> str:
    """A pair as one line: time, id, student, category, similarity, the prompt's start."""
    prompt = " ".join(next(
        (_content(m) for m in reversed(row["messages"]) if m.get("role") == "user"), ""
    ).split())  # fmt: skip
    prompt = prompt if len(prompt) <= width else prompt[: width - 1] + "…"
    score = "  n/a" if row["similarity"] is None else f"{row['similarity']:.2f}"
    return (
        f"{_when(row['ts'])}  {row['id']}  {row['student_name']}  "
        f"{row['category'] or '-'}  sim {score}  {prompt}"
    )
