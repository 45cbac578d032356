"""Publish options every way in accepts the same way: idempotency key and receipt wait.

``Idempotency-Key`` header (or ``idempotency_key`` in the query or JSON body)
makes a retried publish answer with the first report; ``wait=<ms>`` (query or
JSON body, at most 5000) waits for listeners' receipts.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..errors import INVALID_PARAMETER
from ..idempotency import IDEMPOTENCY_KEY_MAX_LENGTH
from ..receipts import MAX_WAIT_MS


def idempotency_key(request: web.Request, body_value: Any = None) -> str | None:
    key = request.headers.get("Idempotency-Key", request.query.get("idempotency_key", body_value))
    if key is None:
        return None
    if not isinstance(key, str) or not 0 < len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH:
        raise INVALID_PARAMETER(
            f"An idempotency key is a string of 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} characters.")
    return key


def wait_ms(request: web.Request, body_value: Any = None, *, strict: bool = True) -> int | None:
    """``wait=<ms>``: how long to wait for receipts, 0 to MAX_WAIT_MS.

    ``strict=False`` (GET triggers) ignores a value that is not one: there every
    query parameter is also event data, and an old bot may send ``wait=soon``.
    """
    raw = request.query.get("wait", body_value)
    if raw is None:
        return None
    valid = not isinstance(raw, bool) and (
        isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit()))
    if valid and 0 <= int(raw) <= MAX_WAIT_MS:
        return int(raw)
    if not strict:
        return None
    raise INVALID_PARAMETER(f"wait is a whole number of milliseconds from 0 to {MAX_WAIT_MS}.")
