"""Limits of the HTTP server itself, below every handler: slow clients, many connections, bad bytes.

- Headers must arrive within ``--header-timeout`` seconds of the connection
  opening (or of the previous answer on a kept-alive connection): aiohttp's
  keep-alive timer closes a connection that is waiting for a request, and a
  half-sent request is one (slowloris held them 60-90 s before).
- A body must arrive within ``--body-timeout`` seconds of its headers, or the
  handler's read fails with 408 and the connection is closed.
- At most ``--max-connections-per-address`` open connections per client
  address; more are closed as soon as they open (1,100 half-open requests
  from one address used to exhaust 1,024 file descriptors).
- aiohttp logs every request it cannot parse at ERROR with a traceback and the
  bytes it choked on (tokens in a query string, an ``Authorization`` header
  ending in ``\\r``): :class:`ServerLog` replaces that with one WARNING line
  that names the reason and the header, never a value or a query string, a few
  lines a second at most.

This module never reads a body itself and never answers a request.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .errors import AnswerAlreadyStarted, BodyTimedOut, Handler
from .logs import Throttle
from .ratelimit import limit_key

log = logging.getLogger(__name__)

_SNIPPET = re.compile(r"""b(?:ytearray\()?['"](.*)""", re.S)
_QUOTED = re.compile(r"""\s*(?:b?['"]|bytearray\(|\{)""")
_HEADER_NAME = re.compile(r"([A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}):")
_REQUEST_START = re.compile(r"([A-Z]{1,10}) (/[^/?\s]*)")
KNOWN_PREFIXES = frozenset({
    "/notify", "/emit", "/broadcast", "/channels", "/sse", "/connections", "/webpush", "/admin",
    "/sources", "/static", "/socket.io", "/health", "/heartbeat", "/openapi.json",
    "/favicon.ico", "/"})
"""First path segments shown in the log; any other one might be a code, and is not."""


def describe_malformed(error: HttpProcessingError) -> str:
    """aiohttp's reason for refusing a request, without the bytes it quotes.

    The message quotes the request line or header it stopped at. Kept: the
    reason, the method and first path segment if it is one of our routes, and
    a header's name when the reason is about a header. Never a value, a query
    string or anything else the client sent.
    """
    text = str(error.message or "").strip()
    first_line = text.split("\n", 1)[0]
    reason = _QUOTED.split(first_line, 1)[0].strip().rstrip(":").strip()
    reason = reason or type(error).__name__
    found = _SNIPPET.search(text)
    snippet = found.group(1) if found else ""
    where = ""
    start = _REQUEST_START.match(snippet) or _REQUEST_START.match("GET " + snippet)
    if start:
        segment = start.group(2) + "..." if start.group(2) in KNOWN_PREFIXES else "/..."
        method = start.group(1) + " " if snippet.startswith(start.group(1)) else ""
        where = f" (request {method}{segment})"
    elif "header" in reason.lower():
        header = _HEADER_NAME.match(snippet)
        if header:
            where = f" (in header '{header.group(1)}')"
    return reason.replace("\r", "\\r")[:160] + where


class ServerLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The logger aiohttp's request handler writes to (``handler_args={"logger": ...}``).

    - a request aiohttp could not parse: one WARNING line without any of its bytes;
    - a handler that failed after its answer began (a WebSocket): already
      reported by the error middleware, nothing more;
    - a client that hung up: DEBUG;
    - anything else: ERROR with its traceback, as before.
    All but DEBUG share a :class:`~.logs.Throttle`: a few lines a second at most.
    """

    def __init__(self, logger: logging.Logger | None = None,
                 throttle: Throttle | None = None) -> None:
        super().__init__(logger or logging.getLogger("aiohttp.server"), {})
        self.throttle = throttle or Throttle()

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        error = exc_info if isinstance(exc_info, BaseException) else (
            sys.exc_info()[1] if exc_info else None)
        if level <= logging.DEBUG:
            self.logger.log(level, msg, *args, **kwargs)
        elif isinstance(error, HttpProcessingError):
            peer = args[0] if args else "?"
            self.throttle.log(self.logger, logging.WARNING, "malformed request from %s: %s",
                              peer, describe_malformed(error))
        elif isinstance(error, AnswerAlreadyStarted):
            return
        elif isinstance(error, (ConnectionError, asyncio.CancelledError)):
            self.logger.debug("client %s left: %r", args[0] if args else "?", error)
        elif self.throttle.allow()[0]:
            self.logger.log(level, msg, *args, **kwargs)


def handler_args(header_timeout: float) -> dict[str, Any]:
    """What every aiohttp request handler of the app is created with."""
    return {"keepalive_timeout": header_timeout, "logger": ServerLog()}


def body_pending(request: web.Request) -> bool:
    """Whether ``request`` has a body that has not fully arrived yet (most requests: no)."""
    return request.body_exists and not request.content.is_eof()


async def within_body_deadline(request: web.Request, handler: Handler,
                               timeout: float) -> web.StreamResponse:
    """Run ``handler``, failing its read of a body not fully arrived ``timeout`` s after the headers.

    The handler's read raises :class:`~.errors.BodyTimedOut` (answered 408 by
    :func:`~.errors.answer_for`) and the answer closes the connection. The
    front door calls it only when :func:`body_pending`.
    """
    content = request.content
    expired = False

    def expire() -> None:
        nonlocal expired
        if not content.is_eof():
            expired = True
            content.set_exception(BodyTimedOut(timeout))

    timer = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        response = await handler(request)
    finally:
        timer.cancel()
    if expired:
        response.force_close()
    return response


class ConnectionCap:
    """At most ``per_address`` open connections per client address (an IPv6 /64 counts once).

    Installed on the aiohttp ``Server`` of a runner (:meth:`install`): the cap
    has to act before any request is parsed, where no middleware runs.
    """

    def __init__(self, per_address: int, throttle: Throttle | None = None) -> None:
        self.per_address = per_address
        self.open: dict[str, int] = {}
        self._addresses: dict[object, str] = {}
        self.refused = 0
        self.throttle = throttle or Throttle()

    def install(self, server: web.Server) -> None:
        """Count ``server``'s connections (it tells its own bookkeeping first)."""
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            self.opened(handler, transport)

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            lost(handler, exc)
            self.closed(handler)

        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]

    def opened(self, handler: object, transport: asyncio.Transport) -> None:
        peer = transport.get_extra_info("peername")
        if not isinstance(peer, tuple) or not peer:
            return  # a Unix socket: no address to count
        address = limit_key(str(peer[0]))
        count = self.open.get(address, 0) + 1
        self.open[address] = count
        self._addresses[handler] = address
        if count > self.per_address:
            self.refused += 1
            self.throttle.log(log, logging.WARNING,
                              "closed a connection from %s: it already has %d open "
                              "(--max-connections-per-address)", address, self.per_address)
            transport.abort()

    def closed(self, handler: object) -> None:
        address = self._addresses.pop(handler, None)
        if address is None:
            return
        count = self.open.get(address, 1) - 1
        if count > 0:
            self.open[address] = count
        else:
            self.open.pop(address, None)


def install_connection_cap(runner: web.AppRunner, settings: Any) -> ConnectionCap | None:
    """Cap the set-up ``runner``'s connections per address (``--max-connections-per-address``).

    Not behind a reverse proxy (``--trust-proxy``): there every connection comes
    from the proxy, which caps its clients itself (nginx ``limit_conn``).
    """
    if settings.trust_proxy or runner.server is None:
        return None
    cap = ConnectionCap(settings.max_connections_per_address)
    cap.install(runner.server)
    return cap
