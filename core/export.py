"""Training data export: reviewed pairs -> SFT chat JSONL, preference JSONL and CSV.

Pipeline (:func:`run_export`): select reviewed pairs from the database (queue snapshots and the
current review versions), build one example per pair, scrub personal data, drop empty,
over-long and duplicate examples (each counted), split train / val / test by conversation,
write the files, a ``manifest.json``, a ``README.md`` and an Ollama ``Modelfile`` into
``<export root>/<export id>/`` and record an :class:`~core.models.ExportJob`.

The data files are a pure function of the selection: sorted keys, a stable order and no
timestamps inside, so the same selection gives byte-identical files. Only admins export; the
check is here, not only in the page or the CLI.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, select

from core import export_docs, pii
from core.errors import ShadowTutorError
from core.models import ExportJob, Review, ReviewItem, Tag, User, utcnow

FORMAT_VERSION = 1
FORMATS = ("sft", "preference", "csv")
SPLITS = ("train", "val", "test")
AGREEMENTS = {
    "all": "every current review approves",
    "majority": "more current reviews approve than reject",
    "any": "at least one current review approves",
}
CSV_COLUMNS = (
    "split", "pair_id", "conversation_id", "ts", "language", "category", "source", "prompt",
    "target", "target_source", "teacher_answer", "student_answer", "student_score",
    "student_worse", "tags",
)  # fmt: skip


class ExportError(ShadowTutorError, ValueError):
    """An export that cannot be done as asked; the message says what to change."""


class ExportPermissionError(ExportError, PermissionError):
    """The acting user may not export (only admins may)."""


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

    def __post_init__(self) -> None:
        for name in ("languages", "categories", "sources", "tags_required", "tags_excluded"):
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
    return tuple(v / total for v in values)  # type: ignore[return-value]


# --- selection -------------------------------------------------------------------------


@dataclass
class Candidate:
    item_id: int
    pair_id: str
    language: str | None
    category: str | None
    reviews: list[Any] = field(default_factory=list)  # current, not skipped

    @property
    def student_score(self) -> float | None:
        scores = [r.student_score for r in self.reviews if r.student_score is not None]
        return sum(scores) / len(scores) if scores else None

    @property
    def tags(self) -> list[str]:
        return sorted({str(t) for r in self.reviews for t in (r.tags or [])})

    def corrected_answer(self) -> str | None:
        """The newest current review's correction, if any reviewer wrote one."""
        corrected = [r for r in self.reviews if (r.corrected_answer or "").strip()]
        if not corrected:
            return None
        return max(corrected, key=lambda r: (_aware(r.created_at), r.id)).corrected_answer

    def student_worse(self, max_score: float) -> bool:
        verdicts = [r.verdict for r in self.reviews if r.verdict]
        teacher = sum(v == "teacher" for v in verdicts)
        score = self.student_score
        return (bool(verdicts) and teacher * 2 > len(verdicts)) or (
            score is not None and score <= max_score
        )


def _aware(ts: datetime | None) -> datetime:
    if ts is None:
        return datetime.min.replace(tzinfo=UTC)
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _item_conditions(filters: ExportFilters) -> list[Any]:
    conds: list[Any] = []
    if filters.date_from:
        conds.append(ReviewItem.pair_ts >= datetime.combine(filters.date_from, time(), UTC))
    if filters.date_to:
        end = datetime.combine(filters.date_to + timedelta(days=1), time(), UTC)
        conds.append(ReviewItem.pair_ts < end)
    if filters.languages:
        conds.append(ReviewItem.language.in_(filters.languages))
    if filters.categories:
        conds.append(ReviewItem.category.in_(filters.categories))
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
        select(
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
            Review.created_at,
        )
        .join(Review, Review.item_id == ReviewItem.id)
        .where(Review.is_current, Review.decision != "skip", *conds)
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
    out.sort(key=lambda c: c.pair_id)
    return out


@dataclass(frozen=True)
class _ReviewRow:
    id: int
    decision: str
    student_score: int | None
    verdict: str | None
    tags: list
    corrected_answer: str | None
    created_at: datetime | None


