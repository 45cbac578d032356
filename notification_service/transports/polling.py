"""Polling: ``GET /channels/{channel}/events?since=<id>`` returns what a client missed.

For clients that cannot keep a connection open (cron jobs, serverless
functions, a bot checking in now and then). It reads the Hub's history and
delivers nothing: the events are the same, in the same order, with the same
ids as on every live transport. Polling is listening, so the listening rules
apply (private spaces need ``secret``, JWT channels a token), unless the
caller presents the publish or admin token, which may read any channel.
"""

from __future__ import annotations

from aiohttp import web

from ..access import ACCESS_KEY
from ..config import SETTINGS_KEY
from ..events import validate_channel
from ..hub import HUB_KEY
from ..tokens import presented_token, secrets_equal


async def channel_events(request: web.Request) -> web.Response:
    channel = validate_channel(request.match_info["channel"])
    settings = request.app[SETTINGS_KEY]
    token = presented_token(request)
    privileged = any(secrets_equal(token, expected)
                     for expected in (settings.publish_token, settings.admin_token) if expected)
    if not privileged:
        request.app[ACCESS_KEY].check_listen(channel, secret=request.query.get("secret"))
    since = request.query.get("since")
    history = request.app[HUB_KEY].history
    missed = history.since(channel, since) if since else None
    events = missed.events if missed else history.recent(channel)
    return web.json_response({
        "channel": channel,
        "events": [event.to_dict() for event in events],
        "gap": bool(missed and missed.gap),
        "lastEventId": events[-1].id if events else since,
    })


def add_routes(app: web.Application) -> None:
    app.router.add_get("/channels/{channel}/events", channel_events, name="channel-events")
