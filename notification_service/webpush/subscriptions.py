"""Reading a browser's ``PushSubscription.toJSON()`` into a checked :class:`Subscription`.

Checked once, at the door: the endpoint against the allow-list (SSRF guard),
``p256dh`` as a real P-256 point and ``auth`` as 16 bytes, so a bad
subscription is refused with a clear error instead of failing at every send.
"""

from __future__ import annotations

import binascii
from typing import Any, Mapping

import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from .crypto import AUTH_SECRET_BYTES, PUBLIC_KEY_BYTES, b64url_decode
from .endpoints import EndpointPolicy, EndpointRefused
from ..errors import ENDPOINT_NOT_ALLOWED, INVALID_SUBSCRIPTION
from .store import Subscription

EXAMPLE = ('{"endpoint": "https://fcm.googleapis.com/fcm/send/...", '
           '"keys": {"p256dh": "B...", "auth": "..."}}')


def parse_subscription(value: str | bytes | Mapping[str, Any], policy: EndpointPolicy) -> Subscription:
    """The endpoint and keys of ``value``; raises ApiError 400 (shape) or 403 (endpoint)."""
    if isinstance(value, (str, bytes)):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise INVALID_SUBSCRIPTION(f"The subscription is not JSON; send {EXAMPLE}.") from None
    if not isinstance(value, Mapping):
        raise INVALID_SUBSCRIPTION(f"The subscription must be an object like {EXAMPLE}.")
    endpoint = value.get("endpoint")
    keys = value.get("keys")
    if not isinstance(endpoint, str) or not isinstance(keys, Mapping):
        raise INVALID_SUBSCRIPTION(
            f"The subscription needs 'endpoint' and 'keys' (PushSubscription.toJSON()): {EXAMPLE}.")
    try:
        policy.check(endpoint)
    except EndpointRefused as refused:
        raise ENDPOINT_NOT_ALLOWED(str(refused)) from None
    p256dh, auth = keys.get("p256dh"), keys.get("auth")
    if not isinstance(p256dh, str) or not isinstance(auth, str):
        raise INVALID_SUBSCRIPTION("keys.p256dh and keys.auth must be URL-safe base64 strings.")
    try:
        public = b64url_decode(p256dh)
        secret = b64url_decode(auth)
    except (binascii.Error, ValueError):
        raise INVALID_SUBSCRIPTION("keys.p256dh and keys.auth must be URL-safe base64.") from None
    if len(public) != PUBLIC_KEY_BYTES or len(secret) != AUTH_SECRET_BYTES:
        raise INVALID_SUBSCRIPTION(
            f"keys.p256dh must be {PUBLIC_KEY_BYTES} bytes and keys.auth {AUTH_SECRET_BYTES} bytes "
            f"(got {len(public)} and {len(secret)}).")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    except ValueError:
        raise INVALID_SUBSCRIPTION("keys.p256dh is not a point on the P-256 curve.") from None
    return Subscription(endpoint, p256dh.rstrip("="), auth.rstrip("="))