def count_matching(*, session: Session, filters: ExportFilters) -> int:
    """How many reviewed pairs the filters select (before empty/long/duplicate drops)."""
    return len(select_candidates(session=session, filters=filters))


def filter_choices(*, session: Session) -> dict[str, list[str]]:
    """Values to offer in the filter widgets: languages, categories, sources, tags."""
    langs = session.exec(select(ReviewItem.language).distinct())
    cats = session.exec(select(ReviewItem.category).distinct())
    sources = session.exec(select(ReviewItem.snapshot["source"].as_string()).distinct())
    tags = set(session.exec(select(Tag.name)))
    for used in session.exec(select(Review.tags).where(Review.is_current)):
        tags.update(str(t) for t in used or [])
    return {
        "languages": sorted(v for v in langs if v),
        "categories": sorted(v for v in cats if v),
        "sources": sorted(v for v in sources if v),
        "tags": sorted(tags),
    }


# --- examples --------------------------------------------------------------------------


@dataclass
class Example:
    pair_id: str
    conversation: str  # conversation id, else the pair id
    language: str
    category: str
    source: str
    ts: str
    prompt: list[dict[str, str]]  # system (optional), then user/assistant turns ending on user
    target: str
    target_source: str  # corrected | student | teacher
    teacher: str
    student: str
    student_score: float | None
    student_worse: bool
    tags: list[str]
    split: str = ""

    def sft(self) -> dict[str, Any]:
        return {"messages": [*self.prompt, {"role": "assistant", "content": self.target}]}

    def preference(self) -> dict[str, Any] | None:
        if not self.student_worse or not self.student.strip() or self.student == self.target:
            return None
        return {
            "prompt": self.prompt,
            "chosen": [{"role": "assistant", "content": self.target}],
            "rejected": [{"role": "assistant", "content": self.student}],
        }


