"""One JSON codec for the whole server, backed by orjson.

Producers parse with it and transports encode with it, so what a producer
accepts is exactly what a transport can send. orjson refuses NaN and infinity,
but silently turns an integer beyond 64 bits into a float: :func:`loads`
refuses every integer outside ±(2^53 - 1), the range a JavaScript page can
hold exactly, with :class:`NumberOutOfRange` (answered 422), so no listener
ever receives a number other than the one that was published.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
from aiohttp import web

JSONDecodeError = orjson.JSONDecodeError
MAX_SAFE_INTEGER = 2 ** 53 - 1
"""JavaScript's ``Number.MAX_SAFE_INTEGER``."""
# An integer beyond 2^53 has at least 16 digits: shorter input never needs the slow check.
_LONG_DIGITS = re.compile(rb"\d{16}")


class NumberOutOfRange(JSONDecodeError):
    """A JSON integer that JavaScript (and so every page) cannot hold exactly."""


def _safe_integer(literal: str) -> int:
    try:
        number = int(literal)
    except ValueError:  # more digits than Python converts: out of range anyway
        number = MAX_SAFE_INTEGER + 1
    if abs(number) > MAX_SAFE_INTEGER:
        shown = literal if len(literal) <= 40 else literal[:37] + "..."
        raise NumberOutOfRange(
            f"The integer {shown} is outside ±{MAX_SAFE_INTEGER} (2^53 - 1), what JavaScript "
            f"holds exactly: send it as a string", literal, 0)
    return number


def dumps(value: Any, **_ignored: Any) -> str:
    """``json.dumps`` compatible signature (python-socketio passes ``separators``)."""
    return orjson.dumps(value).decode()


def dumps_bytes(value: Any) -> bytes:
    return orjson.dumps(value)


# orjson reads up to 1024 levels of nesting but writes at most 254, so deeper
# input would parse and then fail when delivered: refuse it at the door.
MAX_DEPTH = 200


def loads(text: str | bytes, **_ignored: Any) -> Any:
    """Parse JSON; ``JSONDecodeError`` also for nesting deeper than MAX_DEPTH, and
    :class:`NumberOutOfRange` for an integer outside ±(2^53 - 1)."""
    value = orjson.loads(text)
    raw = text.encode() if isinstance(text, str) else text
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise JSONDecodeError(f"nested deeper than {MAX_DEPTH} levels", raw.decode("utf-8", "replace"), 0)
    if _LONG_DIGITS.search(raw):
        # Digits inside strings match too: the standard parser sees integer literals only.
        json.loads(raw, parse_int=_safe_integer)
    return value


def _depth(value: Any) -> int:
    """Nesting depth, iteratively (no recursion limit to hit)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            stack.extend((child, level + 1) for child in item)
    return deepest


def response(value: Any, status: int = 200) -> web.Response:
    """A JSON answer encoded by orjson (aiohttp's json_response uses the slower stdlib json)."""
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json")
