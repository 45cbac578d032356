"""The one table of errors a client can cause, and the one place that writes them as responses.

Every kind is declared here (ntfy's ``errors.go`` is the model): HTTP status,
stable code, and what it means; the README's error table is made from this
list and checked by a test. Every handler raises an :class:`ApiError` (or lets
aiohttp raise its own HTTP errors); :func:`answer_for` turns it into JSON
``{"error", "code", "http"}``. Codes are stable: clients, bots and docs rely on
them, so a code is never reused for another meaning. This module must never
leak a traceback to a client.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Awaitable, Callable

from aiohttp import web

from .logs import Throttle

log = logging.getLogger(__name__)


class StartupError(Exception):
    """Starting failed for a reason the operator can fix; the message says which file or
    address, and what to do. The CLI prints it as one line and exits with code 2."""


class BodyTimedOut(TimeoutError):
    """A request body did not arrive in time (set on the body by http_limits; answered 408).

    A TimeoutError, so aiohttp's lingering read after the answer ends quietly."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"the body did not arrive within {timeout:g} s")
        self.timeout = timeout


class AnswerAlreadyStarted(Exception):
    """A handler failed after its answer began (a WebSocket after the upgrade).

    Nothing may be written any more: :func:`answer_for` reports it once and
    raises this, and aiohttp closes the connection (its logger, http_limits.ServerLog,
    stays silent about it)."""


