"""Error kinds of the Web Push API (code range n = 20-39, see errors.py for the scheme).

Each says what to fix; the middleware in :mod:`notification_service.errors`
writes them as JSON. Nothing here raises by itself.
"""

from __future__ import annotations

from ..errors import ErrorKind

INVALID_SUBSCRIPTION = ErrorKind(400, 40020)
"""The subscription JSON is not what ``PushSubscription.toJSON()`` gives."""
INVALID_NOTIFICATION = ErrorKind(400, 40021)
"""The notify body names no target, several targets, or a bad ttl/urgency/topic."""
ENDPOINT_NOT_ALLOWED = ErrorKind(403, 40320)
"""The endpoint is not an allowed push service (SSRF guard)."""
SUBSCRIPTION_NOT_FOUND = ErrorKind(404, 40420)
"""DELETE of an endpoint that is not stored."""
PAYLOAD_TOO_LARGE = ErrorKind(413, 41320)
"""The message is over the 3,993 bytes a push service must accept once encrypted."""
BODY_NOT_JSON = ErrorKind(422, 42220)
"""The request body is not a JSON object."""
SUBSCRIPTIONS_FULL = ErrorKind(507, 50720)
"""The server already stores --webpush-max-subscriptions subscriptions."""
