"""The Web Push sender: encrypt, sign once per push service, POST, read the answer.

One aiohttp session for the whole app with explicit timeouts; one VAPID
``Authorization`` header per push-service origin, signed once and reused for
12 hours (pywebpush signs a new JWT on every call and mutates its claims);
at most ``concurrency`` requests in flight; each answer handled the way push
services mean it (RFC 8030, RFC 8292). A subscription that cannot be
encrypted, signed or sent fails alone: it is counted as failed, never fails
the batch or the publisher's answer. Failures are logged at WARNING once per
batch, counted per push service and cause (network, TLS, timeout, status).
It never logs per recipient, never retries what cannot succeed, and never
sends a body over 4,096 bytes.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import re
import ssl
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import aiohttp

from ..metrics import Metrics
from . import crypto
from .endpoints import EndpointPolicy, EndpointRefused, origin
from .store import Outcomes, Subscription, SubscriptionStore

if TYPE_CHECKING:
    from py_vapid import Vapid02

log = logging.getLogger(__name__)

DEFAULT_TTL = 86_400
"""One day: pywebpush's default of 0 makes push services drop messages for offline browsers."""
MAX_TTL = 28 * 86_400
URGENCIES = ("very-low", "low", "normal", "high")
TOPIC_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,32}")
VAPID_LIFETIME = 12 * 3600
"""Seconds a signed JWT is valid; RFC 8292 allows 24 h, but clock skew makes the limit risky."""
VAPID_RENEW_BEFORE = 3600
"""Re-sign when less than this is left, so no request carries a nearly expired token."""
GONE = frozenset({404, 410})
RETRY_LATER = frozenset({429, 503})
OUR_CONFIGURATION = frozenset({400, 401, 403})
ENCRYPTION_SLICE = 0.002
"""Seconds of encryption per event-loop iteration, so a fan-out never stalls the loop for long."""


class PayloadTooLarge(ValueError):
    """The message cannot fit one 4,096-byte push body; nothing was sent."""


@dataclass(frozen=True, slots=True)
class PushOptions:
    """How push services should treat a message (RFC 8030 headers).

    :param ttl: seconds the push service keeps it for an offline browser (default one day).
    :param urgency: ``very-low``, ``low``, ``normal`` or ``high`` (battery hint).
    :param topic: up to 32 URL-safe characters; a newer message with the same
        topic replaces an undelivered older one.
    :param raw: the event data is the message itself (``notify`` verbs): a
        string is sent as is, anything else as JSON. False for live events,
        which are wrapped as ``{"title", "event", "id", "data", ...}``.

    A PushOptions is truthy so it can be passed as ``Hub.publish(..., push=options)``.
    """

    ttl: int = DEFAULT_TTL
    urgency: str | None = None
    topic: str | None = None
    raw: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.ttl, bool) or not isinstance(self.ttl, int) or not 0 <= self.ttl <= MAX_TTL:
            raise ValueError(f"ttl must be whole seconds from 0 to {MAX_TTL} (28 days).")
        if self.urgency is not None and self.urgency not in URGENCIES:
            raise ValueError(f"urgency must be one of {', '.join(URGENCIES)}.")
        if self.topic is not None and not (isinstance(self.topic, str)
                                           and TOPIC_PATTERN.fullmatch(self.topic)):
            raise ValueError("topic is 1 to 32 characters from A-Z a-z 0-9 _ -.")

    def __bool__(self) -> bool:
        return True

    def headers(self) -> dict[str, str]:
        headers = {"TTL": str(self.ttl)}
        if self.urgency:
            headers["Urgency"] = self.urgency
        if self.topic:
            headers["Topic"] = self.topic
        return headers


@dataclass(slots=True)
class SendReport:
    """Counts for one batch: what the notify route and the Python API answer."""

    sent: int = 0
    removed: int = 0
    failed: int = 0
    retried: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"sent": self.sent, "removed": self.removed, "failed": self.failed,
                "retried": self.retried}


