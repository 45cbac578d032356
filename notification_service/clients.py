"""Who sent a request: the one place that decides a client's address.

Rate limits, connection caps and logs all ask :func:`client_address`, so a
deployment behind a reverse proxy changes the answer here and nowhere else
(``--trust-proxy`` will read ``X-Forwarded-For`` in this function). This module
never trusts a header it was not told to trust.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

IPV6_PREFIX = 64
"""An IPv6 client usually holds a whole /64: limits count the prefix, not each address."""


def client_address(request: web.Request) -> str:
    """The address of the client that sent ``request`` ("" when the socket has none)."""
    return request.remote or ""


def socket_client_address(environ: dict[str, Any]) -> str:
    """The same for a socket.io connection (python-engineio's REMOTE_ADDR is always 127.0.0.1)."""
    return client_address(environ["aiohttp.request"])


def limit_key(address: str) -> str:
    """What limits count: the address itself, or its /64 for IPv6 (one host, many addresses)."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, IPV6_PREFIX), strict=False))
    return str(parsed)


def is_loopback(address: str) -> bool:
    """True for this machine's own addresses (127.0.0.0/8, ::1, and ::ffff:127.x.y.z)."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return parsed.is_loopback
