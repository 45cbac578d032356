"""``POST /emit``: the ws-emit contract, publishing through the Hub.

Body: JSON ``{"event", "room", "data", "namespace", "secret"}``; ``event`` is
delivered with ``data`` to the channel ``room``. ws-emit enables this route
only when started with ``--secret``; here too it answers 403 until a secret
(or a publish token) is configured, and 403 for a wrong or missing secret,
always with a message saying what to do. The answer is the Hub's delivery
report. This module never delivers anything itself and never logs secrets.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import jsoncodec
from ..config import SETTINGS_KEY, Settings, env_name
from ..errors import BAD_EVENT_NAME, EMIT_DISABLED, EMIT_FORBIDDEN, INVALID_FIELD
from ..events import validate_channel, validate_event_name
from ..hub import HUB_KEY
from ..tokens import presented_token, secrets_equal
from .body import check_data_size, parse_json, read_body
from .options import idempotency_key, wait_ms

# Room for the envelope around ``data`` (event, room, secret, namespace).
ENVELOPE_BYTES = 4096
DEFAULT_NAMESPACES = (None, "", "/")


async def emit(request: web.Request) -> web.Response:
    """Publish ``event``/``data`` to ``room`` and answer with the delivery report."""
    settings = request.app[SETTINGS_KEY]
    raw = await read_body(request, settings.max_payload_bytes + ENVELOPE_BYTES)
    body = parse_json(raw, "body of POST /emit")
    if not isinstance(body, dict):
        raise INVALID_FIELD('POST /emit takes a JSON object: {"event": "update", '
                            '"room": "time", "data": {...}, "secret": "..."}.')
    _authorise(request, settings, body.get("secret"))
    event = _string_field(body, "event")
    room = _string_field(body, "room")
    validate_event_name(event, BAD_EVENT_NAME)
    validate_channel(room)
    namespace = body.get("namespace")
    if namespace not in DEFAULT_NAMESPACES:
        raise INVALID_FIELD(f"Only the default namespace '/' exists here (got {namespace!r}); "
                            f"send null or leave namespace out.")
    push = body.get("push", False)
    if not isinstance(push, bool):
        raise INVALID_FIELD(f'"push" is true or false (got {push!r}).')
    data = body.get("data")
    check_data_size(data, settings.max_payload_bytes)
    report = await request.app[HUB_KEY].publish(
        room, event, data, push=push,
        idempotency_key=idempotency_key(request, body.get("idempotency_key")),
        wait_ms=wait_ms(request, body.get("wait")), way="emit")
    return jsoncodec.response(report.to_dict())


def _authorise(request: web.Request, settings: Settings, body_secret: Any) -> None:
    """Accept the emit secret or the publish token, from the body, the header or ?token=."""
    accepted = [value for value in (settings.secret, settings.publish_token) if value]
    if not accepted:
        raise EMIT_DISABLED(
            f"POST /emit is off: start the server with --secret <secret> (or set "
            f"{env_name('--secret')}), then send it as \"secret\" in the JSON body or as "
            f"'Authorization: Bearer <secret>'.")
    if body_secret is not None and not isinstance(body_secret, str):
        raise INVALID_FIELD(f'"secret" is a string (got {type(body_secret).__name__}).')
    presented = [value for value in (body_secret, presented_token(request))
                 if isinstance(value, str) and value]
    if not presented:
        raise EMIT_FORBIDDEN('POST /emit needs the secret: add "secret": "<secret>" to the '
                             "JSON body or send 'Authorization: Bearer <secret>'.")
    # Compare every pair so the time taken does not depend on which one matched.
    matches = [secrets_equal(given, expected) for given in presented for expected in accepted]
    if not any(matches):
        raise EMIT_FORBIDDEN("The secret is wrong: use the value of --secret "
                             f"({env_name('--secret')}) or the publish token.")


def _string_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        got = "nothing" if value is None else type(value).__name__
        raise INVALID_FIELD(f'POST /emit needs "{name}" as a string (got {got}).')
    return value


def add_routes(app: web.Application) -> None:
    app.router.add_post("/emit", emit, name="emit")
