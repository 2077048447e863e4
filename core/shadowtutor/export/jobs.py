"""Training data export: reviewed pairs -> SFT chat JSONL, preference JSONL and CSV.

Pipeline (:func:`run_export`): select reviewed pairs from the database (queue snapshots and the
current review versions), build one example per pair, scrub personal data, drop empty,
over-long and duplicate examples (each counted), split train / val / test by conversation,
write the files, a ``manifest.json``, a ``README.md`` and an Ollama ``Modelfile`` into
``<export root>/<export id>/`` and record an :class:`~shadowtutor.tables.ExportJob`.

The data files are a pure function of the selection: sorted keys, a stable order and no
timestamps inside, so the same selection gives byte-identical files. Only admins export; the
check is here, not only in the page or the CLI.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from shadowtutor.accounts import permissions
from shadowtutor.errors import ShadowTutorError
from shadowtutor.export import docs
from shadowtutor.export.build import (  # noqa: F401  (re-exported: the export API in one place)
    CSV_COLUMNS,
    SPLITS,
    BuildReport,
    Example,
    assign_splits,
    build_examples,
    check_chat,
    counts_of,
    normalize_prompt,
    render_files,
    split_examples,
)
from shadowtutor.log.schema import DEFAULT_STUDENT
from shadowtutor.tables import ExportJob, Review, ReviewItem, Tag, User, row_id, utcnow

FORMAT_VERSION = 1
FORMATS = ("sft", "preference", "csv")
AGREEMENTS = {
    "all": "every current review approves",
    "majority": "more current reviews approve than reject",
    "any": "at least one current review approves",
}


class ExportError(ShadowTutorError, ValueError):
    """An export that cannot be done as asked; the message says what to change."""


# --- what to export ------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFilters:
    """Which reviewed pairs to include. Empty tuples mean "any"."""

    date_from: date | None = None  # pair time, UTC, inclusive
    date_to: date | None = None  # inclusive
    languages: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    min_student_score: float | None = None  # mean of the current reviews' student scores
    tags_required: tuple[str, ...] = ()
    tags_excluded: tuple[str, ...] = ()
    agreement: str = "all"  # see AGREEMENTS
    students: tuple[str, ...] = ()  # the pairs' `student_name` (version 1 pairs: "default")

    def __post_init__(self) -> None:
        for name in (
            "languages",
            "categories",
            "sources",
            "tags_required",
            "tags_excluded",
            "students",
        ):
            object.__setattr__(self, name, tuple(sorted({str(v) for v in getattr(self, name)})))

    def check(self) -> None:
        if self.agreement not in AGREEMENTS:
            raise ExportError(
                f"unknown agreement {self.agreement!r}; use one of: {', '.join(AGREEMENTS)}"
            )
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ExportError(f"the date range is empty: {self.date_from} is after {self.date_to}")
        if self.min_student_score is not None and not 1 <= self.min_student_score <= 5:
            raise ExportError("the minimum student score must be between 1 and 5")
        both = set(self.tags_required) & set(self.tags_excluded)
        if both:
            raise ExportError(f"tag(s) both required and excluded: {', '.join(sorted(both))}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("date_from", "date_to"):
            out[name] = out[name].isoformat() if out[name] else None
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportFilters:
        values = dict(data)
        for name in ("date_from", "date_to"):
            if values.get(name):
                values[name] = date.fromisoformat(values[name])
        return cls(**values)


@dataclass(frozen=True)
class ExportOptions:
    """How to turn the selected pairs into files."""

    formats: tuple[str, ...] = FORMATS
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train, val, test
    scrub_pii: bool = True
    student_target_min_score: float | None = None  # use the student's answer when scored >= this
    preference_max_student_score: float = 2.0  # "student worse" when its mean score is <= this
    max_tokens: int = 8192  # estimated (about 4 characters a token), prompt and answer
    system_prompt: str = ""  # added to conversations that have no system message
    seed: str = "shadowtutor"  # for the split and the line order

    def check(self) -> None:
        unknown = set(self.formats) - set(FORMATS)
        if unknown or not self.formats:
            raise ExportError(f"formats must be some of: {', '.join(FORMATS)}")
        if len(self.split) != 3 or any(f < 0 for f in self.split):
            raise ExportError("the split needs three non-negative shares: train, val, test")
        if abs(sum(self.split) - 1.0) > 1e-6 or self.split[0] <= 0:
            raise ExportError(
                f"the split shares must add up to 100% with a train share (got {self.split})"
            )
        if self.max_tokens < 16:
            raise ExportError("max tokens must be at least 16")


def parse_split(text: str) -> tuple[float, float, float]:
    """'80/10/10' (or '0.8,0.1,0.1') -> (0.8, 0.1, 0.1)."""
    parts = [p for p in re.split(r"[/,: ]+", text.strip()) if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 3:
        raise ExportError(f"split {text!r}: give three shares like 80/10/10 (train/val/test)")
    total = sum(values)
    if total <= 0:
        raise ExportError(f"split {text!r}: the shares add up to zero")
    train, val, test = (v / total for v in values)
    return train, val, test


# --- selection -------------------------------------------------------------------------


@dataclass
class Candidate:
    item_id: int
    pair_id: str
    language: str | None
    category: str | None
    reviews: list[_ReviewRow] = field(default_factory=list)  # current, not skipped

    student_score: float | None = None  # mean of the reviews' student scores
    tags: list[str] = field(default_factory=list)  # union of the reviews' tags

    def summarize(self) -> Candidate:
        scores = [r.student_score for r in self.reviews if r.student_score is not None]
        self.student_score = sum(scores) / len(scores) if scores else None
        self.tags = sorted({str(t) for r in self.reviews for t in (r.tags or [])})
        return self

    def corrected_answer(self) -> str | None:
        """The newest current review's correction, if any reviewer wrote one."""
        corrected = [r for r in self.reviews if (r.corrected_answer or "").strip()]
        if not corrected:
            return None
        # review rows are append-only, so the highest id is the newest
        return max(corrected, key=lambda r: r.id).corrected_answer

    def student_worse(self, max_score: float) -> bool:
        verdicts = [r.verdict for r in self.reviews if r.verdict]
        teacher = sum(v == "teacher" for v in verdicts)
        score = self.student_score
        return (bool(verdicts) and teacher * 2 > len(verdicts)) or (
            score is not None and score <= max_score
        )


