"""One JSON codec for the whole server, backed by orjson.

Producers parse with it and transports encode with it, so what a producer
accepts is exactly what a transport can send (orjson refuses integers beyond
64 bits and NaN at the door instead of failing at delivery).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

JSONDecodeError = orjson.JSONDecodeError


def dumps(value: Any, **_ignored: Any) -> str:
    """``json.dumps`` compatible signature (python-socketio passes ``separators``)."""
    return orjson.dumps(value).decode()


def dumps_bytes(value: Any) -> bytes:
    return orjson.dumps(value)


# orjson reads up to 1024 levels of nesting but writes at most 254, so deeper
# input would parse and then fail when delivered: refuse it at the door.
MAX_DEPTH = 200


def loads(text: str | bytes, **_ignored: Any) -> Any:
    """Parse JSON; ``JSONDecodeError`` also for nesting deeper than MAX_DEPTH."""
    value = orjson.loads(text)
    raw = text.encode() if isinstance(text, str) else text
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise JSONDecodeError(f"nested deeper than {MAX_DEPTH} levels", raw.decode("utf-8", "replace"), 0)
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
