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


def loads(text: str | bytes, **_ignored: Any) -> Any:
    return orjson.loads(text)


def response(value: Any, status: int = 200) -> web.Response:
    """A JSON answer encoded by orjson (aiohttp's json_response uses the slower stdlib json)."""
    return web.Response(body=orjson.dumps(value), status=status, content_type="application/json")