class ApiError(Exception):
    """An error the client caused (4xx) or that we report honestly (5xx).

    ``headers`` go out with the answer (``Retry-After`` on a 429).
    """

    def __init__(self, http: int, code: int, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.http = http
        self.code = code
        self.message = message
        self.headers = headers or {}

    def to_dict(self) -> dict[str, object]:
        return {"error": self.message, "code": self.code, "http": self.http}


@dataclass(frozen=True)
class ErrorKind:
    """One row of the error table: call it with a message to get the exception to raise.

    ``meaning`` is the README's one-line description of the kind; the message
    given at raise time says what went wrong this time and how to fix it.
    """

    http: int
    code: int
    meaning: str

    def __call__(self, message: str, headers: dict[str, str] | None = None) -> ApiError:
        return ApiError(self.http, self.code, message, headers)


ERRORS: list[ErrorKind] = []
"""Every kind below, in the order of the README's table (``tests/test_tables.py``)."""


def _kind(http: int, code: int, meaning: str) -> ErrorKind:
    kind = ErrorKind(http, code, meaning)
    ERRORS.append(kind)
    return kind


# Codes are the HTTP status followed by two digits; the digits group the
# features: 01-09 requests and tokens, 20-39 Web Push, 40-59 publishing and
# channels, 60-69 JWT, SSE and connections, 70-79 the alert box.

# -- 400: the request line or query string is wrong -----------------------
MISSING_PARAMETER = _kind(400, 40001, "a required query parameter is missing")
INVALID_CODE = _kind(400, 40002, "the code is not valid (characters or length)")
INVALID_EVENT_NAME = _kind(400, 40003, "the event name is not valid (control characters, over "
                                       "128 characters, or a name socket.io reserves)")
INVALID_PARAMETER = _kind(400, 40004, "a query parameter has a bad value (`wait`, "
                                      "`idempotency_key`)")
BODY_INCOMPLETE = _kind(400, 40005, "the client hung up before the whole request body arrived")
INVALID_SUBSCRIPTION = _kind(400, 40020, "Web Push: the subscription is not "
                                         "`PushSubscription.toJSON()`, or a bad id/group/channels")
INVALID_NOTIFICATION = _kind(400, 40021, "Web Push notify: not exactly one target, no message, "
                                         "or a bad ttl/urgency/topic")
SSE_TOO_MANY_CHANNELS = _kind(400, 40060, "SSE: more than 32 channels on one stream")
SSE_INVALID_CHANNEL = _kind(400, 40061, "SSE: a `channel` parameter is not a valid channel name")
# -- 401: a token is missing or not one this server accepts ---------------
UNAUTHORIZED = _kind(401, 40101, "this server requires a token and none was sent")
TOKEN_MISSING = _kind(401, 40160, "JWT: no token (and nothing else to listen to)")
TOKEN_MALFORMED = _kind(401, 40161, "JWT: malformed token")
TOKEN_ALG_NONE = _kind(401, 40162, "JWT: `alg: none` is never accepted")
TOKEN_ALG_NOT_ALLOWED = _kind(401, 40163, "JWT: algorithm not accepted by this server")
TOKEN_BAD_SIGNATURE = _kind(401, 40164, "JWT: bad signature")
TOKEN_EXPIRED = _kind(401, 40165, "JWT: expired")
TOKEN_BAD_CLAIMS = _kind(401, 40166, "JWT: missing or invalid claims (`sub`, `iss`, `iat`, "
                                     "`exp`)")
# The server was started without any JWT key: no token can be accepted. A 401,
# not a 5xx: the server works, it just accepts no JWT (monitors alert on 5xx).
JWT_NOT_CONFIGURED = _kind(401, 40167, "JWT: this server has no JWT key configured")
# -- 403: known, but not allowed --------------------------------------------
FORBIDDEN = _kind(403, 40301, "the token is wrong")
LISTEN_REFUSED = _kind(403, 40302, "listening on this channel is refused (private space secret, "
                                   "JWT channel)")
ENDPOINT_NOT_ALLOWED = _kind(403, 40320, "Web Push: the endpoint is not an allowed push service")
EMIT_FORBIDDEN = _kind(403, 40340, "`POST /emit`: the secret is missing or wrong")
EMIT_DISABLED = _kind(403, 40341, "`POST /emit` is off: start with `--secret`")
ADMIN_DISABLED = _kind(403, 40342, "admin routes are off: start with `--admin-token`")
ORIGIN_REFUSED = _kind(403, 40343, "CORS preflight from an origin not in `--cors-origin`")
CROSS_SITE_REFUSED = _kind(403, 40344, "publishing from a page of another site (`Origin` or "
                                       "`Sec-Fetch-Site: cross-site`) not allowed with "
                                       "`--cors-origin`")
CONNECTIONS_FORBIDDEN = _kind(403, 40360, "connections of another application")
# -- 404/405: nothing there ---------------------------------------------------
NOT_FOUND = _kind(404, 40401, "nothing at this path")
SUBSCRIPTION_NOT_FOUND = _kind(404, 40420, "Web Push: no subscription with this endpoint")
ALERT_NOT_FOUND = _kind(404, 40470, "alert queue: no recent alert of this code has this id "
                                    "(`replay` and `skip` need one the queue still holds)")
METHOD_NOT_ALLOWED = _kind(405, 40501, "method not allowed on this path (the `Allow` header "
                                       "lists the right ones)")
# -- 408: too slow ------------------------------------------------------------
BODY_TIMEOUT = _kind(408, 40801, "the request body did not arrive within `--body-timeout` "
                                 "seconds")
# -- 413: too large -------------------------------------------------------------
WEBPUSH_PAYLOAD_TOO_LARGE = _kind(413, 41320, "Web Push: the message is over 3,993 bytes")
PAYLOAD_TOO_LARGE = _kind(413, 41340, "the event data is larger than `--max-payload-bytes`")
ALERT_DESIGNS_TOO_LARGE = _kind(413, 41370, "alert designs: the configuration is over 256 KiB")
MEDIA_TOO_LARGE = _kind(413, 41371, "alert media: the file is larger than "
                                    "`--alert-media-max-bytes`")
# -- 415: a body of a type this route does not take ---------------------------
NOT_JSON_CONTENT_TYPE = _kind(415, 41501, "a JSON route was sent a body without "
                                          "`Content-Type: application/json`")
MEDIA_TYPE_UNSUPPORTED = _kind(415, 41570, "alert media: not a PNG, JPEG, GIF, WebP, AVIF image, "
                                           "a WebM/MP4 video or an MP3/Ogg/WAV/M4A sound "
                                           "(checked by its first bytes)")
# -- 421: not this server ---------------------------------------------------------
HOST_NOT_ALLOWED = _kind(421, 42101, "the `Host` header names a host this server does not "
                                     "answer for (DNS rebinding guard; see `--allowed-host`)")
# -- 422: well-formed, but not something we can deliver ---------------------
WEBPUSH_BODY_NOT_JSON = _kind(422, 42220, "Web Push: the body is not a JSON object")
# A channel named in a JSON body or a URL path the client chose: the request was
# well-formed, the name is not one we can deliver to.
INVALID_CHANNEL = _kind(422, 42240, "the channel name is not valid")
INVALID_JSON = _kind(422, 42241, "the body is not JSON (the message says where parsing stopped)")
BAD_EVENT_NAME = _kind(422, 42242, "the event name in a JSON route is not valid")
INVALID_FIELD = _kind(422, 42243, "a field of the JSON body is missing or has the wrong type")
INVALID_SPACE_SECRET = _kind(422, 42244, "a space secret is not valid")
TOO_MANY_CHANNELS = _kind(422, 42245, "(acknowledgement) this connection listens on too many "
                                      "channels")
NUMBER_OUT_OF_RANGE = _kind(422, 42246, "a JSON number is outside ±(2^53 − 1) (JavaScript "
                                        "cannot hold it exactly)")
ALERT_DESIGN_INVALID = _kind(422, 42270, "alert designs: a key is unknown or has a bad value "
                                         "(the message names the key and what is allowed)")
ALERT_ACTION_INVALID = _kind(422, 42271, "alert queue: not one of pause, resume, skip, clear, "
                                         "replay, or `replay` without an event id")
# -- 429: too many, too fast; the answer's `Retry-After` says when to try again --
PUBLISH_RATE_LIMITED = _kind(429, 42901, "this address publishes faster than `--publish-rate`")
LOOKUP_RATE_LIMITED = _kind(429, 42902, "this address looks up channels (polling, SSE, "
                                        "socket.io registrations) faster than `--lookup-rate`")
TOKEN_FAILURES_LIMITED = _kind(429, 42903, "this address sent too many wrong tokens or secrets "
                                           "(`--token-failure-rate`)")
TOO_SLOW = _kind(429, 42904, "(socket.io `ERROR` event, then the connection closes) more "
                 "than `--output-budget` bytes were waiting for this client: it reconnects and "
                 "resumes from its last event id")
SUBSCRIBE_RATE_LIMITED = _kind(429, 42920, "Web Push: this address subscribes faster than "
                                           "`--subscribe-rate`")
APPLICATION_CONNECTIONS_FULL = _kind(429, 42960, "this application already has "
                                                 "`--max-connections-per-application` "
                                                 "identified connections")
# -- 5xx: our fault, or a component that is down; the message never carries internals
INTERNAL = _kind(500, 50001, "the server failed; the details are in its log, never in the "
                             "answer")
COMPONENT_FAILING = _kind(503, 50361, "`/health`: a component is failing (named in the answer)")
DATABASE_UNAVAILABLE = _kind(503, 50363, "with `--database-url`: PostgreSQL (space secrets, "
                                         "Web Push subscriptions) does not answer")
CONNECTIONS_UNAVAILABLE = _kind(503, 50362, "`/connections` with `--redis-url`: the other nodes' "
                                            "connections are in Redis, which does not answer")
ALERT_QUEUE_UNAVAILABLE = _kind(503, 50370, "alert queue: its shared state (Redis) does not "
                                            "answer; try again")
BUS_UNAVAILABLE = _kind(503, 50380, "cluster mode: the event bus (Redis) does not answer; "
                                    "nothing was published, retry with the same idempotency "
                                    "key")
BUS_BEHIND = _kind(503, 50381, "cluster mode: this node fell behind the event bus and closed "
                               "its connections; reconnect and resume with your last event id")
SUBSCRIPTIONS_FULL = _kind(507, 50720, "Web Push: the store is full "
                                       "(`--webpush-max-subscriptions` or "
                                       "`--webpush-max-bytes`)")
SPACES_FULL = _kind(507, 50740, "private spaces: the server already keeps `--max-spaces` "
                                "secrets or `--spaces-max-bytes` of them")
CONNECTIONS_FULL = _kind(507, 50760, "the server already lists `--max-identified-connections` "
                                     "identified connections")
MEDIA_STORAGE_FULL = _kind(507, 50770, "alert media: uploads already fill "
                                       "`--alert-media-total-bytes`")

def markdown_table() -> str:
    """The README's error table, made from :data:`ERRORS`."""
    lines = ["| code | http | meaning |", "| --- | --- | --- |"]
    lines += [f"| {kind.code} | {kind.http} | {kind.meaning} |" for kind in ERRORS]
    return "\n".join(lines)


def json_error(error: ApiError) -> web.Response:
    response = web.json_response(error.to_dict(), status=error.http)
    response.headers.update(error.headers)
    return response


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_throttle = Throttle()


def _answer_started(request: web.Request) -> bool:
    """Whether bytes of an answer (a 101 upgrade, a stream's headers) were already written."""
    writer = request.writer
    return writer is not None and writer.output_size > 0


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def answer_for(request: web.Request, error: Exception) -> web.StreamResponse:
    """The answer to a request whose handling raised ``error``: JSON with a stable code.

    Logs only what is our fault. Never writes an answer after one began (a
    failure inside a WebSocket): it logs one line and raises
    :class:`AnswerAlreadyStarted`, and aiohttp closes the connection. Redirects,
    304s and the like are answers, not errors: they are raised again. A client
    that hung up mid-request is logged at DEBUG only. The front door
    (frontdoor.py) calls it for everything a request raises.
    """
    if isinstance(error, ApiError):
        return json_error(error)
    if isinstance(error, BodyTimedOut):
        return json_error(BODY_TIMEOUT(
            f"The request body did not arrive within {error.timeout:g} s (--body-timeout); "
            f"send the whole body at once."))
    if isinstance(error, web.HTTPNotFound):
        return json_error(NOT_FOUND(f"Nothing at {request.path}."))
    if isinstance(error, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(error.allowed_methods))
        response = json_error(METHOD_NOT_ALLOWED(
            f"{request.method} is not allowed on {request.path}; use {allowed}."))
        response.headers["Allow"] = allowed  # RFC 9110 requires it on 405
        return response
    if isinstance(error, web.HTTPException):
        raise error
    if isinstance(error, ConnectionError) and _client_gone(request):
        # The client hung up (mid-body, say); a connection of ours that failed
        # (Redis, PostgreSQL) is a ConnectionError too, but the client is still there.
        log.debug("client left during %s %s: %r", request.method, request.path, error)
        return json_error(BODY_INCOMPLETE("The connection closed before the request "
                                          "was complete."))
    if _answer_started(request):
        _throttle.log(log, logging.WARNING, "%s %s failed after its answer began (%s); "
                      "connection closed", request.method, request.path,
                      type(error).__name__)
        raise AnswerAlreadyStarted() from error
    if _throttle.allow()[0]:
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=error)
    return json_error(INTERNAL("The server failed to handle this request; it has been logged."))
