"""Who the client is, behind reverse proxies (``--trust-proxy HOPS``).

Behind nginx or Caddy every request comes from the proxy's address; the
client's own is in ``X-Forwarded-For`` (or RFC 7239 ``Forwarded``), where
each proxy appends the address it saw. Those headers are anyone's to write,
so they are read only when the operator says how many proxies of theirs
stand in front (``--trust-proxy``), and then only the entry that many hops
from the right: everything left of it came from the client and may be forged.

This module must never trust a forwarding header by default, and never
return anything but an IP address (a malformed entry falls back to the peer).
"""

from __future__ import annotations

import ipaddress

from aiohttp import web

from .config import SETTINGS_KEY


def client_address(request: web.Request, hops: int | None = None) -> str:
    """The client's IP address: the TCP peer, or with ``--trust-proxy`` the forwarded one.

    The one function connection listings and rate limits ask, so they always agree.
    ``hops``: the server's ``--trust-proxy``, when the caller has it at hand (the
    request guards, on every request); else it is read from the app's settings.
    """
    peer = request.remote or ""
    if hops is None:
        hops = request.app[SETTINGS_KEY].trust_proxy
    if hops <= 0:
        return peer
    chain = forwarded_chain(request)
    if not chain:
        return peer
    address = plain_address(chain[-hops] if len(chain) >= hops else chain[0])
    return address or peer


def forwarded_chain(request: web.Request) -> list[str]:
    """The addresses proxies recorded, nearest last: ``X-Forwarded-For``, else ``Forwarded``.

    ``X-Forwarded-For`` first because nginx, Caddy, HAProxy and Traefik all
    write it; a client's own ``Forwarded`` header then changes nothing.
    """
    chain = [entry.strip() for header in request.headers.getall("X-Forwarded-For", [])
             for entry in header.split(",") if entry.strip()]
    if chain:
        return chain
    return [element["for"] for element in request.forwarded if element.get("for")]


def plain_address(entry: str) -> str | None:
    """``198.51.100.7``, ``198.51.100.7:4711``, ``[2001:db8::1]:4711`` -> the address; else None."""
    text = entry.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has several colons
        text = text.partition(":")[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None  # "unknown", an obfuscated name (RFC 7239 "_hidden") or garbage
