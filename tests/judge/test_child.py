"""The call harness's JSON codec (`child._json_codec`) is `json.loads` / `json.dumps` with default
arguments called through their C pieces: same values accepted, same errors, same text."""

from __future__ import annotations

import json

import pytest

from xcoder.judge import child

LOADS_CASES = ['1', ' [1, 2] ', '"a"', '{"a": [1, {"b": null}]}', '1.5e3', 'true', '  ', '', '[1] x', '\ufeff1',
               'nan', 'NaN', '-Infinity', '"\\ud800"', '1 2', '{"a":1,}', '[', '0001', '\t{"x": "y"}\r\n', '"\\u00e9"']
DUMPS_VALUES = [1, 1.0, 0.1, float("inf"), "é", 'a"b', [1, (2, 3)], {"k": [None, True]}, {1: 2}, 10**30, -0.0,
                [[[]]], {"b": 1, "a": 2}, "\n\t", [1.5e300, -2]]


def _outcome(fn, arg):
    try:
        return ("ok", repr(fn(arg)))
    except ValueError:
        return ("ValueError",)
    except TypeError:
        return ("TypeError",)


@pytest.mark.parametrize("text", LOADS_CASES)
def test_loads_accepts_and_refuses_what_json_loads_does(text):
    loads, _ = child._json_codec()
    assert _outcome(loads, text) == _outcome(json.loads, text)


@pytest.mark.parametrize("value", DUMPS_VALUES + [set(), object(), {(1, 2): 3}], ids=repr)
def test_dumps_writes_what_json_dumps_does(value):
    _, dumps = child._json_codec()
    assert _outcome(dumps, value) == _outcome(json.dumps, value)