def _item_conditions(filters: ExportFilters) -> list[Any]:
    conds: list[Any] = []
    if filters.date_from:
        conds.append(col(ReviewItem.pair_ts) >= datetime.combine(filters.date_from, time(), UTC))
    if filters.date_to:
        end = datetime.combine(filters.date_to + timedelta(days=1), time(), UTC)
        conds.append(col(ReviewItem.pair_ts) < end)
    if filters.languages:
        conds.append(col(ReviewItem.language).in_(filters.languages))
    if filters.categories:
        conds.append(col(ReviewItem.category).in_(filters.categories))
    if filters.sources:
        conds.append(ReviewItem.snapshot["source"].as_string().in_(filters.sources))
    return conds


def _agrees(decisions: Sequence[str], agreement: str) -> bool:
    approve = sum(d == "approve" for d in decisions)
    reject = sum(d == "reject" for d in decisions)
    if agreement == "all":
        return approve > 0 and reject == 0
    if agreement == "majority":
        return approve > reject
    return approve > 0


def select_candidates(*, session: Session, filters: ExportFilters) -> list[Candidate]:
    """Reviewed pairs matching ``filters``, ordered by pair id (no snapshots loaded)."""
    filters.check()
    conds = _item_conditions(filters)
    rows = session.exec(
        # sqlmodel types select() for up to four columns; with more it has no overload.
        select(  # type: ignore[call-overload,misc]
            ReviewItem.id,
            ReviewItem.pair_id,
            ReviewItem.language,
            ReviewItem.category,
            Review.id,
            Review.decision,
            Review.student_score,
            Review.verdict,
            Review.tags,
            Review.corrected_answer,
        )
        .join(Review, col(Review.item_id) == col(ReviewItem.id))
        .where(col(Review.is_current), Review.decision != "skip", *conds)
    )
    by_item: dict[int, Candidate] = {}
    for row in rows:
        cand = by_item.get(row[0])
        if cand is None:
            cand = by_item[row[0]] = Candidate(row[0], row[1], row[2], row[3])
        cand.reviews.append(_ReviewRow(*row[4:]))
    required, excluded = set(filters.tags_required), set(filters.tags_excluded)
    out = []
    for cand in by_item.values():
        cand.summarize()
        if not _agrees([r.decision for r in cand.reviews], filters.agreement):
            continue
        if filters.min_student_score is not None:
            score = cand.student_score
            if score is None or score < filters.min_student_score:
                continue
        if required or excluded:
            tags = set(cand.tags)
            if not required <= tags or tags & excluded:
                continue
        out.append(cand)
    if filters.students:
        snaps = _load_snapshots(session, [c.item_id for c in out])
        wanted = set(filters.students)
        out = [c for c in out if _student_of(snaps.get(c.item_id) or {}) in wanted]
    out.sort(key=lambda c: c.pair_id)
    return out