def _text(content: Any) -> str:
    """Message content as text (OpenAI content parts are joined)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def normalize_prompt(messages: Iterable[dict[str, Any]], system_prompt: str = "") -> list[dict]:
    """The prompt as fine-tuning messages, or raise ValueError naming the chat rule broken.

    Leading system (and developer) messages become one system message; then user and
    assistant must alternate, starting and ending with the user.
    """
    system: list[str] = []
    turns: list[dict[str, str]] = []
    for msg in messages:
        role, text = msg.get("role"), _text(msg.get("content"))
        if role in ("system", "developer"):
            if turns:
                raise ValueError("a system message in the middle of the conversation")
            if text.strip():
                system.append(text)
            continue
        if role not in ("user", "assistant"):
            raise ValueError(f"role {role!r} cannot be fine-tuned on")
        if turns and turns[-1]["role"] == role:
            raise ValueError(f"two {role} messages in a row")
        if not turns and role != "user":
            raise ValueError("the conversation must start with the user")
        turns.append({"role": role, "content": text})
    if not turns or turns[-1]["role"] != "user":
        raise ValueError("the prompt must end with a user message")
    if not system and system_prompt.strip():
        system = [system_prompt]
    head = [{"role": "system", "content": "\n\n".join(system)}] if system else []
    return head + turns


def check_chat(messages: list[dict[str, Any]]) -> None:
    """Raise ValueError unless ``messages`` follow the chat fine-tuning rules (OpenAI,
    Unsloth, TRL): roles system/user/assistant, at most one system message and only first,
    user and assistant alternating from the user, the last from the assistant, no empty text.
    """
    if not messages:
        raise ValueError("no messages")
    body = messages[1:] if messages[0].get("role") == "system" else messages
    if not body:
        raise ValueError("only a system message")
    for i, msg in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if msg.get("role") != expected:
            raise ValueError(f"message {i} is {msg.get('role')!r}, expected {expected!r}")
    if body[-1]["role"] != "assistant":
        raise ValueError("the last message must be the assistant's")
    for msg in messages:
        if set(msg) != {"role", "content"}:
            raise ValueError(f"message keys must be role and content, not {sorted(msg)}")
        if not isinstance(msg["content"], str) or not msg["content"].strip():
            raise ValueError(f"empty {msg['role']} message")


# --- split -----------------------------------------------------------------------------


def _rank(seed: str, key: str) -> str:
    return hashlib.sha256(f"{seed}\x00{key}".encode()).hexdigest()


def assign_splits(
    conversations: dict[str, tuple[str, int]],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: str = "shadowtutor",
) -> dict[str, str]:
    """Map each conversation key to ``train``, ``val`` or ``test``.

    ``conversations`` maps key -> (language, number of examples). Within each language the
    conversations are taken in the order of a hash of their key, and each goes to the split
    furthest below its share so far, so every language is split in the asked proportions and
    a conversation is never divided. Deterministic for the same input.
    """
    by_lang: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for key, (lang, size) in conversations.items():
        by_lang[lang].append((_rank(seed, key), key, size))
    result: dict[str, str] = {}
    for lang in sorted(by_lang):
        counts = [0, 0, 0]
        total = 0
        for _, key, size in sorted(by_lang[lang]):
            total += size
            deficits = [f * total - c for f, c in zip(fractions, counts, strict=True)]
            best = max(range(3), key=lambda i: (deficits[i], -i))
            counts[best] += size
            result[key] = SPLITS[best]
    return result


# --- build -----------------------------------------------------------------------------


@dataclass
class BuildReport:
    matched: int = 0
    dropped: Counter = field(default_factory=Counter)  # empty | too_long | duplicate | invalid_chat
    invalid_reasons: Counter = field(default_factory=Counter)
    pii: Counter = field(default_factory=Counter)
    pairs_with_pii: int = 0
    target_sources: Counter = field(default_factory=Counter)


def _load_snapshots(session: Session, ids: list[int]) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        stmt = select(ReviewItem.id, ReviewItem.snapshot).where(ReviewItem.id.in_(chunk))
        out.update((i, s) for i, s in session.exec(stmt))
    return out


def build_examples(
    candidates: list[Candidate], snapshots: dict[int, dict], options: ExportOptions
) -> tuple[list[Example], BuildReport]:
    """Examples in pair-id order, scrubbed, with empty, over-long, invalid and duplicate
    ones dropped and counted."""
    report = BuildReport(matched=len(candidates))
    seen: set[str] = set()
    examples: list[Example] = []
    max_chars = options.max_tokens * 4
    for cand in candidates:
        snap = snapshots.get(cand.item_id) or {}
        try:
            prompt = normalize_prompt(snap.get("messages") or [], options.system_prompt)
        except ValueError as exc:
            report.dropped["invalid_chat"] += 1
            report.invalid_reasons[str(exc)] += 1
            continue
        teacher = _text((snap.get("teacher") or {}).get("response"))
        student = _text((snap.get("student") or {}).get("response"))
        target, source = _target(cand, teacher, student, options)
        found: Counter = Counter()
        if options.scrub_pii:
            prompt, target, teacher, student = _scrub_all(prompt, target, teacher, student, found)
        if not target.strip() or any(not m["content"].strip() for m in prompt):
            report.dropped["empty"] += 1
            continue
        if sum(len(m["content"]) for m in prompt) + len(target) > max_chars:
            report.dropped["too_long"] += 1
            continue
        key = hashlib.sha256(
            json.dumps([prompt, target], ensure_ascii=False, sort_keys=True).encode()
        ).hexdigest()
        if key in seen:
            report.dropped["duplicate"] += 1
            continue
        seen.add(key)
        if found:
            report.pairs_with_pii += 1
            report.pii.update(found)
        report.target_sources[source] += 1
        examples.append(
            Example(
                pair_id=cand.pair_id,
                conversation=str(snap.get("conversation_id") or cand.pair_id),
                language=cand.language or snap.get("language") or "unknown",
                category=cand.category or snap.get("category") or "unknown",
                source=str(snap.get("source") or ""),
                ts=str(snap.get("ts") or ""),
                prompt=prompt,
                target=target,
                target_source=source,
                teacher=teacher,
                student=student,
                student_score=cand.student_score,
                student_worse=cand.student_worse(options.preference_max_student_score),
                tags=cand.tags,
            )
        )
    return examples, report


def _target(cand: Candidate, teacher: str, student: str, options: ExportOptions) -> tuple:
    corrected = cand.corrected_answer()
    if corrected:
        return corrected, "corrected"
    floor = options.student_target_min_score
    score = cand.student_score
    if floor is not None and score is not None and score >= floor and student.strip():
        return student, "student"
    return teacher, "teacher"


def _scrub_all(prompt: list[dict], target: str, teacher: str, student: str, found: Counter):
    new_prompt = []
    for msg in prompt:
        res = pii.scrub(msg["content"])
        found.update(res.counts)
        new_prompt.append({"role": msg["role"], "content": res.text})
    texts = []
    seen: set[str] = set()
    for text in (target, teacher, student):
        res = pii.scrub(text)
        if text not in seen:  # the target is often the teacher's answer: count it once
            found.update(res.counts)
            seen.add(text)
        texts.append(res.text)
    return new_prompt, texts[0], texts[1], texts[2]


# --- writing ---------------------------------------------------------------------------


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n"


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # a spreadsheet would run "=cmd()" as a formula: model text must stay text
    return "'" + text if text[:1] in ("=", "+", "@", "\t", "\r") else text


def render_files(examples: list[Example], options: ExportOptions) -> dict[str, bytes]:
    """The data files' bytes by file name; a pure function of the examples and options."""
    ordered = sorted(examples, key=lambda e: (_rank(options.seed, e.pair_id), e.pair_id))
    files: dict[str, bytes] = {}
    if "sft" in options.formats:
        for split in SPLITS:
            lines = (_dumps(e.sft()) for e in ordered if e.split == split)
            files[f"sft_{split}.jsonl"] = "".join(lines).encode()
    if "preference" in options.formats:
        for split in SPLITS:
            prefs = (e.preference() for e in ordered if e.split == split)
            files[f"preference_{split}.jsonl"] = "".join(_dumps(p) for p in prefs if p).encode()
    if "csv" in options.formats:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for e in sorted(ordered, key=lambda e: (SPLITS.index(e.split), e.pair_id)):
            last_user = next(m["content"] for m in reversed(e.prompt) if m["role"] == "user")
            score = "" if e.student_score is None else f"{e.student_score:.2f}"
            row = (
                e.split, e.pair_id, e.conversation, e.ts, e.language, e.category, e.source,
                last_user, e.target, e.target_source, e.teacher, e.student, score,
                "yes" if e.student_worse else "no", "; ".join(e.tags),
            )  # fmt: skip
            writer.writerow([_csv_cell(v) for v in row])
        files["pairs.csv"] = buf.getvalue().encode()
    return files


