"""``shadowtutor feedback import FILE``: an existing table of users' feedback into the log.

The file is CSV (a header row) or JSONL (one object a line), with the fields an app sends to
``POST /v1/feedback`` (``request_id``, ``kind``, ``value``, ``comment``, ``scale``, ``text``,
``event_id``, ``user``, ``ts``, ``metadata``). A row without a ``request_id`` is keyed by
``conversation_id`` and ``ts``: it is tied to the last answer of that conversation at or
before ``ts`` (within ``within``), found in the log; a row no answer fits is *unresolved*.

Every row is accounted for in the :class:`ImportReport`: accepted (with how many have no pair
in the log: ``unknown_id``, kept with ``matched: false``), duplicate (already in the log, or
twice in the file), malformed and unresolved (with line numbers and reasons), and write
failures.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from shadowtutor.collect.feedback import FeedbackDesk
from shadowtutor.log import feedback, read, schema, sql
from shadowtutor.log.storage import LogDir

_NUMBERS = ("value", "scale")


@dataclass
class ImportReport:
    rows: int = 0
    accepted: int = 0
    unknown_id: int = 0
    duplicate: int = 0
    malformed: int = 0
    unresolved: int = 0
    write_failed: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


def rows_of(path: Path) -> list[tuple[int, Any]]:
    """(line number, row) of a CSV or JSONL file (by its suffix; ``.csv`` is CSV)."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        return [(reader.line_num, _csv_row(row)) for row in reader]
    out: list[tuple[int, Any]] = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((i, json.loads(line)))
        except ValueError as exc:
            out.append((i, f"not valid JSON ({exc})"))
    return out


def _csv_row(row: dict[str | Any, Any]) -> dict[str, Any]:
    """A CSV row as an event: empty cells are absent, numbers read as numbers."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key is None or value is None or value == "":
            continue
        if key in _NUMBERS:
            try:
                out[key] = float(value)
                continue
            except ValueError:
                pass
        if key == "metadata":
            try:
                out[key] = json.loads(value)
                continue
            except ValueError:
                pass
        out[key] = value
    return out


def resolve(
    con: duckdb.DuckDBPyConnection, keyed: list[dict[str, Any]], within: timedelta
) -> list[str | None]:
    """The request id of each (conversation, time) row: the conversation's last answer at or
    before its time, no older than ``within`` (None when no answer fits)."""
    if not keyed:
        return []
    conv = [schema.pseudonymize_conversation(str(r["conversation_id"])) for r in keyed]
    times: list[datetime | None] = []
    for r in keyed:
        try:
            times.append(schema.parse_ts(str(r["ts"])).replace(tzinfo=None))
        except (ValueError, OverflowError):
            times.append(None)
    found = con.execute(
        "WITH asked AS (SELECT unnest(range(len($c))) AS i, unnest($c) AS c, "
        "unnest(CAST($t AS TIMESTAMP[])) AS t) "
        "SELECT asked.i, (SELECT p.request_id FROM pairs p WHERE p.is_primary "
        "AND p.conversation_id = asked.c AND p.ts <= asked.t AND p.ts >= asked.t - $w "
        "ORDER BY p.ts DESC LIMIT 1) FROM asked ORDER BY asked.i",
        {"c": conv, "t": times, "w": within},
    ).fetchall()
    return [rid for _, rid in found]


def import_file(
    path: Path, log_dir: LogDir, *, within: timedelta = timedelta(hours=24)
) -> ImportReport:
    """Import ``path`` into the log's feedback part (see the module docstring)."""
    report = ImportReport()
    rows = rows_of(path)
    report.rows = len(rows)
    con = sql.connect(log_dir)
    read.create_views(con, log_dir)
    keyed = [
        (n, r)
        for n, r in rows
        if isinstance(r, dict) and not r.get("request_id") and r.get("conversation_id")
    ]
    for (_n, row), rid in zip(keyed, resolve(con, [r for _, r in keyed], within), strict=True):
        if rid is None:
            row["_unresolved"] = True
        else:
            row["request_id"] = rid
            row.pop("conversation_id", None)  # the answer's conversation is in its pair
    answered = {r[0] for r in con.execute("SELECT DISTINCT request_id FROM pairs").fetchall()}
    desk = FeedbackDesk(log_dir)
    desk.remember(feedback.scan(log_dir).ids)  # what the log holds already is a duplicate
    try:
        for n, row in rows:
            _one(desk, report, n, row, answered)
    finally:
        desk.close()
    return report


def _one(desk: FeedbackDesk, report: ImportReport, n: int, row: Any, answered: set[str]) -> None:
    if isinstance(row, str):
        report.malformed += 1
        report.problems.append((n, row))
        return
    if isinstance(row, dict) and row.pop("_unresolved", False):
        report.unresolved += 1
        report.problems.append((n, "no answer of that conversation at or before that time"))
        return
    rid = row.get("request_id") if isinstance(row, dict) else None
    [outcome] = desk.take([row], source="import", matched=rid in answered)
    if outcome.status == "accepted":
        report.accepted += 1
        report.unknown_id += not outcome.matched
    elif outcome.status == "duplicate":
        report.duplicate += 1
    elif outcome.status == "malformed":
        report.malformed += 1
        report.problems.append((n, outcome.error or "malformed"))
    else:
        report.write_failed += 1
        report.problems.append((n, outcome.error or "not written"))


def summary(report: ImportReport, shown: int = 20) -> str:
    """The report as the CLI prints it."""
    lines = [
        f"{report.rows} rows: {report.accepted} imported ({report.unknown_id} of them for an id "
        f"with no pair in the log, kept), {report.duplicate} duplicate, {report.malformed} "
        f"malformed, {report.unresolved} unresolved, {report.write_failed} not written"
    ]
    for n, reason in report.problems[:shown]:
        lines.append(f"  line {n}: {reason}")
    if len(report.problems) > shown:
        lines.append(f"  ... and {len(report.problems) - shown} more")
    return "\n".join(lines)