class VapidHeaders:
    """``Authorization: vapid t=<JWT>,k=<key>`` per push-service origin, signed once.

    :param vapid: the server's key, or what loads it (:meth:`.keys.ServerKey.load`) on
        the first signature: py-vapid and OpenSSL wait until a push is sent.
    :param subject: ``mailto:`` or ``https:`` contact (already validated).
    :param clock: Unix time source, replaceable in tests.
    """

    def __init__(self, vapid: Vapid02 | Callable[[], Vapid02], subject: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._load = vapid if callable(vapid) else lambda: vapid
        self._vapid: Vapid02 | None = None
        self.subject = subject
        self.clock = clock
        self.signatures = 0  # how many JWTs were signed: tests check the cache with it
        self._cache: dict[str, tuple[str, float]] = {}

    def header(self, audience: str) -> str:
        now = self.clock()
        cached = self._cache.get(audience)
        if cached is not None and cached[1] - now > VAPID_RENEW_BEFORE:
            return cached[0]
        expires = int(now) + VAPID_LIFETIME
        if self._vapid is None:  # a key that fails to load fails this push, and is tried again
            self._vapid = self._load()
        # A fresh dict per signature: py-vapid must never see a shared claims dict.
        value = self._vapid.sign({"aud": audience, "exp": expires, "sub": self.subject})["Authorization"]
        self.signatures += 1
        self._cache[audience] = (value, float(expires))
        return value


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class WebPushSender:
    """Sends one message to many subscriptions.

    :param vapid_headers: signs and caches the VAPID header per origin.
    :param policy: the endpoint allow-list, re-checked before sending (once per origin).
    :param store: receives each batch's outcomes in one call (None: not recorded).
    :param concurrency: requests in flight at once for the whole sender (default 64).
    :param timeout: seconds for one request, connection included (default 10).
    :param max_retries: retries of one message after 429/503 (default 3).
    :param retry_base_delay: back-off after the first 429/503 when the answer
        has no ``Retry-After``; doubled each time (default 1 s).
    :param max_retry_delay: a wait longer than this is not made: the message
        counts as failed instead (default 60 s), so a batch always ends.
    :param crypto_executor: a process pool for encryption; used for fan-outs of
        ``crypto_batch`` subscriptions or more, so a large fan-out uses every
        core and the event loop keeps serving requests.
    :param metrics: counts the push services' answers by status class (``/metrics``).
    """

    def __init__(self, vapid_headers: VapidHeaders, policy: EndpointPolicy,
                 store: SubscriptionStore | None = None, *, concurrency: int = 64,
                 timeout: float = 10.0, max_retries: int = 3, retry_base_delay: float = 1.0,
                 max_retry_delay: float = 60.0, crypto_executor: Executor | None = None,
                 crypto_batch: int = 256, metrics: Metrics | None = None) -> None:
        self.vapid_headers = vapid_headers
        self.metrics = metrics or Metrics()
        self._policy = policy
        self.store = store
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_base_delay = retry_base_delay
        self.max_retry_delay = max_retry_delay
        self.crypto_executor = crypto_executor
        self.crypto_batch = crypto_batch
        self._session: aiohttp.ClientSession | None = None
        self._origins: dict[str, bool] = {}
        self._slots = asyncio.Semaphore(concurrency)

    @property
    def policy(self) -> EndpointPolicy:
        return self._policy

    @policy.setter
    def policy(self, policy: EndpointPolicy) -> None:
        self._policy = policy
        self._origins.clear()

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.concurrency, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout, connect=min(5.0, self.timeout)),
            skip_auto_headers=("User-Agent",),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("The Web Push sender is not started (app.cleanup_ctx starts it).")
        return self._session

    @staticmethod
    def check_size(plaintext: bytes) -> None:
        if len(plaintext) > crypto.MAX_PLAINTEXT_BYTES:
            raise PayloadTooLarge(
                f"The message is {len(plaintext)} bytes; a push can carry at most "
                f"{crypto.MAX_PLAINTEXT_BYTES} bytes. Send less and let the page fetch the rest.")

    async def send(self, subscriptions: Sequence[Subscription], plaintext: bytes,
                   options: PushOptions = PushOptions()) -> SendReport:
        """Push ``plaintext`` to every subscription; answer with the counts.

        Raises :class:`PayloadTooLarge` before sending anything.
        """
        self.check_size(plaintext)
        report = SendReport()
        outcomes = Outcomes()
        if not subscriptions:
            return report
        headers = {"Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
                   **options.headers()}
        bodies = None
        if self.crypto_executor is not None and len(subscriptions) >= self.crypto_batch:
            try:
                bodies = self._bodies_in_processes(subscriptions, plaintext)
            except Exception as error:  # a broken worker pool: encrypt here instead
                log.warning("web push: encryption workers unavailable (%s); encrypting in "
                            "the server process", type(error).__name__)
        if bodies is None:
            bodies = self._bodies_inline(subscriptions, plaintext)
        # Problems are counted per push service and logged once per batch, never
        # once per recipient: a fan-out to 10,000 must not write 10,000 lines.
        config_errors: dict[str, int] = {}
        other_failures: dict[str, int] = {}
        await asyncio.gather(*(self._worker(bodies, headers, report, outcomes,
                                            config_errors, other_failures)
                               for _ in range(min(self.concurrency, len(subscriptions)))))
        for audience_status, count in config_errors.items():
            log.error("push service refused our VAPID credentials (%s) for %d subscription(s): "
                      "check --vapid-subject and that the key matches the one pages subscribed "
                      "with", audience_status, count)
        for problem, count in other_failures.items():
            log.warning("web push: %s for %d subscription(s)", problem, count)
        pruned = 0
        if self.store is not None:
            try:
                pruned = await self.store.record(outcomes) or 0
            except Exception as error:  # the pushes went out: the answer must say so
                log.warning("web push: could not record this batch's outcomes (%s: %s)",
                            type(error).__name__, error)
        if pruned:
            log.warning("web push: removed %d subscription(s) that kept failing "
                        "(--webpush-prune-failures, --webpush-prune-days)", pruned)
            report.removed += pruned
        log.info("web push: %d sent, %d removed, %d failed, %d retried",
                 report.sent, report.removed, report.failed, report.retried)
        return report

    # -- encryption ------------------------------------------------------
    @staticmethod
    def _keys(subscription: Subscription) -> tuple[bytes, bytes]:
        return crypto.b64url_decode(subscription.p256dh), crypto.b64url_decode(subscription.auth)

    def _bodies_inline(self, subscriptions: Sequence[Subscription],
                       plaintext: bytes) -> "BodySource":
        """Encrypt lazily, one message per step: the loop is never held for more than ~0.2 ms."""
        def generate() -> Iterator[tuple[Subscription, bytes | None]]:
            for subscription in subscriptions:
                try:
                    yield subscription, crypto.encrypt(plaintext, *self._keys(subscription))
                except Exception:  # unusable keys: this one is counted as failed
                    yield subscription, None
        return BodySource(iterator=generate())

    def _bodies_in_processes(self, subscriptions: Sequence[Subscription],
                             plaintext: bytes) -> "BodySource":
        """Encrypt in chunks on the process pool while earlier chunks are already being sent."""
        loop = asyncio.get_running_loop()
        chunk_size = self.crypto_batch
        chunks: list[tuple[Sequence[Subscription], asyncio.Future[Any]]] = []
        for start in range(0, len(subscriptions), chunk_size):
            chunk = subscriptions[start:start + chunk_size]
            try:
                keys = [self._keys(s) for s in chunk]
            except (ValueError, TypeError):
                keys = None
            if keys is None:  # a bad key in the chunk: encrypt it inline, one by one
                chunks.append((chunk, _done([])))
                continue
            chunks.append((chunk, loop.run_in_executor(
                self.crypto_executor, crypto.encrypt_many, plaintext, keys)))
        return BodySource(chunks=chunks, plaintext=plaintext, keys=self._keys)

    # -- sending ---------------------------------------------------------
    def _allowed_origin(self, endpoint: str) -> str | None:
        """The endpoint's origin if the allow-list still accepts it (checked once per origin).

        Stored endpoints were checked in full at subscribe time; here only the
        part the allow-list decides on is re-checked, in case the settings changed.
        """
        scheme, _, netloc = (endpoint.split("/", 3) + ["", ""])[:3]
        audience = f"{scheme}//{netloc}"
        verdict = self._origins.get(audience)
        if verdict is None:
            try:
                self.policy.check(audience)
                verdict = origin(audience) == audience
            except EndpointRefused as refused:
                log.warning("not sending to stored endpoints the allow-list now refuses: %s",
                            refused)
                verdict = False
            self._origins[audience] = verdict
        return audience if verdict else None

    async def _worker(self, bodies: "BodySource", headers: dict[str, str], report: SendReport,
                      outcomes: Outcomes, config_errors: dict[str, int],
                      other_failures: dict[str, int]) -> None:
        while True:
            item = await bodies.next()
            if item is None:
                return
            subscription, body = item
            if body is None:
                _count(other_failures, "a stored subscription's keys cannot be used")
                report.failed += 1
                outcomes.failed.append(subscription.endpoint)
                continue
            try:
                await self._send_one(subscription, body, headers, report, outcomes,
                                     config_errors, other_failures)
            except Exception as error:  # this subscription alone fails, never the batch
                _count(other_failures, f"a stored subscription could not be sent "
                                       f"({type(error).__name__})")
                report.failed += 1
                outcomes.failed.append(subscription.endpoint)

    async def _send_one(self, subscription: Subscription, body: bytes, headers: dict[str, str],
                        report: SendReport, outcomes: Outcomes,
                        config_errors: dict[str, int], other_failures: dict[str, int]) -> None:
        endpoint = subscription.endpoint
        audience = self._allowed_origin(endpoint)
        if audience is None:
            _count(other_failures, "a stored endpoint the allow-list now refuses")
            report.failed += 1
            outcomes.failed.append(endpoint)
            return
        request_headers = {**headers, "Authorization": self.vapid_headers.header(audience)}
        attempt = 0
        while True:
            try:
                # The slot is held for the request only, never while waiting to retry.
                # No redirects: the allow-list checked this endpoint, not wherever
                # a push service (or a host added with --webpush-allow) points next.
                async with self._slots, self.session.post(
                        endpoint, data=body, headers=request_headers,
                        allow_redirects=False) as answer:
                    status = answer.status
                    retry_after = answer.headers.get("Retry-After")
                    await answer.read()
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                log.debug("push to %s failed: %r", audience, error)
                _count(other_failures, f"{audience}: {network_problem(error)}")
                self.metrics.webpush_answer(None)
                report.failed += 1
                outcomes.failed.append(endpoint)
                return
            self.metrics.webpush_answer(status)
            if 200 <= status < 300:
                report.sent += 1
                outcomes.succeeded.append(endpoint)
                return
            if status in GONE:
                report.removed += 1
                outcomes.gone.append(endpoint)
                return
            if status in RETRY_LATER and attempt < self.max_retries:
                delay = max(retry_after_seconds(retry_after, time.time()) or 0.0,
                            self.retry_base_delay * (2 ** attempt))
                if delay <= self.max_retry_delay:
                    attempt += 1
                    report.retried += 1
                    await asyncio.sleep(delay)
                    continue
                problem = (f"{audience} asked to retry beyond the {self.max_retry_delay:.0f} s "
                           f"limit: gave up")
                _count(other_failures, problem)
            elif status in OUR_CONFIGURATION:
                key = f"{status} from {audience}"
                _count(config_errors, key)
            elif status == 413:
                problem = f"{audience} refused a {len(body)}-byte body as too large"
                _count(other_failures, problem)
            else:
                problem = f"{audience} answered {status}"
                _count(other_failures, problem)
            report.failed += 1
            outcomes.failed.append(endpoint)
            return


