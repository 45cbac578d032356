"""A local push service that behaves like a real one, and browser-side subscribers.

The service checks what Google's, Mozilla's and Apple's services check: the
VAPID JWT (ES256 signature against the ``k=`` key, ``aud`` equal to the
endpoint's origin, ``exp`` in the future and within 24 h, ``sub`` a mailto:
or https: contact), a ``TTL`` header and a 4,096-byte body limit, and then it
decrypts the aes128gcm body exactly as the browser would, with the
subscriber's private key and auth secret. It can answer 410, 429 with
Retry-After, 413, 403 or anything else on demand. 127.0.0.1 only.

``python -m tests.pushservice --fast`` runs it without checks (for bench/).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import jwt as vapid_jwt

from notification_service.webpush.crypto import b64url_encode

SUB_PATTERN = re.compile(r"(mailto:[^\s@<>]+@[^\s@<>]+\.[a-z]{2,}|https://[a-z0-9.-]+\.[a-z]{2,}(/\S*)?)",
                         re.IGNORECASE)
WAIT = 5.0


@dataclass
class BrowserSubscriber:
    """What a browser keeps for one subscription: a P-256 key pair and a 16-byte auth secret."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))
    base_url: str = ""

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/push/{self.token}"

    @property
    def p256dh(self) -> str:
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return b64url_encode(raw)

    def to_json(self) -> dict[str, Any]:
        """What ``PushSubscription.toJSON()`` gives a page."""
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": self.p256dh, "auth": b64url_encode(self.auth)}}


@dataclass
class Delivery:
    token: str
    plaintext: bytes
    headers: dict[str, str]
    claims: dict[str, Any]


