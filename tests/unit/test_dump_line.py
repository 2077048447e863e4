"""The log line's standard-JSON check (schema._non_finite), as the faster walk does it: a NaN
or an infinity anywhere refuses the line; strings, nulls, ints and bools are skipped."""

from __future__ import annotations

import math
from typing import Any

import pytest

from shadowtutor.log import schema


@pytest.mark.parametrize(
    ("value", "found"),
    [
        (math.nan, True),
        (-math.inf, True),
        (1.5, False),
        ({"a": None, "b": "NaN", "c": 1, "d": True}, False),
        ({"request": {"features": {"tools": [{"minimum": math.inf}]}}}, True),
        ([1, [2, (3.0, {"x": [math.nan]})]], True),
        ({"messages": [{"role": "user", "content": "inf"}], "score": 0.25}, False),
        ((), False),
    ],
)
def test_non_finite_is_found_wherever_it_hides(value: Any, found: bool) -> None:
    assert schema._non_finite(value) is found


def test_a_record_with_nan_in_its_request_features_is_not_written() -> None:
    record = schema.make_record(
        messages=[{"role": "user", "content": "q"}],
        teacher={"response": "a"},
        request={"kind": "tools", "features": {"tools": [{"weight": math.nan}]}},
    )
    with pytest.raises(ValueError, match="NaN or infinity"):
        schema.dump_line(record)
    record["request"]["features"] = {"tools": [{"weight": 0.5}]}
    assert schema.dump_line(record).endswith(b"\n")