def network_problem(error: BaseException) -> str:
    """The kind of a failed request, for the once-per-batch warning."""
    if isinstance(error, asyncio.TimeoutError):
        return "no answer in time (--webpush-timeout)"
    if isinstance(error, (aiohttp.ClientSSLError, ssl.SSLError)):
        return f"TLS failed ({type(error).__name__})"
    if isinstance(error, aiohttp.ClientConnectorError):
        return "could not connect"
    return f"network error ({type(error).__name__})"


def _count(problems: dict[str, int], problem: str) -> None:
    problems[problem] = problems.get(problem, 0) + 1


class BodySource:
    """Hands (subscription, encrypted body) pairs to the workers, in order.

    Inline mode encrypts on demand; process mode awaits each chunk's future.
    """

    def __init__(self, *, iterator: Iterator[tuple[Subscription, bytes | None]] | None = None,
                 chunks: list[tuple[Sequence[Subscription], "asyncio.Future[Any]"]]
                 | None = None, plaintext: bytes = b"",
                 keys: Callable[[Subscription], tuple[bytes, bytes]] | None = None) -> None:
        self._iterator = iterator
        self._chunks = chunks or []
        self._plaintext = plaintext
        self._keys = keys
        self._chunk_index = 0
        self._position = 0
        self._lock = asyncio.Lock()
        self._spent = 0.0
        self._budget_spent = False

    def _new_slice(self) -> None:
        self._spent = 0.0
        self._budget_spent = False

    async def next(self) -> tuple[Subscription, bytes | None] | None:
        if self._iterator is not None:
            # Many workers resume in the same loop iteration when their answers
            # arrive together; each would encrypt (~0.15 ms) before the loop
            # could run anything else. So encryption gets a budget per
            # iteration: once spent, workers wait for the next iteration.
            while self._budget_spent:
                await asyncio.sleep(0)
            started = time.perf_counter()
            item = next(self._iterator, None)
            self._spent += time.perf_counter() - started
            if self._spent > ENCRYPTION_SLICE and not self._budget_spent:
                self._budget_spent = True
                asyncio.get_running_loop().call_soon(self._new_slice)
            return item
        async with self._lock:
            while self._chunk_index < len(self._chunks):
                subscriptions, future = self._chunks[self._chunk_index]
                try:
                    bodies: Any = await future
                except Exception:  # a broken worker pool: encrypt this chunk here instead
                    log.exception("encryption worker failed; encrypting in the server process")
                    bodies = []
                    self._chunks[self._chunk_index] = (subscriptions, _done([]))
                if self._position < len(subscriptions):
                    subscription = subscriptions[self._position]
                    self._position += 1
                    if bodies:
                        return subscription, bodies[self._position - 1]
                    return subscription, self._encrypt_one(subscription)
                self._chunk_index += 1
                self._position = 0
            return None

    def _encrypt_one(self, subscription: Subscription) -> bytes | None:
        try:
            assert self._keys is not None
            return crypto.encrypt(self._plaintext, *self._keys(subscription))
        except (ValueError, TypeError):
            return None


def _done(result: Any) -> "asyncio.Future[Any]":
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_result(result)
    return future
