"""CORS for the HTTP API: which other origins' pages may call it, preflight included.

One list of origins (``--cors-origin``, repeatable, ``*`` for any) drives
this middleware, socket.io's own origin check and the refusal of other sites'
pages on publishing routes (guards.py), so a page that may publish may also
listen. Default: no origin but the server's own. ``/socket.io/`` is
left to python-engineio, which answers its own CORS. This module never decides
who may publish (tokens do): CORS only says which pages may read our answers.
app.py places :func:`middleware` and registers :func:`label_response`.
"""

from __future__ import annotations

from aiohttp import web

from .config import SETTINGS_KEY
from .errors import ORIGIN_REFUSED, Handler, json_error

ALLOWED_METHODS = "GET, HEAD, POST, PUT, DELETE, OPTIONS"
DEFAULT_ALLOWED_HEADERS = "Authorization, Content-Type, Last-Event-ID"
PREFLIGHT_MAX_AGE = "600"
SOCKETIO_PREFIX = "/socket.io"
ALLOWED_ORIGIN = web.RequestKey("cors_allowed_origin", str)  # set for allowed cross-origin requests


def is_socketio(request: web.Request) -> bool:
    """A request of python-engineio's, which checks origins and reads bodies itself."""
    return request.path.startswith(request.app[SETTINGS_KEY].base_path + SOCKETIO_PREFIX)


def socketio_origins(origins: list[str]) -> list[str] | str | None:
    """The same policy in python-socketio's terms (None = same origin; [] would mean *no check*)."""
    if not origins:
        return None
    if "*" in origins:
        return "*"
    return list(origins)


def middleware(origins: list[str]):  # type: ignore[no-untyped-def]
    """A middleware answering preflights and labelling answers for the allowed origins."""
    allowed = frozenset(origin.rstrip("/") for origin in origins)
    any_origin = "*" in allowed

    def allow(origin: str) -> str | None:
        if any_origin:
            return "*"
        return origin if origin in allowed else None

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is None or is_socketio(request):
            return await handler(request)
        allowed_origin = allow(origin)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if allowed_origin is None:
                return json_error(ORIGIN_REFUSED(
                    f"Pages from {origin} may not call this server: start it with "
                    f"--cors-origin {origin} (or '*')."))
            requested = request.headers.get("Access-Control-Request-Headers")
            return web.Response(status=204, headers={
                "Access-Control-Allow-Origin": allowed_origin,
                "Access-Control-Allow-Methods": ALLOWED_METHODS,
                "Access-Control-Allow-Headers": requested or DEFAULT_ALLOWED_HEADERS,
                "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
                "Vary": "Origin",
            })
        if allowed_origin is not None:
            request[ALLOWED_ORIGIN] = allowed_origin
        return await handler(request)

    return cors


async def label_response(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: label every answer, streaming ones (SSE) included."""
    allowed_origin = request.get(ALLOWED_ORIGIN)
    if allowed_origin is not None:
        response.headers["Access-Control-Allow-Origin"] = allowed_origin
        response.headers["Access-Control-Expose-Headers"] = "X-Connection-Id"
        response.headers.add("Vary", "Origin")