class PushService:
    """The local push service. ``await start()`` then make subscribers with :meth:`subscriber`.

    :param verify: check VAPID and decrypt (False: answer 201 to anything, for benchmarks).
    """

    def __init__(self, verify: bool = True) -> None:
        self.verify = verify
        self.subscribers: dict[str, BrowserSubscriber] = {}
        self.scripted: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.deliveries: list[Delivery] = []
        self.rejections: list[str] = []
        self.requests: dict[str, int] = {}
        self.request_times: dict[str, list[float]] = {}
        self.total_requests = 0
        self.url = ""
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def start(self, port: int = 0) -> str:
        app = web.Application(client_max_size=64 * 1024)
        app.router.add_post("/push/{token}", self._push)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def subscriber(self) -> BrowserSubscriber:
        subscriber = BrowserSubscriber(base_url=self.url)
        self.subscribers[subscriber.token] = subscriber
        return subscriber

    def answer(self, subscriber: BrowserSubscriber, status: int, times: int = 1,
               **headers: str) -> None:
        """Answer the next ``times`` pushes to ``subscriber`` with ``status`` (and headers)."""
        self.scripted.setdefault(subscriber.token, []).extend(
            [(status, {k.replace("_", "-"): v for k, v in headers.items()})] * times)

    def received(self, subscriber: BrowserSubscriber) -> list[Delivery]:
        return [d for d in self.deliveries if d.token == subscriber.token]

    async def wait_for(self, subscriber: BrowserSubscriber, count: int = 1,
                       timeout: float = WAIT) -> list[Delivery]:
        """Wait until ``subscriber`` got ``count`` decrypted messages; return them."""
        async def until() -> list[Delivery]:
            while len(self.received(subscriber)) < count:
                self._changed.clear()
                await self._changed.wait()
            return self.received(subscriber)
        return await asyncio.wait_for(until(), timeout)

    async def wait_requests(self, subscriber: BrowserSubscriber, count: int,
                            timeout: float = WAIT) -> None:
        async def until() -> None:
            while self.requests.get(subscriber.token, 0) < count:
                self._changed.clear()
                await self._changed.wait()
        await asyncio.wait_for(until(), timeout)

    async def _push(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        body = await request.read()
        self.total_requests += 1
        if not self.verify:
            return web.Response(status=201)
        try:
            return self._handle(request, token, body)
        finally:
            self.requests[token] = self.requests.get(token, 0) + 1
            self.request_times.setdefault(token, []).append(time.monotonic())
            self._changed.set()

    def _reject(self, status: int, reason: str) -> web.Response:
        self.rejections.append(reason)
        return web.Response(status=status, text=reason)

    def _handle(self, request: web.Request, token: str, body: bytes) -> web.Response:
        subscriber = self.subscribers.get(token)
        if subscriber is None:
            return web.Response(status=404, text="no such subscription")
        script = self.scripted.get(token)
        if script:
            status, headers = script.pop(0)
            return web.Response(status=status, headers=headers)
        claims = self._check_vapid(request)
        if isinstance(claims, web.Response):
            return claims
        ttl = request.headers.get("TTL", "")
        if not ttl.isdigit():
            return self._reject(400, f"TTL header missing or not a number: {ttl!r}")
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return self._reject(400, "Content-Encoding must be aes128gcm")
        if len(body) > 4096:
            return self._reject(413, f"body of {len(body)} bytes")
        try:
            plaintext = http_ece.decrypt(body, private_key=subscriber.private_key,
                                         auth_secret=subscriber.auth, version="aes128gcm")
        except Exception as error:  # any decryption failure is the sender's bug
            return self._reject(400, f"cannot decrypt: {error!r}")
        self.deliveries.append(Delivery(token, plaintext, dict(request.headers), claims))
        return web.Response(status=201, headers={"Location": f"/message/{secrets.token_hex(4)}"})

    def _check_vapid(self, request: web.Request) -> dict[str, Any] | web.Response:
        header = request.headers.get("Authorization", "")
        scheme, _, rest = header.partition(" ")
        if scheme.lower() != "vapid":
            return self._reject(401, f"Authorization must be 'vapid t=..,k=..', got {header!r}")
        parts = dict(p.split("=", 1) for p in rest.split(",") if "=" in p)
        if "t" not in parts or "k" not in parts:
            return self._reject(401, "vapid header needs t= and k=")
        try:
            claims = vapid_jwt.decode(parts["t"], parts["k"])
        except Exception as error:
            return self._reject(401, f"JWT signature does not verify: {error!r}")
        origin = f"{request.scheme}://{request.host}"
        now = time.time()
        if claims.get("aud") != origin:
            return self._reject(403, f"aud {claims.get('aud')!r} is not {origin!r}")
        exp = claims.get("exp")
        if not isinstance(exp, int) or not now < exp <= now + 86400:
            return self._reject(403, f"exp {exp!r} must be in the next 24 hours")
        if not SUB_PATTERN.fullmatch(str(claims.get("sub", ""))):
            return self._reject(403, f"sub {claims.get('sub')!r} is not mailto: or https:")
        return claims


async def _serve(port: int, fast: bool) -> None:
    service = PushService(verify=not fast)
    url = await service.start(port)
    print(f"READY {url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await service.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Local push service for tests and benchmarks.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fast", action="store_true", help="answer 201 without checks")
    options = parser.parse_args()
    try:
        asyncio.run(_serve(options.port, options.fast))
    except KeyboardInterrupt:
        pass


# -- pytest fixtures (import them into a test module to use them) -------------
import pytest  # noqa: E402

from .support import RunningServer, Serve  # noqa: E402

SUBJECT = "mailto:ops@example.com"
# Settings overrides for a server that may push to the local service (http on 127.0.0.1):
# ``await serve(**WEBPUSH, publish_token="t")``, or ``webpush(...)`` to change one of them.
WEBPUSH: dict[str, Any] = {"vapid_subject": SUBJECT, "webpush_allow": ["127.0.0.1:*"],
                           "webpush_allow_http": True, "webpush_retry_base_delay": 0.01}


def webpush(**overrides: Any) -> dict[str, Any]:
    """``WEBPUSH`` with some of its values changed, e.g. ``webpush(webpush_allow_http=False)``."""
    return {**WEBPUSH, **overrides}


@pytest.fixture
async def push_service():
    service = PushService()
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
async def push_server(serve: Serve, push_service: PushService) -> RunningServer:
    """A server that pushes to ``push_service`` (stopped by ``serve`` after the test)."""
    return await serve(**WEBPUSH)
