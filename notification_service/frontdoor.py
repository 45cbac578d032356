"""The one middleware every request passes.

In this order: a CORS preflight is answered (cors.py); the request guards
run (guards.py: Host, other sites, rate limits, JSON bodies); a page URL with
``&event=`` triggers instead of serving the page (producers/trigger.py); a
body still arriving gets its deadline (http_limits.py); then the handler.
Whatever any of them raises becomes the JSON error of errors.py, and every
answer is labelled (:func:`label`: nosniff, and its CORS origin) on its way out.

What each step asks of the matched route (its name, whether it matched at
all, whether it is python-engineio's) is decided once per route and kept
(:func:`.guards.route_facts`). Each concern stays in its own module as a plain
step; only the order lives here. aiohttp runs every middleware as a coroutine wrapped around the next,
and every ``on_response_prepare`` hook as another coroutine per answer: five
middlewares and two hooks cost a GET trigger more than its delivery to a
listener, so there is one middleware and no hook. An answer a handler starts
itself (an SSE stream) is labelled by that handler before it starts it; a
WebSocket's 101 needs no label.
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

    known_routes: dict[object, guards.RouteFacts] = {}

    @web.middleware
    async def front_door(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            route = guards.route_facts(request, socketio_path, known_routes)
            if route.socketio:
                request_guards.check_host(request)
            else:
                preflight = policy.preflight(request)
                if preflight is not None:
                    return preflight
                page_trigger = trigger.is_page_trigger(request, route)
                request_guards.check(request, route, page_trigger)
                if page_trigger:
                    handler = trigger.trigger
            if body_pending(request):
                response = await within_body_deadline(request, handler, body_timeout)
            else:
                response = await handler(request)
        except Exception as error:
            try:
                response = answer_for(request, error)
            except web.HTTPException as answer:  # a redirect, a 304: labelled too
                label(request, answer)
                raise
        if not response.prepared:
            label(request, response)
        return response

    front_door.known_routes = known_routes  # type: ignore[attr-defined]  # read by tests
    return front_door


def label(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer before it starts: nosniff, and its CORS label (see cors.py)."""
    guards.secure(response)
    cors.label(request, response)
