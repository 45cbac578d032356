"""Which URLs the server may POST pushes to: the SSRF guard for subscription endpoints.

A subscription endpoint is a URL chosen by whoever subscribes, and the server
will POST to it: without this check a subscription could make the server hit
internal hosts. Only https endpoints on an allow-list of push services are
accepted (plain http only when explicitly allowed, for local testing). The
check runs at subscribe time and again before every send. This module never
resolves names or opens sockets.
"""

from __future__ import annotations

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
MAX_ENDPOINT_LENGTH = 2048
_FORBIDDEN_CHARACTERS = re.compile(r"[\x00-\x20\x7f]")


class EndpointRefused(ValueError):
    """The endpoint is not one we may POST to; the message says why and what to change."""


def normalise_host_entry(entry: str) -> str:
    """``*.example.com`` and ``.example.com`` both mean "any subdomain"; lower case."""
    entry = entry.strip().lower().rstrip(".")
    if entry.startswith("*."):
        entry = entry[1:]
    return entry


@dataclass(frozen=True)
class EndpointPolicy:
    """The allow-list.

    :param extra_hosts: hosts added with ``--webpush-allow`` (``.suffix`` for subdomains).
    :param allow_http: accept ``http://`` endpoints on allowed hosts (local testing only).
    """

    extra_hosts: tuple[str, ...] = ()
    allow_http: bool = False
    hosts: frozenset[str] = field(init=False)
    suffixes: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        entries = [normalise_host_entry(e) for e in (*DEFAULT_PUSH_SERVICES, *self.extra_hosts)]
        object.__setattr__(self, "hosts", frozenset(e for e in entries if not e.startswith(".")))
        object.__setattr__(self, "suffixes", tuple(e for e in entries if e.startswith(".")))

    @classmethod
    def from_settings(cls, allow: Iterable[str], allow_http: bool) -> "EndpointPolicy":
        return cls(tuple(allow), allow_http)

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.hosts or host.endswith(self.suffixes)

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
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise EndpointRefused("The endpoint must not carry a user name or password.")
        if parts.fragment:
            raise EndpointRefused("The endpoint must not have a #fragment.")
        host = parts.hostname or ""
        if not host or not self.host_allowed(host):
            raise EndpointRefused(
                f"{host or 'This host'} is not a known push service (Google, Mozilla, Apple, "
                f"Microsoft). Start the server with --webpush-allow {host or 'HOST'} to accept it.")
        del port  # parsed only to reject malformed ports above
        return endpoint


def origin(endpoint: str) -> str:
    """``scheme://host[:port]``: the VAPID ``aud`` and the key of the header cache."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"
