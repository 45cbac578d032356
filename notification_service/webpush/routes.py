"""The Web Push HTTP API: the public key, subscribing, unsubscribing, notifying.

``POST /webpush/notify`` is a way in like any other: it publishes one Event
on the target channel through the Hub (push requested) and answers with what
the push services said. Subscribing to a channel is listening to it, so the
channel access rules apply. Handlers validate and answer; they never send.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..access import ACCESS_KEY
from ..config import SETTINGS_KEY
from ..errors import (
    INVALID_NOTIFICATION,
    INVALID_SUBSCRIPTION,
    NUMBER_OUT_OF_RANGE,
    SUBSCRIPTION_NOT_FOUND,
    SUBSCRIPTIONS_FULL,
    WEBPUSH_BODY_NOT_JSON,
    WEBPUSH_PAYLOAD_TOO_LARGE,
)
from ..events import validate_channel, validate_code
from ..hub import HUB_KEY
from ..jsoncodec import JSONDecodeError, NumberOutOfRange, loads
from ..producers.body import body_too_large, read_body
from ..tokens import require_token
from .pusher import NOTIFICATION_EVENT, make_options
from .sender import PayloadTooLarge
from .service import WEBPUSH_KEY
from .store import Subscription, SubscriptionsFull
from .subscriptions import parse_subscription
from .transport import ALL_SUBSCRIPTIONS, message_bytes

MAX_CHANNELS = 32
TARGETS = ("id", "group", "channel", "all")
MESSAGE_TEXT_FIELDS = ("title", "body", "icon", "url", "tag")
MAX_BODY_BYTES = 16 * 1024
"""A subscription is under 2 KB and a notification's message at most 3,993 bytes."""


async def json_object(request: web.Request) -> dict[str, Any]:
    raw = await read_body(request, MAX_BODY_BYTES, body_too_large)
    try:
        body = loads(raw)
    except NumberOutOfRange as error:
        raise NUMBER_OUT_OF_RANGE(f"{error.msg}.") from None
    except (JSONDecodeError, UnicodeDecodeError):
        raise WEBPUSH_BODY_NOT_JSON("The body must be a JSON object.") from None
    if not isinstance(body, dict):
        raise WEBPUSH_BODY_NOT_JSON("The body must be a JSON object.")
    return body