def _student_of(snapshot: Mapping[str, Any]) -> str:
    return str(snapshot.get("student_name") or DEFAULT_STUDENT)


@dataclass(frozen=True)
class _ReviewRow:
    id: int
    decision: str
    student_score: int | None
    verdict: str | None
    tags: list[Any]
    corrected_answer: str | None


def count_matching(*, session: Session, filters: ExportFilters) -> int:
    """How many reviewed pairs the filters select (before empty/long/duplicate drops)."""
    return len(select_candidates(session=session, filters=filters))


def filter_choices(*, session: Session) -> dict[str, list[str]]:
    """Values to offer in the filter widgets: languages, categories, sources, students,
    tags."""
    langs = session.exec(select(ReviewItem.language).distinct())
    cats = session.exec(select(ReviewItem.category).distinct())
    sources = session.exec(select(ReviewItem.snapshot["source"].as_string()).distinct())
    students = session.exec(select(ReviewItem.snapshot["student_name"].as_string()).distinct())
    tags = set(session.exec(select(Tag.name)))
    for used in session.exec(select(Review.tags).where(Review.is_current)):
        tags.update(str(t) for t in used or [])
    return {
        "languages": sorted(v for v in langs if v),
        "categories": sorted(v for v in cats if v),
        "sources": sorted(v for v in sources if v),
        "students": sorted({v or DEFAULT_STUDENT for v in students}),
        "tags": sorted(tags),
    }


def _load_snapshots(session: Session, ids: list[int]) -> dict[int, Mapping[str, Any]]:
    out: dict[int, Mapping[str, Any]] = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        stmt = select(ReviewItem.id, ReviewItem.snapshot).where(col(ReviewItem.id).in_(chunk))
        out.update((i, s) for i, s in session.exec(stmt) if i is not None)  # stored ids are set
    return out


# --- the export ------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    job_id: int
    export_id: str
    path: Path
    manifest: dict[str, Any]

    @property
    def counts(self) -> dict[str, Any]:
        counts: dict[str, Any] = self.manifest["counts"]
        return counts

    def files(self) -> list[Path]:
        return [self.path / name for name in self.manifest["files"]]


def run_export(
    *,
    session: Session,
    actor_id: permissions.Actor,
    export_root: Path,
    filters: ExportFilters | None = None,
    options: ExportOptions | None = None,
    now: datetime | None = None,
) -> ExportResult:
    """Export the selected pairs into ``export_root/<export id>/`` and record the job
    (``export.run``: admins, by name: an export takes users' conversations out of
    ShadowTutor)."""
    user = permissions.require(session, actor_id, "export.run")
    filters, options = filters or ExportFilters(), options or ExportOptions()
    filters.check()
    options.check()
    root = writable_folder(Path(export_root).expanduser().resolve())
    with _gc_paused():
        return _export(
            session,
            user.username,
            user.id,
            root,
            filters,
            options,
            now,
        )


