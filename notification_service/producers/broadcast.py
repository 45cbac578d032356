"""``POST /broadcast/{channel}/{event}``: the socket-broadcasting-server contract.

The body is any JSON value (object, array, string, integer, float, ``true``,
``false``, ``null``) and is delivered unchanged as the event's data. A body
that is not JSON (Python's ``False``, for instance) or is empty is 422 with
where parsing failed. ``?push=1`` asks for Web Push too (the body is the data,
so the flag cannot live there). Guarded by the publish token when one is set.
"""

from __future__ import annotations

from aiohttp import web

from .. import jsoncodec
from ..config import SETTINGS_KEY
from ..errors import BAD_EVENT_NAME
from ..events import validate_channel, validate_event_name
from ..hub import HUB_KEY
from ..tokens import require_token
from .body import parse_json, query_flag, read_body
from .options import idempotency_key, wait_ms


async def broadcast(request: web.Request) -> web.Response:
    """Publish the JSON body to the channel and answer with the delivery report."""
    settings = request.app[SETTINGS_KEY]
    require_token(request, settings.publish_token, "publish")
    channel = validate_channel(request.match_info["channel"])
    event = validate_event_name(request.match_info["event"], BAD_EVENT_NAME)
    raw = await read_body(request, settings.max_payload_bytes)
    data = parse_json(raw, "body of POST /broadcast")
    report = await request.app[HUB_KEY].publish(
        channel, event, data, push=query_flag(request, "push"),
        idempotency_key=idempotency_key(request), wait_ms=wait_ms(request), way="broadcast")
    return jsoncodec.response(report.to_dict())


def add_routes(app: web.Application) -> None:
    app.router.add_post("/broadcast/{channel}/{event}", broadcast, name="broadcast")
