"""Typed errors a client can cause, and the one place that writes them as responses.

Every handler raises an :class:`ApiError` (or lets aiohttp raise its own HTTP
errors); :func:`error_middleware` turns it into JSON ``{"error", "code", "http"}``.
Codes are stable: clients, bots and docs rely on them, so a code is never reused
for another meaning. This module must never leak a traceback to a client.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the client caused (4xx) or that we report honestly (5xx)."""

    def __init__(self, http: int, code: int, message: str) -> None:
        super().__init__(message)
        self.http = http
        self.code = code
        self.message = message

    def to_dict(self) -> dict[str, object]:
        return {"error": self.message, "code": self.code, "http": self.http}


@dataclass(frozen=True)
class ErrorKind:
    """One stable error code; call it with a message to get the exception to raise."""

    http: int
    code: int

    def __call__(self, message: str) -> ApiError:
        return ApiError(self.http, self.code, message)


# 400: the request line or query string is wrong.
MISSING_PARAMETER = ErrorKind(400, 40001)
INVALID_CODE = ErrorKind(400, 40002)
INVALID_EVENT_NAME = ErrorKind(400, 40003)
INVALID_PARAMETER = ErrorKind(400, 40004)
# 404/405: nothing there.
NOT_FOUND = ErrorKind(404, 40401)
METHOD_NOT_ALLOWED = ErrorKind(405, 40501)
# 5xx: our fault; the message never carries internals.
INTERNAL = ErrorKind(500, 50001)


def json_error(error: ApiError) -> web.Response:
    return web.json_response(error.to_dict(), status=error.http)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every error as JSON with a stable code; log only what is our fault."""
    try:
        return await handler(request)
    except ApiError as error:
        return json_error(error)
    except web.HTTPNotFound:
        return json_error(NOT_FOUND(f"Nothing at {request.path}."))
    except web.HTTPMethodNotAllowed as exc:
        allowed = ", ".join(sorted(exc.allowed_methods))
        response = json_error(METHOD_NOT_ALLOWED(
            f"{request.method} is not allowed on {request.path}; use {allowed}."))
        response.headers["Allow"] = allowed  # RFC 9110 requires it on 405
        return response
    except web.HTTPException:
        raise  # redirects, 304s and the like are answers, not errors
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(INTERNAL("The server failed to handle this request; it has been logged."))