def _breakdown(examples: list[Example], attr: str) -> dict[str, dict[str, int]]:
    out: dict[str, Counter] = defaultdict(Counter)
    for e in examples:
        out[getattr(e, attr)][e.split] += 1
    return {k: {s: out[k][s] for s in SPLITS} for k in sorted(out)}


def _counts(examples: list[Example], report: BuildReport, files: dict[str, bytes]) -> dict:
    per_split = Counter(e.split for e in examples)
    prefs = {s: files.get(f"preference_{s}.jsonl", b"").count(b"\n") for s in SPLITS}
    return {
        "matched": report.matched,
        "examples": len(examples),
        "per_split": {s: per_split[s] for s in SPLITS},
        "preference_pairs": prefs if any(f.startswith("preference_") for f in files) else {},
        "per_language": _breakdown(examples, "language"),
        "per_category": _breakdown(examples, "category"),
        "target_sources": dict(sorted(report.target_sources.items())),
        "dropped": {
            k: report.dropped[k] for k in ("duplicate", "empty", "too_long", "invalid_chat")
        },
        "invalid_reasons": dict(sorted(report.invalid_reasons.items())),
        "pii": {k: report.pii[k] for k in pii.KINDS},
        "pairs_with_pii": report.pairs_with_pii,
    }


