"""Seed-0 GET triggers: ``/notify?code=C&event=E&...`` and the same query on any page URL.

Chat bots can only fire a URL, so the whole event is in the query string: the
event name is ``E`` upper-cased with spaces as ``_``, the data is every query
parameter as a string (last value wins), and the answer keeps the original
JSON shape ``{"success": 1, "count": N, "msg": ...}`` for N = 0 too.
"""

from __future__ import annotations

from aiohttp import web

from ..config import SETTINGS_KEY
from ..errors import MISSING_PARAMETER, Handler
from ..events import trigger_event_name, validate_code
from ..hub import HUB_KEY
from ..tokens import require_token

# Query parameters that steer the trigger and are never part of the event data.
CONTROL_PARAMETERS = ("token",)
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})

# Routes whose GET may carry ?code=&event= and then trigger instead of serving:
# the page folders the seed README fires through, and paths that match nothing.
PAGE_ROUTE_NAMES = frozenset({"sources", "sources-root", "static", "static-root", "favicon", "index"})


async def trigger(request: web.Request) -> web.Response:
    """Publish the event a GET query describes and answer with the seed-0 JSON."""
    query = request.query
    require_token(request, request.app[SETTINGS_KEY].publish_token, "publish")
    for required in ("code", "event"):
        if required not in query:
            raise MISSING_PARAMETER(
                f"Missing query parameter '{required}': fire "
                f"/notify?code=<your code>&event=<EVENT_NAME>&key=value")
    data = dict(query.items())  # every parameter as a string; the last repeated value wins
    for control in CONTROL_PARAMETERS:
        data.pop(control, None)
    code = validate_code(data["code"])
    name = trigger_event_name(data["event"])
    push = data.get("push", "").lower() in TRUE_WORDS
    report = await request.app[HUB_KEY].publish(code, name, data, push=push)
    count = report.total
    return web.json_response({
        "success": 1,
        "count": count,
        "msg": f"Broadcast event to {count} clients",
        "id": report.event.id,
        "event": name,
    })


def _is_page_request(request: web.Request) -> bool:
    match_info = request.match_info
    if match_info.http_exception is not None:
        return True
    return match_info.route.name in PAGE_ROUTE_NAMES


@web.middleware
async def page_trigger_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The seed README's form: a page URL with ``&event=`` triggers instead of serving the page."""
    if (request.method in ("GET", "HEAD") and "event" in request.query
            and "code" in request.query and _is_page_request(request)):
        return await trigger(request)
    return await handler(request)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/notify", trigger, name="notify")
