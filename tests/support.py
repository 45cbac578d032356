"""Test helpers: a real server on a free port, real socket.io clients, service checks.

Tests read like the README: start the server, connect like a page, fire like a
bot, assert what arrived. Waiting is always on an event, with a bound.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import aiohttp
import pytest
import socketio
from aiohttp import web

from notification_service import hangup, tls
from notification_service.app import create_app
from notification_service.config import PROJECT_ROOT, Settings
from notification_service.http_limits import install_connection_cap
from notification_service.hub import HUB_KEY, Hub

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
WAIT = 5.0  # seconds any single expected thing may take before a test fails


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = WAIT,
                step: float = 0.05) -> None:
    """Wait until ``await condition()`` is true (polled every ``step``), or fail after ``timeout``.

    For state that is only visible by asking (Redis, another node's HTTP API),
    where no event can be awaited.
    """
    for _ in range(int(timeout / step)):
        if await condition():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"not within {timeout} s")


def require(available: bool, reason: str) -> None:
    """Skip on a laptop without the service; in CI a missing service is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI must run this test, but {reason}")
    pytest.skip(reason)


def port_open(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def require_chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    require(path is not None, "Debian's chromium is not installed (apt-get install -y chromium)")
    return path  # type: ignore[return-value]


def test_settings(tmp_path: Any, **overrides: Any) -> Settings:
    """Settings for a server under test: a free port, no log file, a temporary data dir."""
    settings = Settings(port=0, logfile=None, data_dir=tmp_path / "data")
    for key, value in overrides.items():
        setattr(settings, key, value)
    return settings


test_settings.__test__ = False  # a factory, not a test, despite its name


@dataclass
class RunningServer:
    """A server started by the ``serve`` fixture, in the test's own event loop."""

    app: web.Application
    runner: web.AppRunner
    url: str
    settings: Settings
    stopped: bool = False

    @property
    def hub(self) -> Hub:
        return self.app[HUB_KEY]

    @property
    def port(self) -> int:
        return int(self.url.rpartition(":")[2])

    async def stop(self) -> None:
        """Shut down as the CLI does (idempotent: the fixture stops every server again)."""
        if not self.stopped:
            self.stopped = True
            RUNNING[:] = [running for running in RUNNING if running is not self]
            await self.runner.cleanup()


Serve = Callable[..., Awaitable[RunningServer]]
RUNNING: list[RunningServer] = []  # started and not stopped yet: empty after every test


async def start_server(settings: Settings) -> RunningServer:
    """Only the ``serve`` fixture calls this: tests ask the fixture, never start by hand."""
    app = create_app(settings)
    runner = web.AppRunner(app, shutdown_timeout=settings.shutdown_timeout)
    await runner.setup()
    install_connection_cap(runner, settings)  # as the CLI does
    hangup.install(runner.server)
    site = web.TCPSite(runner, "127.0.0.1", settings.port,
                       ssl_context=tls.server_context(settings))
    await site.start()
    port = runner.addresses[0][1]
    running = RunningServer(app, runner, f"{tls.scheme(settings)}://127.0.0.1:{port}", settings)
    RUNNING.append(running)
    return running


@dataclass
class Page:
    """A real python-socketio client that records every event it receives, in order."""

    client: socketio.AsyncClient
    received: list[tuple[str, Any]] = field(default_factory=list)  # (event name, data)
    metas: list[Any] = field(default_factory=list)  # the metadata argument, aligned with received
    confirm_receipts: bool = False  # answer RECEIVED like notificationservice.js does
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def _record(self, name: str, data: Any = None, meta: Any = None) -> None:
        self.received.append((name, data))
        self.metas.append(meta)
        self._arrived.set()
        if self.confirm_receipts and isinstance(meta, dict) and meta.get("receipt"):
            await self.client.emit("RECEIVED", {"id": meta["id"]})

    def with_meta(self, name: str) -> list[tuple[Any, Any]]:
        """(data, metadata) of every event called ``name``, in arrival order."""
        return [(data, meta) for (event, data), meta in zip(self.received, self.metas)
                if event == name]

    async def wait_for(self, name: str, count: int = 1, timeout: float = WAIT) -> list[Any]:
        """Wait until ``count`` events called ``name`` arrived; return their data."""
        async def until() -> list[Any]:
            while True:
                found = [data for event, data in self.received if event == name]
                if len(found) >= count:
                    return found
                self._arrived.clear()
                await self._arrived.wait()
        return await asyncio.wait_for(until(), timeout)

    def named(self, name: str) -> list[Any]:
        return [data for event, data in self.received if event == name]

    async def emit(self, event: str, data: Any = None) -> Any:
        """Emit and wait for the server's acknowledgement."""
        return await self.client.call(event, data, timeout=WAIT)

    async def close(self) -> None:
        await self.client.disconnect()


async def connect_page(url: str, *, query: str = "", auth: Any = None,
                       transports: list[str] | None = None,
                       confirm_receipts: bool = False, socketio_path: str = "socket.io",
                       http_session: aiohttp.ClientSession | None = None) -> Page:
    """``socketio_path``: ``<base>/socket.io`` under --base-path; ``http_session``: one
    whose connector trusts a test certificate (wss://)."""
    client = socketio.AsyncClient(reconnection=False, http_session=http_session)
    page = Page(client, confirm_receipts=confirm_receipts)
    client.on("*", page._record)
    await client.connect(url + (f"?{query}" if query else ""), auth=auth,
                         transports=transports or ["websocket"], wait_timeout=WAIT,
                         socketio_path=socketio_path)
    return page


async def joins(url: str, room: str, secret: str) -> bool:
    """Whether a fresh page may ``join`` ``room`` with ``secret`` (the acknowledgement's ``ok``)."""
    page = await connect_page(url)
    try:
        return (await page.emit("join", {"room": room, "secret": secret}))["ok"]
    finally:
        await page.close()


async def raw_get(url: str, target: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """Send ``target`` exactly as written (no client-side normalisation of ``..``)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), WAIT)
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


# --autoplay-policy: OBS lets browser sources play sound without a click; so must the tests.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]
ARTIFACTS = PROJECT_ROOT / "tests" / "artifacts"


def require_playwright() -> Any:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        require(False, "Playwright for Python is not installed (pip install playwright)")
    return async_playwright