def _export(
    session: Session,
    username: str,
    user_id: int | None,
    export_root: Path,
    filters: ExportFilters,
    options: ExportOptions,
    now: datetime | None,
) -> ExportResult:
    examples, report = _plan(session, filters, options)
    if not report.matched:
        raise ExportError(
            "no reviewed pairs match these filters; widen them (or review more pairs) first"
        )
    if not examples:
        raise ExportError(
            f"all {report.matched} matching pairs were dropped ({dict(report.dropped)}); "
            "check the max tokens setting and the pairs' messages"
        )
    files = render_files(examples, options)
    now = now or utcnow()
    export_id, folder = _new_folder(export_root, now)
    manifest: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "export_id": export_id,
        "created_at": now.astimezone(UTC).isoformat(timespec="seconds"),
        "created_by": username,
        "filters": filters.to_dict(),
        "options": {
            **asdict(options),
            "formats": list(options.formats),
            "split": list(options.split),
        },
        "counts": counts_of(examples, report, files),
        "files": {},
    }
    manifest["dataset_version"] = dataset_version(files)
    extra = docs.render(manifest, examples)
    try:
        _write_folder(folder, files, extra, manifest)
    except OSError as exc:  # a full disk, a folder made read-only meanwhile: nothing is left
        raise ExportError(
            f"could not write the export into {folder.parent} ({exc.strerror or exc}); "
            "nothing was written"
        ) from None
    job = ExportJob(
        created_at=now,
        created_by=user_id,
        status="done",
        filters=filters.to_dict(),
        counts=manifest["counts"],
        path=str(folder),
        manifest=manifest,
    )
    session.add(job)
    session.flush()
    return ExportResult(job_id=row_id(job), export_id=export_id, path=folder, manifest=manifest)


def _plan(
    session: Session, filters: ExportFilters, options: ExportOptions
) -> tuple[list[Example], BuildReport]:
    """The examples an export writes, each with its split, and what was dropped: the one
    computation behind both :func:`run_export` and :func:`preview`."""
    candidates = select_candidates(session=session, filters=filters)
    if not candidates:
        return [], BuildReport()
    snapshots = _load_snapshots(session, [c.item_id for c in candidates])
    examples, report = build_examples(candidates, snapshots, options)
    snapshots.clear()  # the examples hold what is needed; free the raw snapshots early
    report.moved_to_train = split_examples(examples, options.split, options.seed)
    report.asked = tuple(options.split)
    return examples, report


