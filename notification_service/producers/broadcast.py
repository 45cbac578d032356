"""``POST /broadcast/{channel}/{event}``: the socket-broadcasting-server contract.

The body is any JSON value (object, array, string, integer, float, ``true``,
``false``, ``null``) and is delivered unchanged as the event's data. A body
that is not JSON (Python's ``False``, for instance) or is empty is 422 with
where parsing failed. ``?push=1`` asks for Web Push too (the body is the data,
so the flag cannot live there). Guarded by the publish token when one is set.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import jsoncodec
from ..config import SETTINGS_KEY
from ..errors import BAD_EVENT_NAME
from ..events import validate_channel, validate_event_name
from ..hub import HUB_KEY
from ..tokens import require_token
from .body import check_raw_size, parse_json, query_flag, read_body
from .options import idempotency_key, wait_ms


def checked_names(channel: str, event: str) -> tuple[str, str]:
    """The channel and event name as ``POST /broadcast`` accepts them (422 otherwise).

    Every way in that takes a channel and an event name as separate texts (the
    Redis inbox too) checks them here, so they refuse the same names alike.
    """
    return validate_channel(channel), validate_event_name(event, BAD_EVENT_NAME)


def checked_data(raw: bytes, limit: int, what: str = "body of POST /broadcast") -> Any:
    """Any JSON value of at most ``limit`` bytes (413, 422 otherwise), as the route reads it."""
    check_raw_size(len(raw), limit)
    return parse_json(raw, what)


async def broadcast(request: web.Request) -> web.Response:
    """Publish the JSON body to the channel and answer with the delivery report."""
    settings = request.app[SETTINGS_KEY]
    require_token(request, settings.publish_token, "publish")
    channel, event = checked_names(request.match_info["channel"], request.match_info["event"])
    raw = await read_body(request, settings.max_payload_bytes)
    data = checked_data(raw, settings.max_payload_bytes)
    report = await request.app[HUB_KEY].publish(
        channel, event, data, push=query_flag(request, "push"),
        idempotency_key=idempotency_key(request), wait_ms=wait_ms(request), way="broadcast")
    return jsoncodec.response(report.to_dict())


def add_routes(app: web.Application) -> None:
    app.router.add_post("/broadcast/{channel}/{event}", broadcast, name="broadcast")
