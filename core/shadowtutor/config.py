"""One settings object for the library, the CLI and the app.

Every setting is read from an environment variable (the app also reads the same names from
Streamlit secrets). Defaults give the embedded setup: a SQLite file and a local log folder under
``SHADOWTUTOR_HOME``. Each field's metadata names its variable and documents it; the README's
settings table is checked against this list by a test.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

from shadowtutor.errors import ShadowTutorError


class SettingsError(ShadowTutorError, ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def _setting(env: str, default: Any, doc: str) -> Any:
    return field(default=default, metadata={"env": env, "doc": doc})


@dataclass(frozen=True)
class Settings:
    home: str = _setting(
        "SHADOWTUTOR_HOME",
        "~/.shadowtutor",
        "Folder for the embedded setup: the SQLite database and the shadow log live here.",
    )
    database_url: str = _setting(
        "DATABASE_URL",
        "",
        "SQLAlchemy URL of the database. Empty: a SQLite file `shadowtutor.db` in the home "
        "folder. PostgreSQL: `postgresql://user:pass@host:5432/db` (the installed driver is used).",
    )
    log_dir: str = _setting(
        "SHADOWTUTOR_LOG_DIR",
        "",
        "Folder of the shadow log (JSONL and Parquet), or `s3://bucket/prefix` for object "
        "storage (AWS S3, MinIO, Ceph, R2, SeaweedFS; reached with `AWS_ENDPOINT_URL`, "
        "`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`). Empty: `logs/` in the "
        "home folder.",
    )
    log_spool_dir: str = _setting(
        "SHADOWTUTOR_LOG_SPOOL_DIR",
        "",
        "With the log on object storage: local folder where writers spool parts until they are "
        "uploaded (leftovers are uploaded on the next start). Empty: `spool/` in the home folder.",
    )
    log_part_mb: float = _setting(
        "SHADOWTUTOR_LOG_PART_MB",
        8.0,
        "With the log on object storage: a spooled part is closed and uploaded at this size (MB).",
    )
    log_part_seconds: float = _setting(
        "SHADOWTUTOR_LOG_PART_SECONDS",
        30.0,
        "With the log on object storage: a spooled part is closed and uploaded at this age "
        "(seconds), so the bucket lags the writers by about this much.",
    )
    timezone: str = _setting(
        "SHADOWTUTOR_TIMEZONE", "UTC", "IANA time zone in which pages show times (stored in UTC)."
    )
    teacher_base_url: str = _setting(
        "SHADOWTUTOR_TEACHER_BASE_URL",
        "",
        "Base URL of the teacher's OpenAI-compatible API. Empty: the OpenAI default.",
    )
    teacher_api_key: str = _setting(
        "SHADOWTUTOR_TEACHER_API_KEY",
        "",
        "API key for the teacher. Empty: `OPENAI_API_KEY` is used.",
    )
    anthropic_base_url: str = _setting(
        "SHADOWTUTOR_ANTHROPIC_BASE_URL",
        "https://api.anthropic.com",
        "Base URL of the Anthropic Messages API the proxy forwards `/v1/messages` (and every "
        "request carrying `anthropic-version`) to, without `/v1`; one proxy fronts both teachers.",
    )
    anthropic_api_key: str = _setting(
        "SHADOWTUTOR_ANTHROPIC_API_KEY",
        "",
        "API key for the Anthropic teacher, sent as `x-api-key` when the caller sends none. "
        "Empty: `ANTHROPIC_API_KEY` is used.",
    )
    teacher_model: str = _setting(
        "SHADOWTUTOR_TEACHER_MODEL", "gpt-4o-mini", "Teacher model used by replay and playground."
    )
    student_backend: str = _setting(
        "SHADOWTUTOR_STUDENT_BACKEND",
        "ollama",
        "How to reach the student: `ollama` (the ollama client) or `openai` "
        "(any OpenAI-compatible server: vLLM, llama.cpp, RunPod).",
    )
    student_base_url: str = _setting(
        "SHADOWTUTOR_STUDENT_BASE_URL",
        "http://127.0.0.1:11434",
        "Address of the student server (Ollama host, or the OpenAI-compatible base URL with /v1).",
    )
    student_api_key: str = _setting(
        "SHADOWTUTOR_STUDENT_API_KEY", "", "API key for an OpenAI-compatible student server."
    )
    student_model: str = _setting("SHADOWTUTOR_STUDENT_MODEL", "llama3", "Student model name.")
    student_timeout_s: float = _setting(
        "SHADOWTUTOR_STUDENT_TIMEOUT_S", 10.0, "Seconds before a student call is a timeout."
    )
    student_keep_alive: str = _setting(
        "SHADOWTUTOR_STUDENT_KEEP_ALIVE", "5m", "Ollama keep-alive for the student model."
    )
    student_monthly_cost_usd: float = _setting(
        "SHADOWTUTOR_STUDENT_MONTHLY_COST_USD",
        0.0,
        "Flat monthly cost of the student (a GPU rental); 0 for a machine you already own.",
    )
    sample_percent: float = _setting(
        "SHADOWTUTOR_SAMPLE_PERCENT",
        100.0,
        "Share of eligible requests shadowed by the student, 0 to 100.",
    )
    eligible_categories: str = _setting(
        "SHADOWTUTOR_ELIGIBLE_CATEGORIES",
        "",
        "Comma-separated categories the student may shadow and serve; empty: all.",
    )
    queue_size: int = _setting(
        "SHADOWTUTOR_QUEUE_SIZE", 1000, "Bound of the collector's queue; beyond it work is dropped."
    )
    workers: int = _setting("SHADOWTUTOR_WORKERS", 2, "Collector worker threads.")
    companion: bool = _setting(
        "SHADOWTUTOR_COMPANION",
        False,
        "Run the shadow work in a companion process (`shadowtutor proxy` turns it on unless "
        "this is set to 0).",
    )
    breaker_failures: int = _setting(
        "SHADOWTUTOR_BREAKER_FAILURES",
        5,
        "Consecutive student failures that open the circuit breaker.",
    )
    breaker_cooldown_s: float = _setting(
        "SHADOWTUTOR_BREAKER_COOLDOWN_S", 30.0, "Seconds before an open breaker probes again."
    )
    similarity_method: str = _setting(
        "SHADOWTUTOR_SIMILARITY",
        "lexical",
        "Similarity method: `lexical` (built in), `ollama` or `openai` (embeddings).",
    )
    embedding_model: str = _setting(
        "SHADOWTUTOR_EMBEDDING_MODEL",
        "",
        "Embedding model for the `ollama`/`openai` similarity methods "
        "(defaults: nomic-embed-text, text-embedding-3-small).",
    )
    price_table: str = _setting(
        "SHADOWTUTOR_PRICE_TABLE",
        "",
        "Path of a price table TOML replacing the shipped one (core/shadowtutor/data/prices.toml).",
    )
    proxy_host: str = _setting("SHADOWTUTOR_PROXY_HOST", "127.0.0.1", "Address the proxy binds.")
    proxy_port: int = _setting("SHADOWTUTOR_PROXY_PORT", 8787, "Port the proxy listens on.")
    proxy_keep_alive_s: float = _setting(
        "SHADOWTUTOR_PROXY_KEEP_ALIVE_S",
        5.0,
        "Seconds the proxy keeps an idle keep-alive connection open before closing it (an "
        "OpenAI client reconnects when it needs to).",
    )
    feedback_key: str = _setting(
        "SHADOWTUTOR_FEEDBACK_KEY",
        "",
        "Key an app must send (`Authorization: Bearer KEY`) to post to the proxy's "
        "`/v1/feedback`. Empty: feedback is taken only from loopback callers (127.0.0.1, ::1).",
    )
    regenerate_window_s: float = _setting(
        "SHADOWTUTOR_REGENERATE_WINDOW_S",
        120.0,
        "Seconds within which a conversation sending the same last user message again counts "
        "as a regenerate of the earlier answer (implicit feedback). 0: not recorded.",
    )
    abandon_after_s: float = _setting(
        "SHADOWTUTOR_ABANDON_AFTER_S",
        1800.0,
        "Seconds of silence after an answer after which its conversation counts as abandoned "
        "on that answer (implicit feedback). 0: not recorded.",
    )
    review_blind: bool = _setting(
        "SHADOWTUTOR_REVIEW_BLIND",
        False,
        "Blind review: answers shown as A and B in random order, models revealed after submit.",
    )
    reviews_per_item: int = _setting(
        "SHADOWTUTOR_REVIEWS_PER_ITEM", 1, "Reviews each queued pair needs (k)."
    )
    claim_minutes: float = _setting(
        "SHADOWTUTOR_CLAIM_MINUTES", 15.0, "Minutes a review item stays claimed by its reviewer."
    )
    gate_config: str = _setting(
        "SHADOWTUTOR_GATE_CONFIG",
        "",
        "Path of the deploy gate's criteria TOML. Empty: the shipped defaults.",
    )
    kill_switch: bool = _setting(
        "SHADOWTUTOR_KILL_SWITCH",
        False,
        "When true every request goes to the teacher, whatever the rollout stage.",
    )
    session_hours: float = _setting(
        "SHADOWTUTOR_SESSION_HOURS",
        12.0,
        "Hours a dashboard login lasts (the session cookie's lifetime).",
    )
    session_secret: str = _setting(
        "SHADOWTUTOR_SESSION_SECRET",
        "",
        "Key that signs the session cookie. Empty: a random key kept in `session.key` in the "
        "home folder (set it when app processes do not share one home).",
    )
    export_dir: str = _setting(
        "SHADOWTUTOR_EXPORT_DIR", "", "Folder for exports. Empty: `exports/` in the home folder."
    )
    judge_backend: str = _setting(
        "SHADOWTUTOR_JUDGE_BACKEND",
        "teacher",
        "Model that judges sampled pairs: `teacher` or `student` (their settings), or `openai` / "
        "`ollama` with the SHADOWTUTOR_JUDGE_* address and model.",
    )
    judge_base_url: str = _setting(
        "SHADOWTUTOR_JUDGE_BASE_URL",
        "",
        "Address of the judge's server for `openai` (base URL with /v1) or `ollama` (host).",
    )
    judge_model: str = _setting(
        "SHADOWTUTOR_JUDGE_MODEL",
        "",
        "Judge model name. Empty: the teacher's or the student's model.",
    )
    judge_api_key: str = _setting(
        "SHADOWTUTOR_JUDGE_API_KEY", "", "API key for an `openai` judge server."
    )

    # --- derived paths -------------------------------------------------------------------
    @property
    def home_path(self) -> Path:
        return Path(self.home).expanduser()

    @cached_property  # asked on every routed request: computed once per settings object
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home_path / 'shadowtutor.db'}"

    @property
    def log_path(self) -> Any:
        """The log folder (a ``Path``), or an ``S3Storage`` for an ``s3://`` URL; every log
        reader and writer takes either."""
        if self.log_dir.startswith("s3://"):
            from shadowtutor.log import bucket

            return bucket.from_settings(self, os.environ)
        return Path(self.log_dir).expanduser() if self.log_dir else self.home_path / "logs"

    @property
    def export_path(self) -> Path:
        return Path(self.export_dir).expanduser() if self.export_dir else self.home_path / "exports"

    @property
    def eligible(self) -> frozenset[str]:
        return frozenset(c.strip() for c in self.eligible_categories.split(",") if c.strip())

    # --- loading --------------------------------------------------------------------------
    @classmethod
    def load(
        cls, env: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None
    ) -> Settings:
        """Read settings: environment first, then secrets (same names), then defaults."""
        env = os.environ if env is None else env
        secrets = secrets or {}
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            raw = env.get(name)
            if raw is None and name in secrets:
                raw = secrets[name]
            if raw is None:
                continue
            values[f.name] = _convert(name, raw, type(f.default))
        return cls(**values)

    @classmethod
    def documented(cls) -> list[tuple[str, Any, str]]:
        """(variable, default, doc) for every setting, in declaration order."""
        return [(f.metadata["env"], f.default, f.metadata["doc"]) for f in fields(cls)]


def parse_value(name: str, raw: Any, kind: type) -> Any:
    """One setting's raw value (environment or secrets) as ``kind``, as :meth:`Settings.load`
    reads it; a :class:`SettingsError` naming the variable when it cannot be."""
    return _convert(name, raw, kind)


def _convert(name: str, raw: Any, kind: type) -> Any:
    if isinstance(raw, kind) and not (kind is int and isinstance(raw, bool)):
        return raw
    text = str(raw).strip()
    try:
        if kind is bool:
            if text.lower() in {"1", "true", "yes", "on"}:
                return True
            if text.lower() in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise SettingsError(
            f"{name}={text!r} is not a valid {kind.__name__}; fix or unset that variable"
        ) from None
    return text


def get_settings() -> Settings:
    return Settings.load()


def shown_path(path: str | Path, home: str | Path) -> str:
    """A path as users see it: relative to the home folder when it is inside it
    (``exports/20261201-101500``), else only its last part, so no machine path reaches a
    page for everyone. Admins who need the full path get it beside, where they act on it."""
    p = Path(path).expanduser()
    try:
        return p.resolve().relative_to(Path(home).expanduser().resolve()).as_posix() or "."
    except ValueError:
        return p.name