def writable_folder(root: Path) -> Path:
    """``root``, created if missing, or ExportError saying why an export cannot go there (a
    file on the way, no permission), before any work is done."""
    blocker = next((p for p in (root, *root.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ExportError(
            f"{blocker} is a file, not a folder: give --out (or SHADOWTUTOR_EXPORT_DIR) a "
            "folder, which is created if missing"
        )
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(
            f"cannot create the export folder {root} ({exc.strerror or exc}): pick a folder "
            "you can write to with --out (or SHADOWTUTOR_EXPORT_DIR)"
        ) from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise ExportError(
            f"cannot write into the export folder {root} (permission denied): pick a folder "
            "you can write to with --out (or SHADOWTUTOR_EXPORT_DIR)"
        )
    return root


def preview(*, session: Session, filters: ExportFilters, options: ExportOptions) -> dict[str, Any]:
    """The counts an export with these filters and options would write (the manifest's
    ``counts``: examples per split, preference pairs per split, what is dropped and why),
    from the export's own computation (:func:`_plan`), without writing anything."""
    filters.check()
    options.check()
    examples, report = _plan(session, filters, options)
    return counts_of(examples, report, render_files(examples, options) if examples else {})


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during an export. A 100,000-pair export holds
    millions of small objects until it ends, and each automatic collection would scan them all
    again (measured: a third of the run). Reference counting still frees memory meanwhile."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _new_folder(root: Path, now: datetime) -> tuple[str, Path]:
    base = now.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    export_id, n = base, 1
    while (root / export_id).exists():
        n += 1
        export_id = f"{base}-{n}"
    return export_id, root / export_id


def dataset_version(files: dict[str, bytes]) -> str:
    """The export's dataset version: a hash of its data files' names and contents (not the
    docs), so the same training data always has the same version. A student registered as
    trained on an export names this (``shadowtutor students add --trained-on``)."""
    lines = [f"{name}:{hashlib.sha256(files[name]).hexdigest()}" for name in sorted(files)]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def _write_folder(
    folder: Path, files: dict[str, bytes], extra: dict[str, bytes], manifest: dict[str, Any]
) -> None:
    """Write into a hidden partial folder, then rename: a failed export leaves nothing."""
    partial = folder.parent / f".partial-{folder.name}"
    partial.mkdir(parents=True, exist_ok=False)
    try:
        for name, data in {**files, **extra}.items():
            (partial / name).write_bytes(data)
            manifest["files"][name] = {
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
                "lines": data.count(b"\n") if name.endswith((".jsonl", ".csv")) else None,
            }
        manifest["files"] = dict(sorted(manifest["files"].items()))
        (partial / "manifest.json").write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        )
        os.replace(partial, folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


# --- history ---------------------------------------------------------------------------


def list_jobs(*, session: Session, limit: int = 50) -> list[dict[str, Any]]:
    """Past exports, newest first, as plain rows (for the page and the CLI)."""
    stmt = (
        select(ExportJob, User.username)
        .join(User, col(User.id) == col(ExportJob.created_by), isouter=True)
        .order_by(col(ExportJob.created_at).desc(), col(ExportJob.id).desc())
        .limit(limit)
    )
    rows = []
    for job, username in session.exec(stmt):
        counts = job.counts or {}
        rows.append(
            {
                "id": job.id,
                "created_at": job.created_at,
                "created_by": username or "",
                "examples": counts.get("examples", 0),
                **{s: (counts.get("per_split") or {}).get(s, 0) for s in SPLITS},
                "path": job.path,
                "available": Path(job.path).is_dir(),
            }
        )
    return rows


def job_files(*, session: Session, job_id: int) -> list[Path]:
    """The files of a past export (manifest first), for downloading again."""
    job = session.get(ExportJob, job_id)
    if job is None:
        raise ExportError(f"no export with id {job_id}; `shadowtutor export list` shows them")
    folder = Path(job.path)
    if not folder.is_dir():
        raise ExportError(f"the files of export {job_id} are gone from {folder}; export again")
    names = ["manifest.json", *sorted((job.manifest or {}).get("files", {}))]
    return [folder / n for n in names if (folder / n).is_file()]


def job_report(*, session: Session, job_id: int) -> dict[str, list[dict[str, Any]]]:
    """An export's report as small tables: examples per split, drops, personal data."""
    job = session.get(ExportJob, job_id)
    if job is None:
        raise ExportError(f"no export with id {job_id}; `shadowtutor export list` shows them")
    counts = job.counts or {}
    prefs = counts.get("preference_pairs") or {}
    splits = [
        {
            "split": s,
            "SFT examples": (counts.get("per_split") or {}).get(s, 0),
            "preference pairs": prefs.get(s) if prefs else None,
        }
        for s in SPLITS
    ]
    dropped = [
        {"dropped": k.replace("_", " "), "pairs": v} for k, v in counts.get("dropped", {}).items()
    ]
    scrubbed = (job.manifest or {}).get("options", {}).get("scrub_pii", True)
    found = [{"personal data": k, "replaced": v} for k, v in counts.get("pii", {}).items()]
    if not scrubbed:
        found = [{"personal data": "scrubbing was off", "replaced": None}]
    return {"splits": splits, "dropped": dropped, "pii": found}


def verify_folder(folder: Path) -> list[str]:
    """Problems found checking an export folder against its manifest (empty: all good)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    problems = []
    for name, meta in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != meta["sha256"]:
            problems.append(f"{name}: SHA-256 differs from the manifest")
    return problems
