"""Where the log lives: a folder or s3://bucket/prefix (no server needed here; the real S3
server tests are in tests/integration/test_s3_log.py)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from shadowtutor.config import Settings
from shadowtutor.log import bucket, storage, write
from shadowtutor.log.errors import LogStorageError


def test_a_folder_stays_a_path(tmp_path: Path) -> None:
    s = Settings.load({"SHADOWTUTOR_HOME": str(tmp_path)})
    assert s.log_path == tmp_path / "logs" and isinstance(s.log_path, Path)
    assert isinstance(storage.resolve(tmp_path), storage.FolderStorage) and not storage.is_s3(
        tmp_path
    )
    writer = write.LogWriter(tmp_path)
    assert type(writer) is write.LogWriter
    writer.close()


def test_an_s3_url_gives_a_bucket_location_and_a_spooling_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    s = Settings.load(
        {
            "SHADOWTUTOR_HOME": str(tmp_path),
            "SHADOWTUTOR_LOG_DIR": "s3://my-bucket/team/log/",
            "SHADOWTUTOR_LOG_PART_MB": "0.5",
        }
    )
    loc = s.log_path
    assert isinstance(loc, bucket.S3Storage) and storage.is_s3(loc) and storage.is_s3("s3://x/y")
    assert (loc.bucket, loc.prefix, str(loc)) == (
        "my-bucket",
        "team/log",
        "s3://my-bucket/team/log",
    )
    assert loc.part_bytes == 512 * 1024 and loc.spool.parent == tmp_path / "spool"
    assert loc.sub("jsonl", "date=2026-01-02", "a.jsonl") == PurePosixPath(
        "my-bucket/team/log/jsonl/date=2026-01-02/a.jsonl"
    )
    assert s.log_path is loc  # one client per bucket and credentials
    writer = write.LogWriter(loc)
    assert isinstance(writer, write.SpoolWriter)
    writer.close()  # nothing written: nothing to upload, no request made
    assert writer.stats()["parts_pending"] == 0


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix"])
def test_an_s3_url_without_bucket_is_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(LogStorageError, match="SHADOWTUTOR_LOG_DIR"):
        bucket.S3Storage(url, spool_dir=tmp_path)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"AWS_ACCESS_KEY_ID": "k"}, "AWS_SECRET_ACCESS_KEY"),
        ({"AWS_SECRET_ACCESS_KEY": "s"}, "AWS_ACCESS_KEY_ID"),
        ({"AWS_ENDPOINT_URL": "127.0.0.1:8333"}, "AWS_ENDPOINT_URL"),
    ],
)
def test_half_configured_credentials_name_the_variable(
    env: dict, named: str, tmp_path: Path
) -> None:
    loc = bucket.S3Storage("s3://b/p", spool_dir=tmp_path, env=env)
    with pytest.raises(LogStorageError, match=named):
        loc.fs  # noqa: B018


@pytest.mark.parametrize(
    ("error", "named"),
    [
        ("AWS Error SIGNATURE_DOES_NOT_MATCH during ListObjectsV2", "AWS_SECRET_ACCESS_KEY"),
        ("AWS Error INVALID_ACCESS_KEY_ID during ListObjectsV2", "AWS_ACCESS_KEY_ID"),
        ("AWS Error NETWORK_CONNECTION during HeadBucket", "AWS_ENDPOINT_URL"),
        ("AWS Error NO_SUCH_BUCKET during ListObjectsV2", "SHADOWTUTOR_LOG_DIR"),
    ],
)
def test_storage_errors_are_explained(error: str, named: str, tmp_path: Path) -> None:
    loc = bucket.S3Storage("s3://b/p", spool_dir=tmp_path, env={})
    assert named in str(loc.explain(OSError(error)))
