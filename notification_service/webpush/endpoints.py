"""Which URLs the server may POST pushes to: the SSRF guard for subscription endpoints.

A subscription endpoint is a URL chosen by whoever subscribes, and the server
will POST to it: without this check a subscription could make the server hit
internal hosts. Only https endpoints on an allow-list of push services are
accepted (plain http only when explicitly allowed, for local testing), on
port 443, with no user name, no IPv6 zone id and no IP address as host unless
an entry of ``--webpush-allow`` names that exact address and port. The check
runs at subscribe time and again before every send. This module never
resolves names or opens sockets.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Iterable
from urllib.parse import urlsplit

DEFAULT_PUSH_SERVICES: tuple[str, ...] = (
    # Google (Chrome, Edge on Android, Opera, Samsung Internet)
    "fcm.googleapis.com",
    "android.googleapis.com",
    # Mozilla (Firefox)
    "updates.push.services.mozilla.com",
    ".push.services.mozilla.com",
    # Apple (Safari 16+ on macOS and iOS)
    "web.push.apple.com",
    ".push.apple.com",
    # Microsoft (Edge on Windows: wns2-*.notify.windows.com)
    ".notify.windows.com",
)
"""Hosts of the browsers' push services. A leading dot matches any subdomain."""
MAX_ENDPOINT_LENGTH = 1024
"""Real endpoints are 150-400 characters (FCM, Mozilla, Apple, WNS)."""
DEFAULT_PORTS = {"https": 443, "http": 80}
ANY_PORT = "*"
_FORBIDDEN_CHARACTERS = re.compile(r"[\x00-\x20\x7f]")
_HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")


class EndpointRefused(ValueError):
    """The endpoint is not one we may POST to; the message says why and what to change."""


@dataclass(frozen=True)
class HostEntry:
    """One allow-list entry: ``host``, ``.suffix`` (any subdomain), an exact IP address,
    each optionally with ``:port`` or ``:*``; without a port only 443 (80 for http)."""

    host: str
    port: int | str | None = None

    @classmethod
    def parse(cls, entry: str) -> "HostEntry":
        entry = entry.strip().lower()
        host, port = entry, None
        if entry.startswith("["):  # [v6]:port
            inside, _, rest = entry[1:].partition("]")
            host, port = inside, rest.removeprefix(":") or None
        elif entry.count(":") == 1:
            host, port = entry.split(":")
        host = host.rstrip(".")
        if host.startswith("*."):
            host = host[1:]
        if port is None or port == ANY_PORT:
            return cls(host, port)
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{entry!r}: the port must be a number from 1 to 65535, or *")
        return cls(host, int(port))

    def matches(self, host: str) -> bool:
        if self.host.startswith("."):
            return not _is_ip(host) and host.endswith(self.host)
        return host == self.host

    def allows_port(self, port: int, scheme: str) -> bool:
        if self.port is None:
            return port == DEFAULT_PORTS[scheme]
        return self.port == ANY_PORT or self.port == port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class EndpointPolicy:
    """The allow-list.

    :param extra_hosts: entries added with ``--webpush-allow``: ``host``,
        ``.suffix`` for subdomains, an IP address (only ever matched exactly),
        each optionally ``:port`` or ``:*`` (any port). Without a port only the
        scheme's default port is accepted (443; 80 for http).
    :param allow_http: accept ``http://`` endpoints on allowed hosts (local testing only).
    """

    extra_hosts: tuple[str, ...] = ()
    allow_http: bool = False
    entries: tuple[HostEntry, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(
            HostEntry.parse(e) for e in (*DEFAULT_PUSH_SERVICES, *self.extra_hosts)))

    @classmethod
    def from_settings(cls, allow: Iterable[str], allow_http: bool) -> "EndpointPolicy":
        return cls(tuple(allow), allow_http)

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(entry.matches(host) for entry in self.entries)

    def check(self, endpoint: str) -> str:
        """Return ``endpoint`` if the server may POST to it, else raise :class:`EndpointRefused`."""
        if not isinstance(endpoint, str) or not endpoint:
            raise EndpointRefused("The subscription has no endpoint URL.")
        if len(endpoint) > MAX_ENDPOINT_LENGTH:
            raise EndpointRefused(f"The endpoint is longer than {MAX_ENDPOINT_LENGTH} characters.")
        if not endpoint.isascii() or _FORBIDDEN_CHARACTERS.search(endpoint):
            raise EndpointRefused("The endpoint must be a plain ASCII URL without spaces.")
        try:
            parts = urlsplit(endpoint)
            port = parts.port
        except ValueError as error:
            raise EndpointRefused(f"The endpoint is not a valid URL: {error}.") from error
        if parts.scheme == "http":
            if not self.allow_http:
                raise EndpointRefused(
                    "Push endpoints must use https; plain http is accepted only when the "
                    "server runs with --webpush-allow-http (local testing).")
        elif parts.scheme != "https":
            raise EndpointRefused(f"Push endpoints must use https, not {parts.scheme or 'nothing'}.")
        if "@" in parts.netloc:
            raise EndpointRefused("The endpoint must not carry a user name or password.")
        if parts.fragment:
            raise EndpointRefused("The endpoint must not have a #fragment.")
        host = (parts.hostname or "").rstrip(".")
        if "%" in host:
            raise EndpointRefused("The endpoint's host must not carry an IPv6 zone id (%).")
        if not host or not (_is_ip(host) or _HOST_NAME.fullmatch(host)):
            raise EndpointRefused(f"The endpoint has no valid host name ({host or 'none'}).")
        matching = [entry for entry in self.entries if entry.matches(host)]
        if not matching:
            literal = " (IP addresses are accepted only when named exactly)" if _is_ip(host) else ""
            raise EndpointRefused(
                f"{host} is not a known push service (Google, Mozilla, Apple, Microsoft)"
                f"{literal}. Start the server with --webpush-allow {host} to accept it.")
        port = port if port is not None else DEFAULT_PORTS[parts.scheme]
        if not any(entry.allows_port(port, parts.scheme) for entry in matching):
            raise EndpointRefused(
                f"Port {port} of {host} is not allowed (only {DEFAULT_PORTS[parts.scheme]}): "
                f"start the server with --webpush-allow {host}:{port} to accept it.")
        return endpoint


def origin(endpoint: str) -> str:
    """``scheme://host[:port]``: the VAPID ``aud`` and the key of the header cache."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"
