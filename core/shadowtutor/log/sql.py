"""The DuckDB SQL over the shadow log: how JSONL and Parquet files are read as records, which
JSONL lines count (those the validator accepts), and the flat ``pairs`` view every query
reads. The texts are the same for a folder and a bucket; only the file URLs differ.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb

from shadowtutor.log import schema, storage
from shadowtutor.log.storage import LogDir

# The flat view every query reads: one row a pair, nested fields as prefixed columns.
FLAT_SELECT = (
    "SELECT id, CAST(left(replace(ts, 'T', ' '), 23) AS TIMESTAMP) AS ts, source, user_hash, "
    "conversation_id, category, language, messages, "
    + ", ".join(f"teacher.{c} AS teacher_{c}" for c in schema.ANSWER_FIELDS)
    + ", "
    + ", ".join(f"student.{c} AS student_{c}" for c in schema.ANSWER_FIELDS)
    + ", similarity.method AS similarity_method, similarity.score AS similarity, "
    "routing.served_by AS served_by, CAST(routing.stage AS DOUBLE) AS stage, "
    "routing.bucket AS bucket, routing.eligible AS eligible, metadata, "
    # version 1 records: their own request's primary record, the default student's
    "coalesce(request_id, id) AS request_id, "
    f"coalesce(student_name, '{schema.DEFAULT_STUDENT}') AS student_name, "
    "(request_id IS NULL OR request_id = id) AS is_primary, "
    # version 3: what was asked and how the answers agree (older records: a plain request)
    "coalesce(request.kind, 'plain') AS request_kind, agreement.kind AS agreement_kind, "
    "agreement.score AS agreement_score, "
    "TRY_CAST(json_extract_string(agreement.details, '$.valid') AS BOOLEAN) AS agreement_valid, "
    # the request router's version, score and threshold (routed mode; older records: NULL)
    "routing.router_version AS router_version, routing.router_score AS router_score, "
    "routing.router_threshold AS router_threshold, "
    "routing.validator_score AS validator_score, "
    "routing.validator_threshold AS validator_threshold"
)


def sql_list(paths: Iterable[Any], log_dir: LogDir | None = None) -> str:
    """A DuckDB list of the files' URLs (local paths when no storage is named)."""
    url = storage.resolve(log_dir).url if log_dir is not None else str
    return "[" + ", ".join("'" + url(p).replace("'", "''") + "'" for p in paths) + "]"


def read_json_sql(paths: Iterable[Any], log_dir: LogDir | None = None) -> str:
    """DuckDB's reader of JSONL files with the record's columns (:data:`schema.RAW_COLUMNS`)."""
    cols = "{" + ", ".join(f"'{k}': '{v}'" for k, v in schema.RAW_COLUMNS.items()) + "}"
    return (
        f"read_json({sql_list(paths, log_dir)}, format='newline_delimited', columns={cols}, "
        "ignore_errors=true, maximum_object_size=67108864)"
    )


# The JSONL lines the queries read: those :func:`schema.validate` would accept, as far as
# SQL can tell (Parquet parts hold only validated records). A line it rejects (a
# `schema_version: 4`, no messages, no teacher answer) is counted by `logs validate` and
# quarantined by `logs compact`, never counted by the dashboards.
VALID_JSONL = (
    "id IS NOT NULL AND length(id) <= {max_id} AND coalesce(schema_version, 1) IN ({versions}) "
    "AND try_cast(left(replace(ts, 'T', ' '), 23) AS TIMESTAMP) IS NOT NULL "
    "AND json_type(messages) = 'ARRAY' AND json_array_length(messages) > 0 "
    "AND teacher.model IS NOT NULL AND teacher.model <> '' "
    "AND (teacher.response IS NOT NULL OR coalesce(teacher.error, '') <> '') "
    "AND (source IS NULL OR source IN ({sources})) "
    "AND (similarity.score IS NULL OR similarity.score BETWEEN 0 AND 1)"
).format(
    versions=", ".join(map(str, schema.SUPPORTED_VERSIONS)),
    max_id=schema.MAX_ID_LENGTH,
    sources=", ".join(f"'{s}'" for s in schema.SOURCES),
)


def raw_select(log_dir: LogDir, listing: tuple[list[Any], list[Any]]) -> str:
    """SQL selecting every valid raw record (JSONL and Parquet together); empty when none.
    ``listing``: the log's (JSONL, Parquet) files. The connection must have been prepared
    (:func:`connect`, or ``storage.prepare``)."""
    parts = []
    jsonl, parquet = listing
    if jsonl:
        parts.append(f"SELECT * FROM {read_json_sql(jsonl, log_dir)} WHERE {VALID_JSONL}")
    if parquet:
        parts.append(f"SELECT * FROM read_parquet({sql_list(parquet, log_dir)})")
    # Always the full column set, so a log of version 1 Parquet parts (no `request_id`,
    # `student_name`) reads with those columns NULL.
    cols = ", ".join(f"CAST(NULL AS {t}) AS {k}" for k, t in schema.RAW_COLUMNS.items())
    return " UNION ALL BY NAME ".join([f"SELECT {cols} WHERE false", *parts])


def connect(log_dir: LogDir) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that can read the log's files."""
    con = duckdb.connect()
    storage.resolve(log_dir).prepare(con)
    return con
