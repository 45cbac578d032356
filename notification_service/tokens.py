"""Shared-secret checks for publishers and admins, in constant time.

A token is read from ``Authorization: Bearer <token>`` or, for chat bots that
can only fire a URL, from the ``token`` query parameter. A token that is not
configured (None) means the check is off.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from .errors import FORBIDDEN, UNAUTHORIZED
from .ratelimit import check_token_failures, record_token_failure


def secrets_equal(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so a wrong guess never tells how close it was."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def presented_token(request: web.Request) -> str | None:
    """``Authorization: Bearer <token>``, else ``?token=`` (bots and EventSource can send
    no headers); an empty value is no token."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query.get("token") or None


def require_token(request: web.Request, expected: str | None, what: str) -> None:
    """Raise 401 (no token) or 403 (wrong token) unless ``expected`` is None or presented.

    A wrong token counts against the address's ``--token-failure-rate``: past
    it, every check from that address is 429 for a while, right token or not.
    """
    if expected is None:
        return
    check_token_failures(request)
    given = presented_token(request)
    if given is None:
        raise UNAUTHORIZED(f"This server requires the {what} token: send "
                           f"'Authorization: Bearer <token>' or add &token=<token> to the URL.")
    if not secrets_equal(given, expected):
        record_token_failure(request)
        raise FORBIDDEN(f"The {what} token is wrong.")
