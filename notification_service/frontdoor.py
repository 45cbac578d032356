"""The one middleware every request passes, and the one hook every answer passes.

In this order: a CORS preflight is answered (cors.py); the request guards
run (guards.py: Host, other sites, rate limits, JSON bodies); a page URL with
``&event=`` triggers instead of serving the page (producers/trigger.py); a
body still arriving gets its deadline (http_limits.py); then the handler.
Whatever any of them raises becomes the JSON error of errors.py.

Each concern stays in its own module as a plain step; only the order lives
here. aiohttp runs every middleware as a coroutine wrapped around the next:
five of them, and two ``on_response_prepare`` coroutines, cost a GET trigger
about as much as its whole delivery to a listener, so there is one of each.
"""

from __future__ import annotations

from aiohttp import web

from . import cors, guards
from .errors import Handler, answer_for
from .http_limits import body_pending, within_body_deadline
from .producers import trigger


def middleware(policy: cors.CorsPolicy, request_guards: guards.RequestGuards,
               body_timeout: float, socketio_path: str):  # type: ignore[no-untyped-def]
    """The front door of one app, from its CORS policy, guards and ``--body-timeout``.

    ``socketio_path`` (``/socket.io`` under the base path): python-engineio's
    requests check their own origins and bodies; they pass the Host guard only.
    """

    @web.middleware
    async def front_door(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if request.path.startswith(socketio_path):
                request_guards.check_host(request)
            else:
                preflight = policy.preflight(request)
                if preflight is not None:
                    return preflight
                page_trigger = trigger.is_page_trigger(request)
                request_guards.check(request, page_trigger)
                if page_trigger:
                    handler = trigger.trigger
            if body_pending(request):
                return await within_body_deadline(request, handler, body_timeout)
            return await handler(request)
        except Exception as error:
            return answer_for(request, error)

    return front_door


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer, streaming ones (SSE) included: nosniff, and its CORS label."""
    guards.secure(response)
    cors.label(request, response)
