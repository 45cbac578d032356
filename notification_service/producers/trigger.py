"""Seed-0 GET triggers: ``/notify?code=C&event=E&...`` and the same query on any page URL.

Chat bots can only fire a URL, so the whole event is in the query string: the
event name is ``E`` upper-cased with spaces as ``_``, the data is every query
parameter as a string (last value wins), and the answer keeps the original
JSON shape ``{"success": 1, "count": N, "msg": ...}`` for N = 0 too.

Bots paste the answer into chat, so a request that asks for text (``reply=text``,
``Accept: text/plain``, or a chat bot's own request headers) gets one short
sentence with status 200, errors included, and never the full code.
"""

from __future__ import annotations

from typing import Awaitable

from aiohttp import web

from .. import jsoncodec
from ..config import SETTINGS_KEY
from ..errors import MISSING_PARAMETER, ApiError
from ..events import trigger_event_name, validate_code
from ..guards import RouteFacts
from ..hub import HUB_KEY, DeliveryReport, mask
from ..tokens import require_token
from .body import query_flag
from .options import idempotency_key, wait_ms

# The publish token is a secret: never passed on to pages. Every other query
# parameter is event data, as in the original (reply, push, wait and
# idempotency_key steer the trigger too, but stay in the data for old bots).
SECRET_PARAMETERS = ("token",)
# Headers only chat-bot services send (Nightbot's urlfetch sends these).
CHAT_BOT_HEADERS = ("Nightbot-Channel", "Nightbot-User", "Nightbot-Response-Url")
TEXT_REPLY_LIMIT = 400
# Routes whose GET may carry ?code=&event= and then trigger instead of serving:
# the page folders the seed README fires through, and paths that match nothing.
PAGE_ROUTE_NAMES = frozenset({"sources", "sources-root", "static", "static-root", "favicon", "index"})


def wants_text(request: web.Request) -> bool:
    """Whether the caller will paste the answer into chat."""
    reply = request.query.get("reply")
    if reply is not None:
        return reply.lower() == "text"
    headers = request.headers
    if headers.get("Accept", "").startswith("text/plain"):
        return True
    for header in CHAT_BOT_HEADERS:
        if header in headers:
            return True
    return False


def text_reply(sentence: str) -> web.Response:
    if len(sentence) > TEXT_REPLY_LIMIT:
        sentence = sentence[:TEXT_REPLY_LIMIT - 1] + "…"
    return web.Response(text=sentence, content_type="text/plain")


def sentence_for(report: DeliveryReport) -> str:
    name, count = report.event.name, report.total
    if report.duplicate:
        return f"Already sent {name} (same idempotency key); not sent again."
    if count == 0:
        return f"Sent {name}, but no overlay is listening on code {mask(report.event.channel)}."
    sentence = f"Sent {name} to {count} overlay{'s' if count != 1 else ''}"
    if report.acknowledged is not None:
        sentence += f"; {report.acknowledged} confirmed"
    return sentence + "."


async def trigger(request: web.Request) -> web.Response:
    """Publish the event a GET query describes; answer in the seed-0 JSON or one sentence."""
    if not wants_text(request):
        return jsoncodec.response(seed_answer(await publish_query(request)))
    try:
        report = await publish_query(request)
    except ApiError as error:
        return text_reply(f"Could not send: {error.message}")
    return text_reply(sentence_for(report))


def publish_query(request: web.Request) -> Awaitable[DeliveryReport]:
    """The publish a GET query describes (raises its ApiError at once if it describes none).

    Returns the Hub's coroutine itself rather than awaiting it: one coroutine
    less on every trigger.
    """
    query = request.query
    app = request.app
    require_token(request, app[SETTINGS_KEY].publish_token, "publish")
    for required in ("code", "event"):
        if required not in query:
            raise MISSING_PARAMETER(
                f"Missing query parameter '{required}': fire "
                f"/notify?code=<your code>&event=<EVENT_NAME>&key=value")
    data = dict(query.items())  # every parameter as a string; the last repeated value wins
    for secret in SECRET_PARAMETERS:
        data.pop(secret, None)
    code = validate_code(data["code"])
    name = trigger_event_name(data["event"])
    return app[HUB_KEY].publish(
        code, name, data, push=query_flag(request, "push"),
        idempotency_key=idempotency_key(request), wait_ms=wait_ms(request, strict=False),
        way="trigger")


def seed_answer(report: DeliveryReport) -> dict[str, object]:
    """The original answer, plus the event id, name and the duplicate flag (additive)."""
    count = report.total
    answer: dict[str, object] = {
        "success": 1,
        "count": count,
        "msg": f"Broadcast event to {count} clients",
        "id": report.event.id,
        "event": report.event.name,
    }
    if report.duplicate:
        answer["duplicate"] = True
    if report.acknowledged is not None:
        answer["acknowledged"] = report.acknowledged
    answer.update(report.extra)  # the alert queue's queued_position
    return answer


def is_page_trigger(request: web.Request, route: RouteFacts) -> bool:
    """The seed README's form: a page URL with ``code`` and ``event`` in its query.

    A page URL is one of the page folders or a path that matches nothing (not
    an API route of another method). Such a request triggers (:func:`trigger`)
    instead of serving the page (frontdoor.py).
    """
    if not (route.not_found if route.error else route.name in PAGE_ROUTE_NAMES) \
            or request.method not in ("GET", "HEAD"):
        return False  # decided without parsing the query: every API route, /notify too
    query = request.query
    return "event" in query and "code" in query


def add_routes(app: web.Application) -> None:
    app.router.add_get("/notify", trigger, name="notify")
