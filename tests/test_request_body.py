"""Request bodies read without trusting them: the depth of JSON is counted outside strings."""

from __future__ import annotations

import json

import pytest

from bot.request_body import depth, parse_json


@pytest.mark.parametrize(("text", "expected"), [
    ("1", 0), ("[]", 1), ('{"a": [1, {"b": []}]}', 4), ('"[[[["', 0), ('["\\"[[", "]]"]', 1),
    ('{"a": "\\\\", "b": [[]]}', 3), ("", 0),
])
def test_depth_counts_brackets_outside_strings(text, expected):
    assert depth(text.encode()) == expected


def test_parse_json_refuses_deep_nesting_and_takes_the_rest():
    with pytest.raises(ValueError, match="deeper"):
        parse_json(b"[" * 5000 + b"]" * 5000, 20)
    value = {"text": "[[[[ {{{{ ]]", "n": [[1], [2]]}
    assert parse_json(json.dumps(value, ensure_ascii=False).encode(), 3) == value
    with pytest.raises(ValueError):
        parse_json(b"\xff", 20)
