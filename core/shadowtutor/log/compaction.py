"""Compaction: every closed day's JSONL files become one Parquet part.

Layout after it::

    parquet/date=YYYY-MM-DD/part-<hash>.parquet      closed days
    quarantine/date=YYYY-MM-DD/<file>               JSONL files with lines the validator rejects

The same steps run for a folder and a bucket, through the log's storage.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from shadowtutor.log import read, schema, sql, storage
from shadowtutor.log.read import BadLine
from shadowtutor.log.storage import LogDir


@dataclass
class CompactReport:
    days: list[str] = field(default_factory=list)
    rows_written: int = 0
    duplicates_skipped: int = 0
    bad_lines: int = 0
    files_removed: int = 0
    quarantined: list[str] = field(default_factory=list)  # files with bad lines, moved aside
    swept: list[str] = field(default_factory=list)  # staging files a killed run left, removed
    bad: list[BadLine] = field(default_factory=list)  # each bad line: file, number, reason
    problems: list[str] = field(default_factory=list)
    # days another run compacted while this one read them (their files vanished): nothing to do
    already_compacted: list[str] = field(default_factory=list)


def compact(log_dir: LogDir, *, today: date | None = None) -> CompactReport:
    """Turn every closed day's JSONL files into one Parquet part.

    The JSONL files are removed only after the Parquet part is in place (built locally, then
    renamed into a folder or uploaded to a bucket in one PUT) and holds exactly the good,
    not-yet-compacted records they contained. A re-run after a crash finds the part by its
    name (a hash of the source files and their ids) and only finishes the removal. Writers
    may keep running. Lines the validator rejects never reach Parquet: each is named in
    ``bad`` and its file is moved to ``quarantine/``; the day is compacted all the same.
    """
    today = today or datetime.now(UTC).date()
    where = storage.resolve(log_dir)
    report = CompactReport(swept=where.sweep_staging())
    by_day: dict[str, list[Any]] = {}
    for path in read.jsonl_files(where, before=today):
        by_day.setdefault(path.parent.name[5:], []).append(path)
    for day, files in sorted(by_day.items()):
        # Hold the day's files (a folder locks them against its writers), so no line lands
        # in a file being removed.
        try:
            with where.hold(files) as held:
                if held:
                    _compact_day(where, day, held, report)
        except FileNotFoundError:
            # Only a compaction removes a closed day's files: another run took this day
            # between our listing and our reading, and publishes (or published) its part.
            report.already_compacted.append(day)
    return report


def _compact_day(
    where: storage.Storage,
    day: str,
    files: list[Any],
    report: CompactReport,
) -> None:
    others = [p for p in where.files("parquet", ".parquet") if p.parent.name == f"date={day}"]
    found = read.ReadReport()
    good_ids: set[str] = set()
    # Only records the validator accepts go into Parquet (a line it rejects, say a
    # `schema_version: 4`, is named and quarantined with its file): the part is written from
    # a local file of the validated lines, so its row count always matches theirs.
    building = where.sub("parquet", f"date={day}", f"part-{uuid.uuid4().hex[:8]}.parquet")
    with where.staging(building) as staged:
        owner = storage.staging_owner()  # in the name: see Storage.sweep_staging
        valid = staged.with_name(f".{day}-{uuid.uuid4().hex[:8]}.validated.{owner}.tmp")
        try:
            with open(valid, "wb") as out:
                for f in files:
                    for rec, _raw in read.read_jsonl_lines(f, found, where):
                        good_ids.add(rec["id"])
                        out.write(schema.dump_line(rec))
            # The part's name is a hash of the files and the ids they hold: a re-run after a
            # crash finds it and only finishes the removal, and lines written to a day after
            # its compaction (a new file of the same name) never take the earlier part's name.
            digest = hashlib.sha256(
                "\n".join([*(f.name for f in files), "", *sorted(good_ids)]).encode()
            ).hexdigest()[:16]
            target = where.sub("parquet", f"date={day}", f"part-{digest}.parquet")
            others = [p for p in others if p != target]
            expected = len(good_ids - read.known_ids_in(others, where))
            report.bad_lines += len(found.bad)
            report.bad.extend(found.bad)
            report.duplicates_skipped += found.records - expected
            con = sql.connect(where)
            if expected and not where.exists(target):
                _write_part(con, where, valid, others, staged, target)
            written = 0
            if where.exists(target):
                count = f"SELECT count(*) FROM read_parquet({sql.sql_list([target], where)})"
                written = con.execute(count).fetchone()[0]  # type: ignore[index]
        finally:
            valid.unlink(missing_ok=True)
    if written != expected:
        if where.exists(target):
            where.delete(target)
        report.problems.append(
            f"{day}: Parquet part has {written} rows but the JSONL files hold {expected} "
            "good records; JSONL kept, nothing removed"
        )
        return
    damaged = {b.path for b in found.bad}
    for f in files:
        try:
            if str(f) in damaged:  # keep the bytes we could not read, out of the readers' way
                dest = _quarantine_name(where, day, f)
                where.move(f, dest)
                report.quarantined.append(where.display(dest))
            else:
                where.delete(f)
        except FileNotFoundError:  # a concurrent compaction removed it first
            pass
        report.files_removed += 1
    report.days.append(day)
    report.rows_written += written


def _write_part(
    con: Any,
    where: storage.Storage,
    valid: Path,
    others: list[Any],
    staged: Path,
    target: Any,
) -> None:
    """The part built locally from the validated lines (deduplicated, ordered by time, new
    ids only), checked to have the record's Parquet schema, then put in place whole."""
    excluded = ""
    if others:
        excluded = f"AND id NOT IN (SELECT id FROM read_parquet({sql.sql_list(others, where)}))"
    con.execute(
        f"COPY (SELECT * FROM {sql.read_json_sql([valid])} WHERE id IS NOT NULL "
        f"{excluded} QUALIFY row_number() OVER (PARTITION BY id ORDER BY ts) = 1 "
        f"ORDER BY ts) TO '{staged}' (FORMAT parquet, COMPRESSION zstd)"
    )
    missing = set(schema.PARQUET_SCHEMA.names) - set(pq.read_schema(staged).names)
    if missing:  # the SQL and the record drifted apart: never publish such a part
        raise RuntimeError(f"the Parquet part lacks the record's columns {sorted(missing)}")
    where.put_file(staged, target)


def _quarantine_name(where: storage.Storage, day: str, f: Any) -> Any:
    dest = where.sub("quarantine", f"date={day}", f.name)
    n = 1
    while where.exists(dest):  # a writer may reuse a file name after a compaction
        dest = where.sub("quarantine", f"date={day}", f"{f.stem}.{n}{f.suffix}")
        n += 1
    return dest
