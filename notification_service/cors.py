"""CORS for the HTTP API: which other origins' pages may call it, preflight included.

One list of origins (``--cors-origin``, repeatable, ``*`` for any) drives
this policy, socket.io's own origin check and the refusal of other sites'
pages on publishing routes (guards.py), so a page that may publish may also
listen. Default: no origin but the server's own. ``/socket.io/`` is
left to python-engineio, which answers its own CORS. This module never decides
who may publish (tokens do): CORS only says which pages may read our answers.
The front door (frontdoor.py) asks :meth:`CorsPolicy.preflight` first and
:func:`label` labels every answer.
"""

from __future__ import annotations

from aiohttp import web

from .errors import ORIGIN_REFUSED, json_error

ALLOWED_METHODS = "GET, HEAD, POST, PUT, DELETE, OPTIONS"
DEFAULT_ALLOWED_HEADERS = "Authorization, Content-Type, Last-Event-ID"
PREFLIGHT_MAX_AGE = "600"
SOCKETIO_PREFIX = "/socket.io"
ALLOWED_ORIGIN = web.RequestKey("cors_allowed_origin", str)  # set for allowed cross-origin requests


def socketio_origins(origins: list[str]) -> list[str] | str | None:
    """The same policy in python-socketio's terms (None = same origin; [] would mean *no check*)."""
    if not origins:
        return None
    if "*" in origins:
        return "*"
    return list(origins)


class CorsPolicy:
    """Answers preflights and marks allowed cross-origin requests, for ``--cors-origin`` origins."""

    def __init__(self, origins: list[str]) -> None:
        self.allowed = frozenset(origin.rstrip("/") for origin in origins)
        self.any_origin = "*" in self.allowed

    def allow(self, origin: str) -> str | None:
        """The ``Access-Control-Allow-Origin`` for ``origin``, or None if its pages may not read."""
        if self.any_origin:
            return "*"
        return origin if origin in self.allowed else None

    def preflight(self, request: web.Request) -> web.Response | None:
        """The answer to a CORS preflight; None for any other request (marked if allowed).

        Not for ``/socket.io/`` requests: python-engineio answers its own CORS.
        """
        origin = request.headers.get("Origin")
        if origin is None:
            return None
        allowed_origin = self.allow(origin)
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
        return None


def label(request: web.Request, response: web.StreamResponse) -> None:
    """Label an answer about to be sent (streaming ones, SSE, included) for its allowed origin."""
    if "Origin" not in request.headers:
        return  # not cross-origin; and asking the request for a key it lacks raises inside
    allowed_origin = request.get(ALLOWED_ORIGIN)
    if allowed_origin is not None:
        response.headers["Access-Control-Allow-Origin"] = allowed_origin
        response.headers["Access-Control-Expose-Headers"] = "X-Connection-Id"
        response.headers.add("Vary", "Origin")

