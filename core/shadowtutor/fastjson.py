"""JSON for the hot paths (the collector's hand-off, its journal, the proxy's body, the
backends' requests): ``orjson`` (a declared dependency) when it is importable, else the
standard library with the same results, so an environment not yet reinstalled still runs."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - exercised only without orjson
    # mypy gives the name the module's type; None marks it missing (the optional-import idiom)
    orjson = None  # type: ignore[assignment]

JSONDecodeError: type[ValueError] = orjson.JSONDecodeError if orjson else json.JSONDecodeError


def dumps(obj: Any, default: Callable[[Any], Any] | None = None) -> bytes:
    """Compact UTF-8 JSON bytes; non-string dict keys become strings."""
    if orjson is not None:
        return orjson.dumps(obj, default=default, option=orjson.OPT_NON_STR_KEYS)
    return json.dumps(obj, default=default, ensure_ascii=False, separators=(",", ":")).encode()


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    if orjson is not None:
        return orjson.loads(data)
    return json.loads(bytes(data) if isinstance(data, memoryview) else data)
