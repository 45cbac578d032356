"""Per-client-address token buckets: publishing, channel look-ups, Web Push subscribing, wrong tokens.

Each limit is a rate such as ``120/min``: a bucket of 120 tokens per client
address, refilled at 120 a minute, one token per request. An empty bucket is
answered 429 with ``Retry-After`` (seconds until the next token) and a stable
code per limit. The table of buckets is bounded (least recently used first
out), so a flood of addresses costs a fixed amount of memory; an IPv6 client
is counted per /64 (:func:`limit_key`). The address is the one
:func:`~.proxies.client_address` gives (``--trust-proxy``).

- publishing (``--publish-rate``): triggers, ``/emit``, ``/broadcast``,
  ``/webpush/notify``; this machine's own address is exempt (bots and tools on
  the streamer's PC);
- look-ups (``--lookup-rate``): polling ``/channels/{c}/events``, opening an
  SSE stream, and each socket.io registration of a code or channel. Not
  exempt for loopback: a page in the local browser can enumerate codes too;
- Web Push subscribing (``--subscribe-rate``);
- wrong tokens and secrets (``--token-failure-rate``): each wrong publish,
  admin or emit token takes a token; while the bucket is empty every token
  check from that address is refused, right or wrong.

This module never decides who may publish or listen; it only counts.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import web

from .errors import (LOOKUP_RATE_LIMITED, PUBLISH_RATE_LIMITED, SUBSCRIBE_RATE_LIMITED,
                     TOKEN_FAILURES_LIMITED, ErrorKind)
from .proxies import client_address

IPV6_PREFIX = 64
"""An IPv6 client usually holds a whole /64: limits count the prefix, not each address."""
MAX_ADDRESSES = 10_000
"""Addresses tracked per limit; about 150 bytes each, so at most ~1.5 MB per limit."""
PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
           "h": 3600.0, "hour": 3600.0}
OFF_WORDS = frozenset({"off", "0", "none", "unlimited"})
_RATE = re.compile(r"\s*(\d+)\s*/\s*([a-z]+)\s*")


@dataclass(frozen=True)
class Rate:
    """``count`` requests per ``seconds``, up to ``count`` at once."""

    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds

    @classmethod
    def parse(cls, text: str) -> "Rate | None":
        """``"120/min"`` -> Rate(120, 60); ``"off"`` -> None; ValueError with a sentence otherwise."""
        if text.strip().lower() in OFF_WORDS:
            return None
        found = _RATE.fullmatch(text.lower())
        if found is None or found.group(2) not in PERIODS or int(found.group(1)) < 1:
            raise ValueError(f"{text!r} is not a rate: write a count per period such as "
                             f"10/s, 120/min or 1000/hour, or off")
        return cls(int(found.group(1)), PERIODS[found.group(2)])


@functools.lru_cache(maxsize=4096)  # parsing an address costs microseconds; they repeat
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


@functools.lru_cache(maxsize=4096)
def is_loopback(address: str) -> bool:
    """True for this machine's own addresses (127.0.0.0/8, ::1, and ::ffff:127.x.y.z)."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return parsed.is_loopback


def check_rate(text: str) -> str:
    """The settings table's check for a rate setting."""
    Rate.parse(text)
    return text


