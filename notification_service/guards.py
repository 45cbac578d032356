"""Request guards: what every request must pass before a handler sees it.

In this order, for every route:

1. ``Host`` (DNS rebinding): a page on ``evil.example`` whose name resolves to
   127.0.0.1 reaches this server with ``Host: evil.example`` and would be
   same-origin with it, so it could read any channel it can name. Only the
   bound address, an IP literal (never a rebinding), ``localhost``,
   ``*.localhost`` and names given with ``--allowed-host`` are answered;
   anything else is 421.
2. Other sites' pages: a request that changes something (any method but
   GET/HEAD/OPTIONS, and GET/HEAD triggers, which publish) carrying an
   ``Origin`` of another site, or ``Sec-Fetch-Site: cross-site``/``same-site``
   from an origin not allowed with ``--cors-origin``, is 403. An ``<img>`` or
   a form on another site cannot publish. Bots, curl and OBS send neither
   header and pass.
3. Rate limits per client address (see :mod:`.ratelimit`) on publishing,
   look-ups and Web Push subscribing.
4. JSON routes (every route with a body but media uploads): a body must come
   as ``Content-Type: application/json`` (415), so no browser can send it
   cross-site without a CORS preflight.

``/socket.io/`` passes 2, 3 and 4 (python-engineio checks origins itself and
its bodies are its own protocol; registrations count as look-ups where they
happen), but not 1. This module never reads a body and
never decides who may publish (tokens do).
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Iterable, NamedTuple

from aiohttp import web
from yarl import URL

from .errors import CROSS_SITE_REFUSED, HOST_NOT_ALLOWED, NOT_JSON_CONTENT_TYPE
from .proxies import client_address
from .ratelimit import RateLimits

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLISHING_ROUTES = frozenset({"notify", "emit", "broadcast", "webpush-notify"})
LOOKUP_ROUTES = frozenset({"channel-events", "sse"})
SUBSCRIBE_ROUTES = frozenset({"webpush-subscribe"})
OTHER_BODY_ROUTES = frozenset({"alert-media-upload"})
"""Routes whose body is not JSON (an uploaded image or sound): they check its type themselves."""
LOCAL_NAMES = ("localhost", ".localhost")
CROSS_SITE_FETCHES = frozenset({"cross-site", "same-site"})
JSON_EXAMPLE = "curl -H 'Content-Type: application/json' -d '{\"text\": \"hi\"}' URL"


class RouteFacts(NamedTuple):
    """What the front door asks of the route a request matched, decided once per route.

    A matched route lasts as long as its app, so the front door keeps these per
    route object (:func:`route_facts`) instead of reading aiohttp's properties on
    every request. A 404 or 405 has a route of its own per request: its facts
    are decided again each time and never kept.
    """

    name: str | None
    error: bool  # no handler: aiohttp answers 404 or 405
    not_found: bool  # the error is a 404 (a path that matches nothing)
    socketio: bool  # python-engineio's route: it checks its own origins and bodies


def route_facts(request: web.Request, socketio_path: str,
                known: dict[object, RouteFacts]) -> RouteFacts:
    """The :class:`RouteFacts` of ``request``'s route, kept in ``known`` for the next request."""
    match_info = request.match_info
    route = match_info.route
    facts = known.get(route)
    if facts is None:
        exception = match_info.http_exception
        if exception is None:
            facts = known[route] = RouteFacts(
                route.name, False, False, route.resource is not None
                and route.resource.canonical.startswith(socketio_path))
        else:
            facts = RouteFacts(None, True, isinstance(exception, web.HTTPNotFound),
                               request.path.startswith(socketio_path))
    return facts


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class RequestGuards:
    """The policy of one server, from its settings.

    :param bound_host: the ``--host`` the server listens on.
    :param allowed_hosts: ``--allowed-host`` names (``.example.com`` for subdomains,
        ``*`` to answer any Host).
    :param cors_origins: ``--cors-origin`` origins whose pages may publish (``*`` for any).
    :param limits: the rate limits per client address (also ``app[RATE_LIMITS_KEY]``).
    :param trust_proxy: ``--trust-proxy`` (see :func:`.proxies.client_address`).
    """

    def __init__(self, bound_host: str, allowed_hosts: Iterable[str],
                 cors_origins: Iterable[str], limits: RateLimits, trust_proxy: int = 0) -> None:
        self.limits = limits
        self.trust_proxy = trust_proxy
        entries = [entry.strip().lower().rstrip(".") for entry in allowed_hosts]
        self.any_host = "*" in entries
        names = [entry.removeprefix("*") for entry in entries if entry != "*"]
        bound = bound_host.strip("[]").lower()
        self.hosts = frozenset([bound, *(name for name in names if not name.startswith("."))])
        self.suffixes = tuple(name for name in (*names, *LOCAL_NAMES) if name.startswith("."))
        origins = [origin.rstrip("/").lower() for origin in cors_origins]
        self.any_origin = "*" in origins
        self.origins = frozenset(origins)
        # The same few Host headers arrive again and again: decide each once.
        self._host_header_allowed = functools.lru_cache(maxsize=1024)(
            lambda header: self.host_allowed(self._host_of(header)))

    @staticmethod
    @functools.lru_cache(maxsize=1024)
    def _host_of(header: str) -> str:
        """The name in a Host header (no port, no brackets), lower case."""
        try:
            return (URL(f"http://{header}").raw_host or "").lower()
        except ValueError:
            return header.lower()

    # -- 1. Host ---------------------------------------------------------
    def host_allowed(self, host: str) -> bool:
        """``host`` is the Host header's name (no port), lower case."""
        if self.any_host or not host:
            return True
        host = host.rstrip(".")
        return (host in self.hosts or host == "localhost" or host.endswith(self.suffixes)
                or _is_ip_literal(host))

    def check_host(self, request: web.Request) -> None:
        header = request.headers.get("Host")
        if header is None:
            return  # HTTP/1.0 without Host: nothing a browser sends
        if not self._host_header_allowed(header):
            host = self._host_of(header)
            raise HOST_NOT_ALLOWED(
                f"This server does not answer for the host '{host}' (a web page may be "
                f"trying to reach it through its own name). If you use this name, start "
                f"the server with --allowed-host {host}.")

    # -- 2. other sites --------------------------------------------------
    def origin_allowed(self, origin: str, request: web.Request) -> bool:
        origin = origin.rstrip("/").lower()
        if self.any_origin or origin in self.origins:
            return True
        own = f"{request.scheme}://{request.headers.get('Host', request.host)}".lower()
        return origin == own

    def check_site(self, request: web.Request) -> None:
        origin = request.headers.get("Origin")
        if origin is not None:
            if self.origin_allowed(origin, request):
                return
        elif request.headers.get("Sec-Fetch-Site", "").lower() not in CROSS_SITE_FETCHES \
                or self.any_origin:
            return
        shown = origin or "another site"
        raise CROSS_SITE_REFUSED(
            f"A page from {shown} may not publish here. If that page is yours, start the "
            f"server with --cors-origin {origin or '<its origin>'}; bots and scripts that "
            f"send no Origin header are not affected.")

    # -- all of them, in order -------------------------------------------
    def check(self, request: web.Request, route: RouteFacts, page_trigger: bool) -> None:
        """Raise the ApiError of the first guard ``request`` fails (see the module docstring).

        ``route``: the facts of its route (:func:`route_facts`). ``page_trigger``:
        the request is a page URL that triggers (it publishes). Not for
        ``/socket.io/`` requests: those pass :meth:`check_host` only.
        """
        self.check_host(request)
        name = route.name
        publishing = page_trigger or name in PUBLISHING_ROUTES
        method = request.method
        if (route.error and not publishing) or method == "OPTIONS":
            return  # a 404/405 is answered as such
        if publishing or method not in SAFE_METHODS:
            self.check_site(request)
        limits = self.limits
        if publishing:
            limits.publishing(client_address(request, self.trust_proxy))
        elif name in LOOKUP_ROUTES:
            limits.looking_up(client_address(request, self.trust_proxy))
        elif name in SUBSCRIBE_ROUTES and method == "POST":
            limits.subscribing(client_address(request, self.trust_proxy))
        if method not in SAFE_METHODS and name not in OTHER_BODY_ROUTES:
            self.check_json_body(request)

    # -- 4. JSON bodies --------------------------------------------------
    @staticmethod
    def check_json_body(request: web.Request) -> None:
        if not request.body_exists or request.content_length == 0:
            return
        content_type = request.content_type.lower()
        if content_type == "application/json" or (
                content_type.startswith("application/") and content_type.endswith("+json")):
            return
        raise NOT_JSON_CONTENT_TYPE(
            f"{request.method} {request.path} takes JSON: send it with "
            f"'Content-Type: application/json' (got "
            f"{request.headers.get('Content-Type') or 'no Content-Type'}). With curl: "
            f"{JSON_EXAMPLE}.")


def secure(response: web.StreamResponse) -> None:
    """No answer of ours is ever sniffed into another type (called on every answer)."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")

