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
    """The key from the header, else the query, else the body; each one given must be valid."""
    header, in_query = request.headers.get("Idempotency-Key"), request.query.get("idempotency_key")
    if header is None and in_query is None and body_value is None:
        return None  # most publishes
    given = [key for key in (header, in_query, body_value) if key is not None]
    for key in given:
        checked_idempotency_key(key)
    return given[0] if given else None


def checked_idempotency_key(key: Any) -> str:
    """``key`` if it can be an idempotency key (every way in accepts the same), else 400."""
    if not isinstance(key, str) or not 0 < len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH:
        raise INVALID_PARAMETER(f"An idempotency key is a string of 1 to "
                                f"{IDEMPOTENCY_KEY_MAX_LENGTH} characters.")
    return key


def wait_ms(request: web.Request, body_value: Any = None, *, strict: bool = True) -> int | None:
    """``wait=<ms>``: how long to wait for receipts, 0 to MAX_WAIT_MS (the query wins).

    Every value given (query and body) must be valid. ``strict=False`` (GET
    triggers) ignores a value that is not one: there every query parameter is
    also event data, and an old bot may send ``wait=soon``.
    """
    in_query = request.query.get("wait")
    if in_query is None and body_value is None:
        return None  # most publishes
    given = [raw for raw in (in_query, body_value) if raw is not None]
    chosen = None
    for raw in given:
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)  # JSON does not tell 881 from 881.0
        valid = not isinstance(raw, bool) and (
            isinstance(raw, int) or (isinstance(raw, str) and raw.isascii() and raw.isdigit()))
        if valid and 0 <= int(raw) <= MAX_WAIT_MS:
            chosen = int(raw) if chosen is None else chosen
        elif strict:
            raise INVALID_PARAMETER(
                f"wait is a whole number of milliseconds from 0 to {MAX_WAIT_MS}.")
    return chosen
