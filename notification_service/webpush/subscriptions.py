"""Reading a browser's ``PushSubscription.toJSON()`` into a checked :class:`Subscription`.

Checked once, at the door, strictly: the endpoint against the allow-list
(SSRF guard, at most 1,024 characters), ``p256dh`` as exactly 65 bytes
forming an uncompressed P-256 point and ``auth`` as exactly 16 bytes (RFC 8291
section 3), both as base64url of exactly that length and nothing else, so a
bad subscription is refused with a clear error instead of failing at every
send, and nothing stored is larger than it has to be.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import orjson

from .crypto import AUTH_SECRET_BYTES, PUBLIC_KEY_BYTES, b64url_decode, b64url_encode
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
    public = _key_bytes(p256dh, "p256dh", PUBLIC_KEY_BYTES)
    secret = _key_bytes(auth, "auth", AUTH_SECRET_BYTES)
    if public[0] != 4:
        raise INVALID_SUBSCRIPTION("keys.p256dh must be an uncompressed P-256 point "
                                   "(65 bytes starting with 0x04).")
    from cryptography.hazmat.primitives.asymmetric import ec  # OpenSSL: on the first subscription
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    except ValueError:
        raise INVALID_SUBSCRIPTION("keys.p256dh is not a point on the P-256 curve.") from None
    return Subscription(endpoint, b64url_encode(public), b64url_encode(secret))


def _base64_length(size: int) -> int:
    return (size * 4 + 2) // 3


_BASE64 = re.compile(r"[A-Za-z0-9_+/-]+={0,2}")


def _key_bytes(value: Any, name: str, size: int) -> bytes:
    """``value`` as exactly ``size`` bytes of (URL-safe or standard) base64, padded or not."""
    length = _base64_length(size)
    if (not isinstance(value, str) or not _BASE64.fullmatch(value)
            or len(value.rstrip("=")) != length):
        raise INVALID_SUBSCRIPTION(
            f"keys.{name} must be {size} bytes as URL-safe base64 ({length} characters, as "
            f"PushSubscription.toJSON() gives it).")
    decoded = b64url_decode(value)
    if len(decoded) != size:
        raise INVALID_SUBSCRIPTION(f"keys.{name} must be {size} bytes (got {len(decoded)}).")
    return decoded