class Buckets:
    """One limit: a token bucket per client address, the table bounded to ``max_addresses``.

    :param rate: the limit.
    :param error: the kind raised (429) when an address's bucket is empty.
    :param flag: the setting to name in the refusal.
    :param clock: monotonic seconds, replaceable in tests.
    """

    def __init__(self, rate: Rate, error: ErrorKind, flag: str, *,
                 max_addresses: int = MAX_ADDRESSES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.error = error
        self.flag = flag
        self.max_addresses = max_addresses
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, when

    def __len__(self) -> int:
        return len(self._buckets)

    def _tokens(self, key: str, now: float) -> float:
        tokens, when = self._buckets.get(key, (float(self.rate.count), now))
        return min(float(self.rate.count), tokens + (now - when) * self.rate.per_second)

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)

    def take(self, address: str, what: str) -> None:
        """Spend one token of ``address``'s bucket, or raise the 429 (``what`` names the request)."""
        key = limit_key(address)
        now = self.clock()
        tokens = self._tokens(key, now)
        if tokens < 1.0:
            self._store(key, tokens, now)
            raise self.refusal(tokens, what)
        self._store(key, tokens - 1.0, now)

    def spend(self, address: str) -> None:
        """Spend one token if there is one; never raises (counting failures)."""
        key = limit_key(address)
        now = self.clock()
        self._store(key, max(0.0, self._tokens(key, now) - 1.0), now)

    def check(self, address: str, what: str) -> None:
        """Raise the 429 while ``address``'s bucket is empty, without spending."""
        key = limit_key(address)
        if key in self._buckets:
            tokens = self._tokens(key, self.clock())
            if tokens < 1.0:
                raise self.refusal(tokens, what)

    def refusal(self, tokens: float, what: str) -> Exception:
        wait = max(1, math.ceil((1.0 - tokens) / self.rate.per_second))
        return self.error(
            f"Too many {what} from your address: at most {self.rate.count} per "
            f"{_period(self.rate.seconds)} ({self.flag}). Try again in {wait} s.",
            {"Retry-After": str(wait)})


def _period(seconds: float) -> str:
    return {1.0: "second", 60.0: "minute", 3600.0: "hour"}.get(seconds, f"{seconds:g} s")


class RateLimits:
    """The four limits of one server; a limit set to ``off`` is None and never refuses.

    :param exempt_loopback_publishing: this machine may publish without limit.
    """

    def __init__(self, *, publish: Rate | None, lookup: Rate | None, subscribe: Rate | None,
                 token_failures: Rate | None, exempt_loopback_publishing: bool = True) -> None:
        def buckets(rate: Rate | None, error: ErrorKind, flag: str) -> Buckets | None:
            return Buckets(rate, error, flag) if rate is not None else None
        self.publish = buckets(publish, PUBLISH_RATE_LIMITED, "--publish-rate")
        self.lookup = buckets(lookup, LOOKUP_RATE_LIMITED, "--lookup-rate")
        self.subscribe = buckets(subscribe, SUBSCRIBE_RATE_LIMITED, "--subscribe-rate")
        self.token_failures = buckets(token_failures, TOKEN_FAILURES_LIMITED,
                                      "--token-failure-rate")
        self.exempt_loopback_publishing = exempt_loopback_publishing

    @classmethod
    def from_settings(cls, settings: Any) -> "RateLimits":
        return cls(publish=Rate.parse(settings.publish_rate),
                   lookup=Rate.parse(settings.lookup_rate),
                   subscribe=Rate.parse(settings.subscribe_rate),
                   token_failures=Rate.parse(settings.token_failure_rate))

    def publishing(self, address: str) -> None:
        if self.publish is not None and not (self.exempt_loopback_publishing
                                             and is_loopback(address)):
            self.publish.take(address, "publishes")

    def looking_up(self, address: str) -> None:
        if self.lookup is not None:
            self.lookup.take(address, "channel look-ups (polling, streams, registrations)")

    def subscribing(self, address: str) -> None:
        if self.subscribe is not None:
            self.subscribe.take(address, "Web Push subscriptions")


RATE_LIMITS_KEY = web.AppKey("rate_limits", RateLimits)


# -- the hooks other modules call (one line each) -------------------------------

def check_socket_lookup(environ: dict[str, Any] | None) -> None:
    """A socket.io registration of a code or channel is a look-up (429 ApiError if too many)."""
    if environ is None:
        return
    request = environ["aiohttp.request"]
    limits = request.app.get(RATE_LIMITS_KEY)
    if limits is not None:
        limits.looking_up(client_address(request))


def check_token_failures(request: web.Request) -> None:
    """Before a token is compared: 429 while this address has too many wrong ones behind it."""
    limits = request.app.get(RATE_LIMITS_KEY)
    if limits is not None and limits.token_failures is not None:
        limits.token_failures.check(client_address(request), "wrong tokens")


def record_token_failure(request: web.Request) -> None:
    """A wrong token or secret was presented."""
    limits = request.app.get(RATE_LIMITS_KEY)
    if limits is not None and limits.token_failures is not None:
        limits.token_failures.spend(client_address(request))
