"""Fixtures shared by every test module (helpers live in tests/support.py)."""

from __future__ import annotations

from typing import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from notification_service.config import Settings

from .support import Page, RunningServer, connect_page, start_server, test_settings


@pytest.fixture
def settings(tmp_path) -> Settings:
    return test_settings(tmp_path)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    running = await start_server(settings)
    yield running
    await running.stop()


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
