"""Training data export: selection, targets, drops, split, formats, manifest, admins only."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlmodel import Session, select

from shadowtutor import db
from shadowtutor.accounts import permissions
from shadowtutor.accounts.permissions import PermissionDenied
from shadowtutor.cli import main
from shadowtutor.export import build, jobs
from shadowtutor.export.jobs import ExportFilters, ExportOptions
from shadowtutor.tables import ExportJob
from tests.support.exportdata import SYSTEM, T0, add_many, add_pair, add_user

# --- pure logic -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "error"),
    [
        ([{"role": "user", "content": "hi"}], None),
        ([{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}], None),
        (
            [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"},
            ],
            None,
        ),
        ([{"role": "user", "content": [{"type": "text", "text": "parts"}]}], None),
        ([], "end with a user"),
        ([{"role": "assistant", "content": "x"}], "start with the user"),
        ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "in a row"),
        ([{"role": "tool", "content": "x"}], "cannot be fine-tuned"),
        (
            [{"role": "user", "content": "a"}, {"role": "system", "content": "s"}],
            "middle",
        ),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "end with"),
    ],
)
def test_normalize_prompt(messages: list, error: str | None) -> None:
    if error is None:
        prompt = jobs.normalize_prompt(messages)
        jobs.check_chat([*prompt, {"role": "assistant", "content": "answer"}])
    else:
        with pytest.raises(ValueError, match=error):
            jobs.normalize_prompt(messages)


def test_default_system_prompt_only_where_missing() -> None:
    own = jobs.normalize_prompt(
        [{"role": "system", "content": "own"}, {"role": "user", "content": "q"}], "default"
    )
    none = jobs.normalize_prompt([{"role": "user", "content": "q"}], "default")
    assert own[0]["content"] == "own" and none[0] == {"role": "system", "content": "default"}


@pytest.mark.parametrize(
    ("messages", "ok"),
    [
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], True),
        ([{"role": "user", "content": "q"}], False),
        ([{"role": "system", "content": "s"}], False),
        ([{"role": "assistant", "content": "a"}], False),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": " "}], False),
        (
            [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "x": 1}],
            False,
        ),
    ],
)
def test_check_chat(messages: list, ok: bool) -> None:
    if ok:
        jobs.check_chat(messages)
    else:
        with pytest.raises(ValueError):
            jobs.check_chat(messages)


@pytest.mark.parametrize(
    ("n", "fractions", "expected"),
    [
        (10, (0.8, 0.1, 0.1), {"train": 8, "val": 1, "test": 1}),
        (100, (0.8, 0.1, 0.1), {"train": 80, "val": 10, "test": 10}),
        (100, (0.7, 0.3, 0.0), {"train": 70, "val": 30, "test": 0}),
        (3, (0.8, 0.1, 0.1), {"train": 3, "val": 0, "test": 0}),
        (20, (0.5, 0.25, 0.25), {"train": 10, "val": 5, "test": 5}),
    ],
)
def test_assign_splits_proportions_per_language(n: int, fractions: tuple, expected: dict) -> None:
    convs = {f"{lang}-{i}": (lang, 1) for lang in ("en", "it") for i in range(n)}
    result = jobs.assign_splits(convs, fractions)
    for lang in ("en", "it"):
        got = defaultdict(int)
        for key, split in result.items():
            if key.startswith(lang):
                got[split] += 1
        assert {s: got[s] for s in jobs.SPLITS} == expected
    assert jobs.assign_splits(dict(reversed(convs.items())), fractions) == result


def test_assign_splits_weights_conversation_sizes() -> None:
    convs = {f"c{i}": ("en", 1 + i % 4) for i in range(200)}
    result = jobs.assign_splits(convs)
    sizes = defaultdict(int)
    for key, split in result.items():
        sizes[split] += convs[key][1]
    total = sum(sizes.values())
    assert abs(sizes["train"] / total - 0.8) < 0.02 and abs(sizes["test"] / total - 0.1) < 0.02
    assert jobs.assign_splits(convs, seed="other") != result


@pytest.mark.parametrize(
    ("text", "expected"),
    [("80/10/10", (0.8, 0.1, 0.1)), ("0.9,0.1,0", (0.9, 0.1, 0.0)), ("8:1:1", (0.8, 0.1, 0.1))],
)
def test_parse_split(text: str, expected: tuple) -> None:
    assert jobs.parse_split(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["80/20", "a/b/c", "0/0/0"])
def test_parse_split_refuses(text: str) -> None:
    with pytest.raises(jobs.ExportError, match="split"):
        jobs.parse_split(text)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ExportOptions(split=(0.0, 0.5, 0.5)), "train share"),
        (ExportOptions(split=(0.5, 0.2, 0.2)), "100%"),
        (ExportOptions(formats=("parquet",)), "formats"),
        (ExportOptions(max_tokens=3), "max tokens"),
    ],
)
def test_bad_options_are_named(options: ExportOptions, message: str) -> None:
    with pytest.raises(jobs.ExportError, match=message):
        options.check()


@pytest.mark.parametrize(
    "text",
    ["plain", "ünïcödé ✓ 日本語", 'quotes " and \\ backslash', "new\nline\ttab\x00nul", "emoji 🙂"],
)
def test_fast_line_writer_matches_json_dumps(text: str) -> None:
    from shadowtutor.export.build import Example, _dumps, _LineWriter

    e = Example(
        pair_id="p", conversation="c", language="en", category="x", source="live", ts="",
        prompt=[{"role": "system", "content": text}, {"role": "user", "content": text}],
        target=text + "!", target_source="teacher", teacher=text, student=text + "?",
        student_score=1, student_worse=True, tags=[],
    )  # fmt: skip
    writer = _LineWriter()
    for _ in range(2):  # the second time the system prompt comes from the cache
        assert writer.sft(e) == _dumps(e.sft())
        assert writer.preference(e) == _dumps(e.preference())


# --- helpers ----------------------------------------------------------------------------


def _run(session: Session, root: Path, admin: int, **kw) -> jobs.ExportResult:  # noqa: ANN003
    return jobs.run_export(session=session, actor_id=admin, export_root=root, **kw)


def _lines(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def _csv(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))


@pytest.fixture
def admin(session: Session) -> int:
    return add_user(session, "admin")


@pytest.fixture
def reviewer(session: Session) -> int:
    return add_user(session, "reviewer")


# --- the export on the database ----------------------------------------------------------


def test_every_line_follows_the_chat_rules(
    session: Session, tmp_path: Path, admin: int, reviewer: int
) -> None:
    add_many(session, reviewer, 60, conversations=25)
    add_pair(
        session,
        reviewer,
        "multi",
        history=[{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "ok"}],
    )
    result = _run(session, tmp_path, admin)
    total = 0
    for split in jobs.SPLITS:
        for line in _lines(result.path / f"sft_{split}.jsonl"):
            assert set(line) == {"messages"}
            jobs.check_chat(line["messages"])
            assert line["messages"][0] == {"role": "system", "content": SYSTEM}
            total += 1
        for line in _lines(result.path / f"preference_{split}.jsonl"):
            assert set(line) == {"prompt", "chosen", "rejected"}
            jobs.check_chat([*line["prompt"], *line["chosen"]])
            jobs.check_chat([*line["prompt"], *line["rejected"]])
            assert line["chosen"] != line["rejected"]
    assert total == result.counts["examples"] == 61
    # student scores 1..5 cycle with verdict "teacher" for 1 and 2: 2 in 5 are preferences
    assert sum(result.counts["preference_pairs"].values()) == 24
    rows = _csv(result.path / "pairs.csv")
    assert len(rows) == 61 and tuple(rows[0]) == jobs.CSV_COLUMNS


def test_no_conversation_in_two_splits(
    session: Session, tmp_path: Path, admin: int, reviewer: int
) -> None:
    add_many(session, reviewer, 200, conversations=40)
    result = _run(session, tmp_path, admin)
    where: dict[str, set[str]] = defaultdict(set)
    rows = _csv(result.path / "pairs.csv")
    for row in rows:
        where[row["conversation_id"]].add(row["split"])
    assert len(where) == 40 and all(len(s) == 1 for s in where.values())
    per_split = {s: sum(r["split"] == s for r in rows) for s in jobs.SPLITS}
    assert per_split == result.counts["per_split"]
    for s in jobs.SPLITS:
        assert len(_lines(result.path / f"sft_{s}.jsonl")) == per_split[s]
    assert all(per_split[s] > 0 for s in jobs.SPLITS)
    # balanced by language: every language has a train, val and test share
    for lang, counts in result.counts["per_language"].items():
        assert all(counts[s] > 0 for s in jobs.SPLITS), (lang, counts)


def test_same_selection_gives_identical_bytes(
    session: Session, tmp_path: Path, admin: int, reviewer: int
) -> None:
    add_many(session, reviewer, 50, conversations=20)
    add_pair(session, reviewer, "pii", question="mail me: anna@example.com, +39 333 123 4567")
    first = _run(session, tmp_path, admin)
    second = _run(session, tmp_path, admin, now=datetime.now(UTC) + timedelta(hours=1))
    assert first.path != second.path
    names = sorted(p.name for p in first.path.iterdir())
    assert names == sorted(p.name for p in second.path.iterdir())
    for name in names:
        if name != "manifest.json":
            assert (first.path / name).read_bytes() == (second.path / name).read_bytes(), name
    m1 = json.loads((first.path / "manifest.json").read_text())
    m2 = json.loads((second.path / "manifest.json").read_text())
    assert m1["files"] == m2["files"] and m1["created_at"] != m2["created_at"]


def test_manifest_matches_the_files(
    session: Session, tmp_path: Path, admin: int, reviewer: int
) -> None:
    add_many(session, reviewer, 30)
    result = _run(session, tmp_path, admin, filters=ExportFilters(languages=("en", "it")))
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert manifest["format_version"] == jobs.FORMAT_VERSION
    assert manifest["created_by"] == "admin-x" and manifest["created_at"]
    assert manifest["filters"]["languages"] == ["en", "it"]
    assert jobs.verify_folder(result.path) == []
    on_disk = {p.name for p in result.path.iterdir()} - {"manifest.json"}
    assert on_disk == set(manifest["files"]) >= {"README.md", "Modelfile", "pairs.csv"}
    for split in jobs.SPLITS:
        meta = manifest["files"][f"sft_{split}.jsonl"]
        assert meta["lines"] == manifest["counts"]["per_split"][split]
    assert set(manifest["counts"]["per_language"]) == {"en", "it"}
    assert sum(sum(v.values()) for v in manifest["counts"]["per_category"].values()) == 16
    readme = (result.path / "README.md").read_text()
    assert "ollama create" in readme and "SFTTrainer" in readme and "FastLanguageModel" in readme
    assert f'SYSTEM """{SYSTEM}"""' in (result.path / "Modelfile").read_text()
    (result.path / "pairs.csv").write_text("tampered")
    assert jobs.verify_folder(result.path) == ["pairs.csv: SHA-256 differs from the manifest"]
    job = session.get(ExportJob, result.job_id)
    assert job.path == str(result.path) and job.counts["examples"] == 16


def test_manager_and_reviewer_are_refused(session: Session, tmp_path: Path, reviewer: int) -> None:
    add_many(session, reviewer, 5)
    manager = add_user(session, "manager")
    root = tmp_path / "exports"
    for actor in (manager, reviewer, None, permissions.SYSTEM):
        with pytest.raises(PermissionDenied, match="admin"):
            _run(session, root, actor)
    assert not root.exists()
    assert session.exec(select(ExportJob)).first() is None


def test_target_corrected_then_student_then_teacher(
    session: Session, tmp_path: Path, admin: int, reviewer: int
) -> None:
    add_pair(session, reviewer, "a", teacher="T-a", student="S-a",
             reviews=[{"corrected_answer": "C-a", "student_score": 5}])  # fmt: skip
    add_pair(session, reviewer, "b", teacher="T-b", student="S-b",
             reviews=[{"student_score": 5}])  # fmt: skip
    add_pair(session, reviewer, "c", teacher="T-c", student="S-c",
             reviews=[{"student_score": 3}])  # fmt: skip
    opts = ExportOptions(formats=("csv",), student_target_min_score=4)
    rows = {r["pair_id"]: r for r in _csv(_run(session, tmp_path, admin, options=opts).path /
                                          "pairs.csv")}  # fmt: skip
    assert [(rows[k]["target"], rows[k]["target_source"]) for k in "abc"] == [
        ("C-a", "corrected"), ("S-b", "student"), ("T-c", "teacher"),
    ]  # fmt: skip
    rows = _csv(_run(session, tmp_path, admin, options=ExportOptions(formats=("csv",))).path /
                "pairs.csv")  # fmt: skip
    assert [r["target"] for r in rows] == ["C-a", "T-b", "T-c"]


def test_newest_correction_wins_and_old_versions_are_ignored(
    session: Session, tmp_path: Path, admin: int, reviewer: int
) -> None:
    other = add_user(session, "reviewer", "other-reviewer")
    add_pair(session, reviewer, "a", reviews=[
        {"corrected_answer": "old", "decision": "reject", "is_current": False},
        {"corrected_answer": "first"},
        {"corrected_answer": "second", "reviewer_id": other},
    ])  # fmt: skip
    rows = _csv(_run(session, tmp_path, admin).path / "pairs.csv")
    assert [r["target"] for r in rows] == ["second"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (ExportFilters(), {"en1", "it1", "en2", "maj", "tagged"}),
        (ExportFilters(agreement="majority"), {"en1", "it1", "en2", "maj", "tagged"}),
        (ExportFilters(agreement="any"), {"en1", "it1", "en2", "maj", "tagged", "split"}),
        (ExportFilters(languages=("it",)), {"it1"}),
        (ExportFilters(categories=("business",)), {"en2"}),
        (ExportFilters(sources=("replay",)), {"it1"}),
        (ExportFilters(date_from=date(2026, 3, 2)), {"en2"}),
        (ExportFilters(date_to=date(2026, 3, 1)), {"en1", "it1", "maj", "tagged"}),
        (ExportFilters(min_student_score=4), {"en1", "tagged"}),
        (ExportFilters(tags_required=("robotic",)), {"tagged"}),
        (ExportFilters(tags_excluded=("robotic",)), {"en1", "it1", "en2", "maj"}),
    ],
)
def test_filters(session: Session, reviewer: int, filters: ExportFilters, expected: set) -> None:
    other = add_user(session, "reviewer", "second-reviewer")
    add_pair(session, reviewer, "en1", reviews=[{"student_score": 5}])
    add_pair(session, reviewer, "it1", language="it", source="replay",
             reviews=[{"student_score": 2}])  # fmt: skip
    add_pair(session, reviewer, "en2", category="business", ts=T0 + timedelta(days=2),
             reviews=[{"student_score": 3}])  # fmt: skip
    add_pair(session, reviewer, "maj", reviews=[
        {"student_score": 3}, {"decision": "skip", "reviewer_id": other, "student_score": 1},
    ])  # fmt: skip
    add_pair(session, reviewer, "tagged", reviews=[{"tags": ["robotic"], "student_score": 4}])
    add_pair(session, reviewer, "split", reviews=[
        {"student_score": 3}, {"decision": "reject", "reviewer_id": other},
    ])  # fmt: skip
    add_pair(session, reviewer, "rejected", reviews=[{"decision": "reject"}])
    add_pair(session, reviewer, "unreviewed", reviews=[])
    got = {c.pair_id for c in jobs.select_candidates(session=session, filters=filters)}
    assert got == expected
    assert jobs.count_matching(session=session, filters=filters) == len(expected)


def test_majority_agreement(session: Session, reviewer: int) -> None:
    r2, r3 = add_user(session, "reviewer", "r2"), add_user(session, "reviewer", "r3")
    add_pair(session, reviewer, "two-to-one", reviews=[
        {}, {"reviewer_id": r2}, {"reviewer_id": r3, "decision": "reject"},
    ])  # fmt: skip
    pick = {
        a: [c.pair_id for c in jobs.select_candidates(
            session=session, filters=ExportFilters(agreement=a))]
        for a in jobs.AGREEMENTS
    }  # fmt: skip
    assert pick == {"all": [], "majority": ["two-to-one"], "any": ["two-to-one"]}


def test_drops_are_counted(session: Session, tmp_path: Path, admin: int, reviewer: int) -> None:
    add_pair(session, reviewer, "keep", question="same question", teacher="same answer")
    add_pair(session, reviewer, "dup", question="same question", teacher="same answer")
    add_pair(session, reviewer, "empty", teacher="   ")
    add_pair(session, reviewer, "long", question="x" * 5000)
    add_pair(session, reviewer, "tool", history=[{"role": "tool", "content": "{}"}])
    result = _run(session, tmp_path, admin, options=ExportOptions(max_tokens=1000))
    assert result.counts["dropped"] == {
        "duplicate": 1, "empty": 1, "too_long": 1, "invalid_chat": 1,
    }  # fmt: skip
    assert result.counts["examples"] == 1 and result.counts["matched"] == 5


def test_pii_is_scrubbed_before_writing(
    session: Session, tmp_path: Path, admin: int, reviewer: int
) -> None:
    add_pair(
        session,
        reviewer,
        "pii",
        question="I am anna@example.com, card 4111 1111 1111 1111, order 4111 1111 1111 1112",
        teacher="Call +39 333 123 4567 or wire to DE89 3704 0044 0532 0130 00 from 10.0.0.1",
        student="no",
        reviews=[{"verdict": "teacher", "student_score": 1}],
    )
    result = _run(session, tmp_path, admin)
    blob = b"".join(p.read_bytes() for p in result.path.iterdir() if p.name != "manifest.json")
    for secret in (b"anna@example.com", b"4111 1111 1111 1111", b"333 123 4567", b"DE89",
                   b"10.0.0.1"):  # fmt: skip
        assert secret not in blob
    assert b"4111 1111 1111 1112" in blob  # fails Luhn: an order number, kept
    assert result.counts["pii"] == {"email": 1, "phone": 1, "card": 1, "iban": 1, "ip": 1}
    assert result.counts["pairs_with_pii"] == 1
    raw = _run(session, tmp_path, admin, options=ExportOptions(scrub_pii=False))
    assert (
        b"anna@example.com"
        in (raw.path / "sft_train.jsonl").read_bytes()
        + (raw.path / "sft_val.jsonl").read_bytes()
        + (raw.path / "sft_test.jsonl").read_bytes()
    )
    assert "NO (scrubbing was turned off" in (raw.path / "README.md").read_text()


def test_csv_cells_never_start_a_formula(
    session: Session, tmp_path: Path, admin: int, reviewer: int
) -> None:
    add_pair(session, reviewer, "f", question='=HYPERLINK("x")', teacher="@SUM(A1)")
    row = _csv(_run(session, tmp_path, admin).path / "pairs.csv")[0]
    assert row["prompt"] == '\'=HYPERLINK("x")' and row["target"] == "'@SUM(A1)"


def test_csv_guards_a_leading_minus_too(
    session: Session, tmp_path: Path, admin: int, reviewer: int
) -> None:
    add_pair(session, reviewer, "m", question="-2+3+cmd|' /C calc'!A0", teacher="-1")
    row = _csv(_run(session, tmp_path, admin).path / "pairs.csv")[0]
    assert row["prompt"] == "'-2+3+cmd|' /C calc'!A0" and row["target"] == "'-1"


def test_raw_conversation_ids_are_scrubbed_before_export(
    session: Session, tmp_path: Path, admin: int, reviewer: int
) -> None:
    from shadowtutor.log import schema

    for i in range(3):  # pairs logged before conversation ids were pseudonymised
        add_pair(session, reviewer, f"c{i}", conversation_id="jane.roe@example.com")
    result = _run(session, tmp_path, admin)
    rows = _csv(result.path / "pairs.csv")
    pseudonym = schema.pseudonymize_conversation("jane.roe@example.com")
    assert {r["conversation_id"] for r in rows} == {pseudonym}
    for f in result.path.iterdir():
        assert b"jane.roe" not in f.read_bytes(), f.name


GREETINGS = ["Ciao! Come stai?", "ciao come stai", "CIAO, come stai?!", "Ciao!  Come  stai?"]


def test_a_prompt_repeated_across_conversations_is_in_one_split(
    session: Session, tmp_path: Path, admin: int, reviewer: int
) -> None:
    def same(text: str) -> str:  # the test's own normalisation of a prompt
        return " ".join("".join(c if c.isalnum() else " " for c in text.casefold()).split())

    n = 0
    for conv in range(60):
        # one conversation in four opens with a greeting, then asks its own questions
        opening = GREETINGS[conv // 4 % len(GREETINGS)] if conv % 4 == 0 else f"salve {conv}"
        add_pair(
            session, reviewer, f"g{n:04d}", conversation_id=f"conv-{conv}", language="it",
            question=opening, teacher=f"Bene, grazie {conv}!",
        )  # fmt: skip
        n += 1
        for turn in range(2):
            add_pair(
                session, reviewer, f"g{n:04d}", conversation_id=f"conv-{conv}", language="it",
                question=f"domanda {conv}-{turn}?", teacher=f"risposta {conv}-{turn}.",
            )  # fmt: skip
            n += 1
    result = _run(session, tmp_path, admin)
    rows = _csv(result.path / "pairs.csv")
    assert len(rows) == 180
    by_prompt: dict[str, set[str]] = defaultdict(set)
    by_conversation: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        by_prompt[same(row["prompt"])].add(row["split"])
        by_conversation[row["conversation_id"]].add(row["split"])
    assert len(by_prompt["ciao come stai"]) == 1  # the greeting: one split, not three
    assert all(len(s) == 1 for s in by_prompt.values())
    assert all(len(s) == 1 for s in by_conversation.values())
    assert all(result.counts["per_split"][s] > 0 for s in jobs.SPLITS)


def test_nothing_matches_is_a_clear_error(session: Session, tmp_path: Path, admin: int) -> None:
    with pytest.raises(jobs.ExportError, match="no reviewed pairs match"):
        _run(session, tmp_path, admin)


def test_history_and_redownload(
    session: Session, tmp_path: Path, admin: int, reviewer: int
) -> None:
    add_many(session, reviewer, 10)
    first = _run(session, tmp_path, admin)
    second = _run(session, tmp_path, admin, now=datetime.now(UTC) + timedelta(minutes=5))
    history = jobs.list_jobs(session=session)
    assert [j["id"] for j in history] == [second.job_id, first.job_id]
    assert history[0]["created_by"] == "admin-x" and history[0]["examples"] == 10
    files = jobs.job_files(session=session, job_id=first.job_id)
    assert files[0].name == "manifest.json" and {f.name for f in files} >= {"sft_train.jsonl"}
    import shutil

    shutil.rmtree(first.path)
    assert not jobs.list_jobs(session=session)[1]["available"]
    with pytest.raises(jobs.ExportError, match="gone"):
        jobs.job_files(session=session, job_id=first.job_id)


# --- CLI --------------------------------------------------------------------------------


def test_cli_export_refuses_a_manager_and_runs_for_an_admin(migrated, tmp_path: Path) -> None:
    url = migrated.db_url
    with db.session_scope(url) as s:
        reviewer = add_user(s, "reviewer")
        add_user(s, "manager", "mara")
        add_user(s, "admin", "ada")
        add_many(s, reviewer, 20, conversations=8)
    runner = CliRunner()
    refused = runner.invoke(main, ["export", "run", "--as", "mara"])
    assert refused.exit_code == 1
    assert "mara is a manager; only admins may export training data" in refused.output
    assert "shadowtutor users set-role mara admin" in refused.output
    dry = runner.invoke(main, ["export", "run", "--as", "ada", "--dry-run", "--language", "en"])
    assert dry.exit_code == 0 and "5 reviewed pairs match" in dry.output
    out = tmp_path / "out"
    done = runner.invoke(main, ["export", "run", "--as", "ada", "--out", str(out),
                                "--split", "70/20/10", "--format", "sft,csv"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "20 reviewed pairs match" in done.output and "20 examples" in done.output
    folder = next(out.iterdir())
    assert not (folder / "preference_train.jsonl").exists()
    assert runner.invoke(main, ["export", "verify", str(folder)]).exit_code == 0
    listed = runner.invoke(main, ["export", "list"])
    assert listed.exit_code == 0 and "ada" in listed.output and str(folder) in listed.output
    none = runner.invoke(main, ["export", "run", "--as", "ada", "--language", "xx"])
    assert none.exit_code == 1 and "nothing to export" in none.output
    bad = runner.invoke(main, ["export", "run", "--as", "ada", "--split", "80/20"])
    assert bad.exit_code != 0 and "three shares" in bad.output


def test_filter_choices(session: Session, reviewer: int) -> None:
    add_pair(session, reviewer, "a", language="it", category="business", source="replay",
             reviews=[{"tags": ["robotic"]}])  # fmt: skip
    add_pair(session, reviewer, "b", language="en", category="greeting", source="live")
    choices = jobs.filter_choices(session=session)
    assert choices["languages"] == ["en", "it"]
    assert choices["categories"] == ["business", "greeting"]
    assert choices["sources"] == ["live", "replay"]
    assert "robotic" in choices["tags"]


@pytest.mark.parametrize(
    ("systems", "expected"),
    [
        (["one", "one"], 'SYSTEM """one"""'),
        (["it", "en"], "# No SYSTEM: the exported conversations use 2 different system prompts"),
        (["one", None], "only some of the exported conversations"),
        ([None, None], "# No SYSTEM: the exported conversations have no system prompt."),
    ],
)
def test_modelfile_system_only_when_all_share_one(systems: list, expected: str) -> None:
    from shadowtutor.export.build import Example
    from shadowtutor.export.docs import _system_line

    examples = [
        Example(
            pair_id=str(i),
            conversation=str(i),
            language="en",
            category="c",
            source="",
            ts="",
            prompt=([{"role": "system", "content": s}] if s else [])
            + [{"role": "user", "content": "q"}],
            target="a",
            target_source="teacher",
            teacher="a",
            student="b",
            student_score=None,
            student_worse=False,
            tags=[],
        )  # fmt: skip
        for i, s in enumerate(systems)
    ]
    assert expected in _system_line(examples)


def test_the_manifest_records_its_dataset_version(
    session: Session, admin: int, reviewer: int, tmp_path: Path
) -> None:
    add_many(session, reviewer, 12)
    a = _run(session, tmp_path / "a", admin)
    b = _run(session, tmp_path / "b", admin)
    version = a.manifest["dataset_version"]
    assert len(version) == 16 and version == b.manifest["dataset_version"]  # same data
    assert f"--trained-on {version}" in (a.path / "README.md").read_text()


def test_the_preview_is_the_exports_own_computation(
    session: Session, tmp_path: Path, admin: int, reviewer: int
) -> None:
    """Issue 27 item 4: the page previewed 234/30/28 (preference 22/1/4) and the export wrote
    251/21/20 (24/3/0): the preview split by conversation only, the export also keeps one
    prompt asked in several conversations in one split."""
    for i in range(120):  # 40 prompts, each asked in three conversations, answered differently
        add_pair(
            session,
            reviewer,
            f"s{i:03d}",
            question=f"shared question {i % 40}?",
            teacher=f"teacher answer {i}.",
            conversation_id=f"c{i}",
            language=("en", "it")[i % 2],
            reviews=[{"student_score": 1 + i % 5}],
        )
    preview = jobs.preview(session=session, filters=ExportFilters(), options=ExportOptions())
    written = _run(session, tmp_path, admin).counts
    assert preview["per_split"] == written["per_split"]
    assert preview["preference_pairs"] == written["preference_pairs"]
    assert preview == written


@pytest.mark.parametrize(
    ("out", "code", "expected"),
    [
        ("a-file", 2, "is a file"),  # click's own check of --out
        ("a-file/sub", 1, "is a file, not a folder"),
        ("/sys/shadowtutor-export", 1, "cannot create the export folder"),
    ],
)
def test_cli_export_to_a_file_or_an_unwritable_folder_says_so(
    migrated, tmp_path: Path, out: str, code: int, expected: str
) -> None:
    """Issue 27 item 6: `export run --out` to a file or an unwritable folder printed a raw
    NotADirectoryError / PermissionError traceback."""
    with db.session_scope(migrated.db_url) as s:
        add_many(s, add_user(s, "reviewer"), 5)
        add_user(s, "admin", "ada")
    (tmp_path / "a-file").write_text("not a folder\n")
    target = out if out.startswith("/") else str(tmp_path / out)
    result = CliRunner().invoke(main, ["export", "run", "--as", "ada", "--out", target])
    assert result.exit_code == code, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert not isinstance(result.exception, OSError)
    with db.session_scope(migrated.db_url) as s:
        assert jobs.list_jobs(session=s) == []  # no job recorded for an export not written


# --- issue 26 item 6: splits as asked, no train target in a val/test context ------------


def _example(i: int, conversation: str, prompt: list, target: str) -> build.Example:
    return build.Example(
        pair_id=f"p{i}", conversation=conversation, language=("it", "en")[i % 2],
        category="greeting", source="live", ts="", prompt=prompt, target=target,
        target_source="teacher", teacher=target, student="", student_score=None,
        student_worse=False, tags=[],
    )  # fmt: skip


@pytest.mark.parametrize("n", [200, 293, 1000, 5000])
def test_splits_come_out_as_asked_with_no_train_target_in_a_val_test_context(n: int) -> None:
    """The issue's reproduction: one conversation in eight opens with the same greeting (so
    they are one group: a prompt stays in one split), which the hash order could leave to
    overshoot val or test; and val/test examples whose context holds another conversation's
    target verbatim (the demo had four)."""
    examples = []
    for i in range(n):
        k = i // 2  # two-turn conversations
        greeting = [{"role": "user", "content": "Ciao!" if k % 8 == 0 else f"salve {k}"}]
        if i % 2 == 0:
            prompt, target = greeting, f"Risposta numero {k}."
        else:  # its context holds the first turn's reply; every 25th another conversation's
            earlier = f"Risposta numero {k + 1 if k % 25 == 0 else k}."
            prompt = [*greeting, {"role": "assistant", "content": earlier},
                      {"role": "user", "content": f"domanda {i}"}]  # fmt: skip
            target = f"ok {i}"
        examples.append(_example(i, f"c{k}", prompt, target))
    moved = build.split_examples(examples)
    per = {s: sum(e.split == s for e in examples) / n for s in build.SPLITS}
    assert abs(per["train"] - 0.8) <= 0.01 and abs(per["val"] - 0.1) <= 0.01
    assert abs(per["test"] - 0.1) <= 0.01
    assert build.leaking(examples) == set()
    assert len({(e.conversation, e.split) for e in examples}) == (n + 1) // 2  # never divided
    counts = build.counts_of(examples, build.BuildReport(moved_to_train=moved), {})
    check = counts["containment_check"]
    assert check["val_test_conversations_holding_a_train_target"] == 0
    assert check["groups_moved_to_train"] == moved
    assert moved > 0 or n < 1000  # the leaks were there to find
