"""Reading an HTTP request's body without trusting it: a size cap enforced while it streams in, and JSON
refused when it nests deeper than any real request does (the parser recurses, so a few kilobytes of
brackets would otherwise end in a RecursionError)."""

from __future__ import annotations

import json
import re
from itertools import accumulate

from starlette.requests import Request

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class TooLarge(Exception):
    """The body is longer than the cap (said by its Content-Length, or found while reading)."""


async def read_capped(request: Request, limit: int) -> bytes:
    """The whole body, never holding more than `limit` bytes of it; raises TooLarge beyond."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge
    return bytes(body)


def depth(body: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest, counting brackets outside strings."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def parse_json(body: bytes, max_depth: int) -> object:
    """The JSON value of `body`; ValueError when it is not JSON (or not UTF-8) or nests too deep."""
    if depth(body) > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth}")
    return json.loads(body)
