"""Student server health and model facts, as plain data shared by the Playground page and the
``shadowtutor student health`` / ``student info MODEL`` commands (so both show the same facts).

``check(backend, model)`` asks the server, in order: its version (Ollama ``/api/version``), the
models pulled (``/api/tags`` or ``GET /v1/models``), the models loaded in memory (Ollama
``/api/ps``) and the chosen model's details (Ollama ``/api/show``: family, parameter size,
quantization, context length). Every failure becomes a problem message naming the fix (start the
server with ``ollama serve``, ``ollama pull NAME``), never an exception. ``Health.facts()`` and
``model_facts(info)`` return the ``(label, value)`` rows both front ends print.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shadowtutor.backends import Backend, BackendError, ModelInfo, ModelNotFound

NOT_REPORTED = "not reported"


@dataclass
class Health:
    """What the student server said; ``problems`` are messages a user can act on."""

    provider: str
    base_url: str
    model: str
    reachable: bool = False
    version: str | None = None
    pulled: list[ModelInfo] | None = None
    loaded: list[ModelInfo] | None = None  # None: the server cannot tell (OpenAI-compatible)
    info: ModelInfo | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reachable and not self.problems

    @property
    def pulled_names(self) -> list[str]:
        return [m.name for m in self.pulled or []]

    @property
    def model_pulled(self) -> bool:
        return has_model(self.pulled_names, self.model)

    def loaded_info(self) -> ModelInfo | None:
        for m in self.loaded or []:
            if same_model(m.name, self.model):
                return m
        return None

    def facts(self) -> list[tuple[str, str]]:
        """The rows of the health report, in the order the page and the CLI print them."""
        rows = [
            ("Student server", f"{self.provider} at {self.base_url}"),
            ("Reachable", "yes" if self.reachable else "no"),
            ("Version", self.version or NOT_REPORTED),
        ]
        if not self.reachable:
            return rows
        rows.append(("Models pulled", ", ".join(self.pulled_names) or "none"))
        if self.loaded is None:
            rows.append(("Models loaded", NOT_REPORTED))
        else:
            rows.append(("Models loaded", ", ".join(m.name for m in self.loaded) or "none"))
        rows.append(("Chosen model", self.model))
        if not self.model_pulled:
            rows.append(("Pulled", "no"))
            return rows
        rows.extend(model_facts(self.info or ModelInfo(name=self.model))[1:])
        loaded = self.loaded_info()
        if self.loaded is not None:
            rows.append(("Loaded now", "yes" if loaded else "no"))
        if loaded and loaded.context_length:
            rows.append(("Loaded context", f"{loaded.context_length:,} tokens"))
        return rows


def same_model(a: str, b: str) -> bool:
    """Ollama names ``llama3`` and ``llama3:latest`` are the same model."""
    return a.removesuffix(":latest") == b.removesuffix(":latest")


def has_model(names: list[str], model: str) -> bool:
    return any(same_model(n, model) for n in names)


def model_facts(info: ModelInfo) -> list[tuple[str, str]]:
    """Family, parameters, quantization, context length and size of one model."""
    return [
        ("Model", info.name),
        ("Family", info.family or NOT_REPORTED),
        ("Parameters", info.parameter_size or NOT_REPORTED),
        ("Quantization", info.quantization or NOT_REPORTED),
        (
            "Context length",
            f"{info.context_length:,} tokens" if info.context_length else NOT_REPORTED,
        ),
        ("Size", _gb(info.size_bytes)),
    ]


def _gb(size: int | None) -> str:
    return f"{size / 1e9:.1f} GB" if size else NOT_REPORTED


def check(backend: Backend, model: str | None = None) -> Health:
    """Ask the student server everything the health panel shows (never raises)."""
    model = model or backend.model
    health = Health(provider=backend.provider, base_url=backend.base_url, model=model)
    version = getattr(backend, "version", None)
    try:
        health.version = version() if version else None
        health.pulled = backend.list_models()
    except BackendError as exc:
        health.problems.append(str(exc))
        return health
    health.reachable = True
    loaded = getattr(backend, "loaded_models", None)
    try:
        health.loaded = loaded() if loaded else None
    except BackendError as exc:
        health.problems.append(str(exc))
    if not health.model_pulled:
        health.problems.append(not_pulled_message(backend, model))
        return health
    try:
        health.info = describe(backend, model, health.pulled)
    except BackendError as exc:
        health.problems.append(str(exc))
    return health


def not_pulled_message(backend: Backend, model: str) -> str:
    if backend.provider == "ollama":
        return (
            f"the Ollama server at {backend.base_url} does not have model '{model}'; "
            f"run: ollama pull {model}"
        )
    return (
        f"the server at {backend.base_url} does not serve model '{model}' "
        "(`GET /v1/models` lists what it serves); check the model name"
    )


def describe(backend: Backend, model: str, pulled: list[ModelInfo] | None = None) -> ModelInfo:
    """Details of one model: ``/api/show`` on Ollama, else what the model list says.

    Raises :class:`ModelNotFound` (with the fix) when the server does not have it."""
    show = getattr(backend, "show", None)
    if show is not None:
        info: ModelInfo = show(model)
        listed = next((m for m in pulled or [] if same_model(m.name, model)), None)
        if listed is not None and info.size_bytes is None:
            info.size_bytes = listed.size_bytes
        return info
    models = pulled if pulled is not None else backend.list_models()
    for m in models:
        if same_model(m.name, model):
            return m
    raise ModelNotFound(not_pulled_message(backend, model))


def info(backend: Backend, model: str) -> list[tuple[str, str]]:
    """``student info MODEL``: the model's facts, plus whether it is loaded now."""
    pulled = None if getattr(backend, "show", None) else backend.list_models()
    details = describe(backend, model, pulled)
    if details.size_bytes is None and getattr(backend, "show", None):
        pulled = backend.list_models()
        listed = next((m for m in pulled if same_model(m.name, model)), None)
        details.size_bytes = listed.size_bytes if listed else None
    rows = model_facts(details)
    loaded_models = getattr(backend, "loaded_models", None)
    if loaded_models is not None:
        loaded = next((m for m in loaded_models() if same_model(m.name, model)), None)
        rows.append(("Loaded now", "yes" if loaded else "no"))
        if loaded and loaded.context_length:
            rows.append(("Loaded context", f"{loaded.context_length:,} tokens"))
    return rows
