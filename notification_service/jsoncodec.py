"""One JSON codec for the whole server, backed by orjson.

Producers parse with it and transports encode with it, so what a producer
accepts is exactly what a transport can send. orjson refuses NaN and infinity,
but silently turns an integer beyond 64 bits into a float: :func:`loads`
refuses every number outside ±(2^53 - 1), the range in which a JavaScript
page holds integers exactly, with :class:`NumberOutOfRange` (answered 422),
so no listener ever receives a number other than the one that was published.
Beyond 2^53 every double is an integer, so floats are held to the same bound
(``1e20`` and ``100000000000000000000`` are one JSON number).
"""

from __future__ import annotations

import re
from typing import Any, Callable

import orjson

from .json_answer import JSONAnswer

JSONDecodeError = orjson.JSONDecodeError
MAX_SAFE_INTEGER = 2 ** 53 - 1
"""JavaScript's ``Number.MAX_SAFE_INTEGER``."""
# Only a number of 16 digits or more, or written with an exponent, can be that large:
# input without either never needs the walk below.
_MAYBE_LARGE = re.compile(rb"\d{16}|\d[eE]\+?\d")


class NumberOutOfRange(JSONDecodeError):
    """A JSON number that JavaScript (and so every page) cannot hold exactly."""


def _check_magnitudes(value: Any, raw: bytes) -> None:
    """Raise :class:`NumberOutOfRange` for the first number beyond ±MAX_SAFE_INTEGER."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, (int, float)) and not isinstance(item, bool) \
                and abs(item) > MAX_SAFE_INTEGER:
            raise NumberOutOfRange(
                f"The number {item!r} is outside ±{MAX_SAFE_INTEGER} (2^53 - 1), what "
                f"JavaScript holds exactly: send it as a string",
                raw.decode("utf-8", "replace"), 0)


def dumps(value: Any, **_ignored: Any) -> str:
    """``json.dumps`` compatible signature (python-socketio passes ``separators``)."""
    return orjson.dumps(value).decode()


dumps_bytes: Callable[[Any], bytes] = orjson.dumps
"""JSON as bytes: orjson's own function, not a wrapper (each event is encoded twice with it:
for history and for its socket.io frame)."""


# orjson reads up to 1024 levels of nesting but writes at most 254, so deeper
# input would parse and then fail when delivered: refuse it at the door.
MAX_DEPTH = 200


def loads(text: str | bytes, **_ignored: Any) -> Any:
    """Parse JSON; ``JSONDecodeError`` also for nesting deeper than MAX_DEPTH, and
    :class:`NumberOutOfRange` for a number outside ±(2^53 - 1)."""
    value = orjson.loads(text)
    raw = text.encode() if isinstance(text, str) else text
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise JSONDecodeError(f"nested deeper than {MAX_DEPTH} levels", raw.decode("utf-8", "replace"), 0)
    if _MAYBE_LARGE.search(raw):  # digits inside strings match too: the walk decides
        _check_magnitudes(value, raw)
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


def response(value: Any, status: int = 200) -> JSONAnswer:
    """A JSON answer encoded by orjson (aiohttp's json_response uses the slower stdlib json),
    sent with less machinery than ``web.Response`` (see :mod:`.json_answer`)."""
    return JSONAnswer(orjson.dumps(value), status)
