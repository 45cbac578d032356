"""Fixtures shared by every test module (helpers live in tests/support.py).

``serve`` is the one way a test starts a server: ``await serve(publish_token="t")``
starts a real server on a free port with those settings and stops it after the
test. ``server`` is ``await serve()`` with the overrides of an optional
``@pytest.mark.server(...)`` marker on the test.
"""

from __future__ import annotations

from typing import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from .processes import ServerProcess
from .services import NginxServer, RedisServer, TcpProxy, drop_schema, fresh_schema
from .support import (RUNNING, Page, RunningServer, Serve, connect_page, start_server,
                      test_settings)


@pytest.fixture(autouse=True)
def no_server_outlives_its_test():
    """Set up first, so checked last: after ``serve`` stopped what it started."""
    yield
    leaked = [running.url for running in RUNNING]
    RUNNING.clear()
    assert not leaked, f"still running after the test: {leaked} (start servers with serve)"


@pytest.fixture
async def serve(tmp_path) -> AsyncIterator[Serve]:
    """Start real servers with settings overrides; every one is stopped after the test.

    Each server gets its own data folder unless ``data_dir=`` is given (a test
    restarting a server passes the first one's ``settings.data_dir``), and a free
    port unless ``port=`` is given.
    """
    started: list[RunningServer] = []

    async def start(**overrides) -> RunningServer:
        overrides.setdefault("data_dir", tmp_path / f"server{len(started)}" / "data")
        running = await start_server(test_settings(tmp_path, **overrides))
        started.append(running)
        return running

    yield start
    for running in reversed(started):
        await running.stop()


@pytest.fixture
async def server(serve: Serve, request: pytest.FixtureRequest) -> RunningServer:
    marker = request.node.get_closest_marker("server")
    return await serve(**(marker.kwargs if marker else {}))


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def pages(server: RunningServer) -> AsyncIterator[Callable[..., Awaitable[Page]]]:
    """Open socket.io pages on the test server; all are closed afterwards."""
    opened: list[Page] = []

    async def open_page(**kwargs) -> Page:
        page = await connect_page(server.url, **kwargs)
        opened.append(page)
        return page

    yield open_page
    for page in opened:
        await page.close()


@pytest.fixture
async def browser():
    """Debian's headless Chromium driven by Playwright; never a downloaded browser."""
    from .support import CHROMIUM_ARGS, require_chromium, require_playwright

    executable = require_chromium()
    async_playwright = require_playwright()
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def redis_server(tmp_path) -> AsyncIterator[RedisServer]:
    """A redis-server of this test's own on a free port (no persistence): stop, kill, restart it."""
    server = RedisServer(tmp_path / "redis")
    await server.start()
    yield server
    await server.kill()


@pytest.fixture
async def redis_persistent(tmp_path) -> AsyncIterator[RedisServer]:
    """Like ``redis_server``, with an append-only file (``appendfsync everysec``)."""
    server = RedisServer(tmp_path / "redis-aof", appendonly=True)
    await server.start()
    yield server
    await server.kill()


@pytest.fixture
async def redis_proxy(redis_server) -> AsyncIterator[TcpProxy]:
    """A relay to ``redis_server`` that the test can cut off and restore (a partition)."""
    proxy = TcpProxy(redis_server.port)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A URL of the machine's PostgreSQL whose search_path is a fresh schema, dropped after."""
    schema, url = await fresh_schema()
    yield url
    await drop_schema(schema)


@pytest.fixture
async def nginx(tmp_path) -> AsyncIterator[NginxServer]:
    """Debian's nginx of this test's own (free port, own folder): ``await nginx.start(block)``
    with the ``http {}`` contents; stopped after the test."""
    server = NginxServer(tmp_path / "nginx")
    yield server
    await server.stop()


@pytest.fixture
async def spawn(tmp_path) -> AsyncIterator[Callable[..., Awaitable[ServerProcess]]]:
    """Start servers as real processes: ``node = await spawn("--redis-url", url)``.

    Each gets its own folder, port, data dir and log file; all are stopped
    (SIGTERM, then SIGKILL) after the test. ``spawn(..., wait=False)`` returns
    before /heartbeat answers, for start-up failures.
    """
    started: list[ServerProcess] = []

    async def start(*flags: str, wait: bool = True, **options) -> ServerProcess:
        process = ServerProcess(tmp_path / f"node{len(started)}", flags, **options)
        started.append(process)
        await process.start(wait=wait)
        return process

    yield start
    for process in reversed(started):
        await process.stop()
