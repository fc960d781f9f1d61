"""router.jsonio reads and writes what the standard library does, only faster (property-based)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router import jsonio

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def values(floats: st.SearchStrategy[float]) -> st.SearchStrategy[object]:
    scalars = st.none() | st.booleans() | INT64 | floats | st.text()
    return st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20)


VALUES = values(st.floats())
FINITE_VALUES = values(st.floats(allow_nan=False, allow_infinity=False))


def same(a: object, b: object) -> bool:
    """Equal, counting NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@given(VALUES)
def test_reads_what_the_standard_library_reads(value: object) -> None:
    ascii_text = json.dumps(value)  # lone surrogates escaped: \ud800
    assert same(jsonio.loads(ascii_text.encode()), json.loads(ascii_text))
    unicode_text = json.dumps(value, ensure_ascii=False)
    assert same(jsonio.loads(unicode_text), json.loads(unicode_text))


@given(st.binary(max_size=64))
def test_refuses_what_the_standard_library_refuses(data: bytes) -> None:
    try:
        expected = json.loads(data)
    except ValueError:
        with pytest.raises(ValueError):
            jsonio.loads(data)
    else:
        assert same(jsonio.loads(data), expected)


@given(FINITE_VALUES)
def test_writes_what_reads_back(value: object) -> None:
    assert same(json.loads(jsonio.dumps(value)), value)


def test_values_orjson_alone_would_refuse() -> None:
    assert math.isnan(jsonio.loads(b'{"a": NaN}')["a"])
    assert jsonio.loads(b'{"a": 1e400}')["a"] == math.inf
    assert jsonio.loads(b'"\\ud800"') == "\ud800"
    assert json.loads(jsonio.dumps({"n": 10**30, "s": "\ud800"})) == {"n": 10**30, "s": "\ud800"}
    assert json.loads(jsonio.dumps([math.nan, math.inf])) == [None, None]  # no NaN in JSON
    assert jsonio.loads(b"99999999999999999999") == pytest.approx(1e20)  # beyond 64 bits: a float