# --- the export ------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    job_id: int
    export_id: str
    path: Path
    manifest: dict[str, Any]

    @property
    def counts(self) -> dict[str, Any]:
        return self.manifest["counts"]

    def files(self) -> list[Path]:
        return [self.path / name for name in self.manifest["files"]]


def require_admin(*, session: Session, actor_id: int | None) -> User:
    """The acting user if they may export, else :class:`ExportPermissionError` saying why."""
    user = session.get(User, actor_id) if actor_id is not None else None
    if user is None:
        raise ExportPermissionError("export needs a logged-in admin account")
    if user.disabled:
        raise ExportPermissionError(f"the account {user.username!r} is disabled")
    if user.role != "admin":
        raise ExportPermissionError(
            f"{user.username} is a {user.role}; only admins may export training data, because "
            "an export takes users' conversations out of ShadowTutor. Ask an admin to run it, "
            f"or to give you the role: shadowtutor users set-role {user.username} admin"
        )
    return user


def run_export(
    *,
    session: Session,
    actor_id: int | None,
    export_root: Path,
    filters: ExportFilters | None = None,
    options: ExportOptions | None = None,
    now: datetime | None = None,
) -> ExportResult:
    """Export the selected pairs into ``export_root/<export id>/`` and record the job."""
    user = require_admin(session=session, actor_id=actor_id)
    filters, options = filters or ExportFilters(), options or ExportOptions()
    filters.check()
    options.check()
    candidates = select_candidates(session=session, filters=filters)
    if not candidates:
        raise ExportError(
            "no reviewed pairs match these filters; widen them (or review more pairs) first"
        )
    snapshots = _load_snapshots(session, [c.item_id for c in candidates])
    examples, report = build_examples(candidates, snapshots, options)
    if not examples:
        raise ExportError(
            f"all {report.matched} matching pairs were dropped ({dict(report.dropped)}); "
            "check the max tokens setting and the pairs' messages"
        )
    sizes: dict[str, list] = {}
    for e in examples:
        sizes.setdefault(e.conversation, [e.language, 0])[1] += 1
    splits = assign_splits({k: (v[0], v[1]) for k, v in sizes.items()}, options.split, options.seed)
    examples = [replace(e, split=splits[e.conversation]) for e in examples]
    files = render_files(examples, options)
    now = now or utcnow()
    export_id, folder = _new_folder(Path(export_root), now)
    manifest = {
        "format_version": FORMAT_VERSION,
        "export_id": export_id,
        "created_at": now.astimezone(UTC).isoformat(timespec="seconds"),
        "created_by": user.username,
        "filters": filters.to_dict(),
        "options": {
            **asdict(options),
            "formats": list(options.formats),
            "split": list(options.split),
        },
        "counts": _counts(examples, report, files),
        "files": {},
    }
    extra = export_docs.render(manifest, examples)
    _write_folder(folder, files, extra, manifest)
    job = ExportJob(
        created_at=now,
        created_by=user.id,
        status="done",
        filters=filters.to_dict(),
        counts=manifest["counts"],
        path=str(folder),
        manifest=manifest,
    )
    session.add(job)
    session.flush()
    return ExportResult(job_id=job.id, export_id=export_id, path=folder, manifest=manifest)


def _new_folder(root: Path, now: datetime) -> tuple[str, Path]:
    base = now.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    export_id, n = base, 1
    while (root / export_id).exists():
        n += 1
        export_id = f"{base}-{n}"
    return export_id, root / export_id


def _write_folder(
    folder: Path, files: dict[str, bytes], extra: dict[str, bytes], manifest: dict
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
        .join(User, User.id == ExportJob.created_by, isouter=True)
        .order_by(ExportJob.created_at.desc(), ExportJob.id.desc())
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