def name_value(value: Any) -> str | None:
    """An id or group as text: a string, or a whole number (solidwebpush's groups were ints)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON does not tell 13 from 13.0
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value)


def optional_name(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    text = name_value(value)
    if text is None:
        raise INVALID_SUBSCRIPTION(f"'{key}' must be a string.")
    return validate_code(text, INVALID_SUBSCRIPTION)

async def public_key(request: web.Request) -> web.Response:
    """``{"publicKey": "<applicationServerKey>"}``."""
    return web.json_response({"publicKey": request.app[WEBPUSH_KEY].public_key})

async def subscribe(request: web.Request) -> web.Response:
    """Store ``PushSubscription.toJSON()`` (top level or under ``subscription``) with id/group/channels.

    ``replaces`` names the endpoint of a subscription the browser replaced
    (``pushsubscriptionchange``): the new one inherits its id, group and
    channels, and the old one is forgotten.
    """
    body = await json_object(request)
    webpush = request.app[WEBPUSH_KEY]
    parsed = parse_subscription(body.get("subscription", body), webpush.policy)
    channels_value = body.get("channels", [])
    if not isinstance(channels_value, list) or len(channels_value) > MAX_CHANNELS or not all(
            isinstance(c, str) for c in channels_value):
        raise INVALID_SUBSCRIPTION(f"'channels' must be a list of at most {MAX_CHANNELS} strings.")
    channels = tuple(dict.fromkeys(channels_value))
    for channel in channels:
        validate_channel(channel, INVALID_SUBSCRIPTION)
        for part in channel.split("::"):
            validate_code(part, INVALID_SUBSCRIPTION)
    subscription = Subscription(parsed.endpoint, parsed.p256dh, parsed.auth,
                                optional_name(body, "id"), optional_name(body, "group"), channels)
    replaces = body.get("replaces")
    old = None
    if isinstance(replaces, str) and replaces != parsed.endpoint:
        # pushsubscriptionchange: the browser's new subscription keeps what the old one had
        old = await webpush.store.get(replaces)
        if old is not None:
            previous = old.subscription
            subscription = Subscription(
                parsed.endpoint, parsed.p256dh, parsed.auth, subscription.id or previous.id,
                subscription.group or previous.group, subscription.channels or previous.channels)
    secret = body.get("secret") if isinstance(body.get("secret"), str) else None
    access = request.app[ACCESS_KEY]
    for channel in subscription.attached_channels:
        access.check_listen(channel, secret=secret)
    try:
        is_new = await webpush.store.upsert(
            subscription, replaces=old.subscription.endpoint if old is not None else None)
    except SubscriptionsFull as full:
        raise SUBSCRIPTIONS_FULL(str(full)) from None
    return web.json_response({"subscribed": True, "new": is_new,
                              "channels": list(subscription.attached_channels)},
                             status=201 if is_new else 200)

async def unsubscribe(request: web.Request) -> web.Response:
    """Forget the subscription whose ``endpoint`` is in the JSON body or the query string."""
    endpoint = request.query.get("endpoint")
    if endpoint is None and request.can_read_body:
        body = await json_object(request)
        nested = body.get("subscription")
        endpoint = body.get("endpoint") or (nested.get("endpoint") if isinstance(nested, dict)
                                            else None)
    if not isinstance(endpoint, str) or not endpoint:
        raise INVALID_SUBSCRIPTION('Send {"endpoint": "<the subscription endpoint>"}.')
    removed = await request.app[WEBPUSH_KEY].store.remove_endpoint(endpoint)
    if not removed:
        raise SUBSCRIPTION_NOT_FOUND("No subscription with this endpoint is stored.")
    return web.json_response({"removed": removed})

def notify_channel(body: dict[str, Any]) -> str:
    given = [key for key in TARGETS if key in body]
    if len(given) != 1:
        raise INVALID_NOTIFICATION(
            'Name exactly one target: {"id": ...}, {"group": ...}, {"channel": ...} or {"all": true}.')
    target = given[0]
    if target == "all":
        if body["all"] is not True:
            raise INVALID_NOTIFICATION('"all" must be true.')
        return ALL_SUBSCRIPTIONS
    value = name_value(body[target])
    if value is None:
        raise INVALID_NOTIFICATION(f"'{target}' must be a string.")
    for part in value.split("::"):
        validate_code(part, INVALID_NOTIFICATION)
    return value

def check_message(message: Any) -> Any:
    if isinstance(message, str):
        return message
    if isinstance(message, dict):
        for key in MESSAGE_TEXT_FIELDS:
            if key in message and not isinstance(message[key], str):
                raise INVALID_NOTIFICATION(f"message.{key} must be a string.")
        return message
    raise INVALID_NOTIFICATION(
        "'message' must be a string or an object {title, body, icon, url, tag, data}.")

async def notify(request: web.Request) -> web.Response:
    """Publish a message to a target's push subscribers; answer sent/removed/failed/retried."""
    require_token(request, request.app[SETTINGS_KEY].publish_token, "publish")
    body = await json_object(request)
    channel = notify_channel(body)
    wait = body.get("wait", True)
    if not isinstance(wait, bool):
        raise INVALID_NOTIFICATION('"wait" is true (answer once sent) or false (answer at once).')
    message = check_message(body.get("message"))
    webpush = request.app[WEBPUSH_KEY]
    try:
        ttl = body.get("ttl")
        if isinstance(ttl, float) and ttl.is_integer():
            ttl = int(ttl)  # JSON does not tell 60 from 60.0
        options = make_options(ttl, body.get("urgency"), body.get("topic"))
        webpush.sender.check_size(message_bytes(message))
    except PayloadTooLarge as error:
        raise WEBPUSH_PAYLOAD_TOO_LARGE(str(error)) from None
    except ValueError as error:
        raise INVALID_NOTIFICATION(str(error)) from None
    report = await request.app[HUB_KEY].publish(channel, NOTIFICATION_EVENT, message, push=options,
                                                way="webpush")
    queued = report.listeners.get(webpush.transport.name, 0)
    answer: dict[str, Any] = {"id": report.event.id, "queued": queued,
                              "listeners": report.total - queued}
    if not wait:
        return web.json_response(answer, status=202)
    answer.update((await webpush.transport.outcome(report.event.id)).to_dict())
    return web.json_response(answer)

def add_routes(app: web.Application) -> None:
    app.router.add_get("/webpush/public-key", public_key, name="webpush-public-key")
    app.router.add_post("/webpush/subscriptions", subscribe, name="webpush-subscribe")
    app.router.add_delete("/webpush/subscriptions", unsubscribe, name="webpush-unsubscribe")
    app.router.add_post("/webpush/notify", notify, name="webpush-notify")
