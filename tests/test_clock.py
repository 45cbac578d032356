"""The clock example end to end: examples/clock.py publishes, sources/clock.html shows it,
and notificationservice.js subscribes again after the server restarts."""

from __future__ import annotations

import asyncio
import sys

import pytest
from aiohttp import web

from notification_service.app import create_app
from notification_service.config import PROJECT_ROOT

from .publishing import post, subscribed_page
from .support import WAIT, RunningServer, require_chromium
from .support import test_settings as make_settings

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


async def start_on(settings, port: int = 0) -> RunningServer:
    app = create_app(settings)
    runner = web.AppRunner(app, shutdown_timeout=settings.shutdown_timeout)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return RunningServer(app, runner, f"http://127.0.0.1:{runner.addresses[0][1]}")


async def run_clock(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(PROJECT_ROOT / "examples" / "clock.py"), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=20)
    return process.returncode, output.decode()


async def test_clock_example_publishes_to_a_page(server):
    page = await subscribed_page(server.url, "time")
    try:
        code, output = await run_clock("--url", server.url, "--count", "2", "--interval", "0.05")
        assert code == 0, output
        assert output.count("update -> time: 1 listener(s)") == 2
        ticks = await page.wait_for("update", count=2)
        assert all(isinstance(tick["time"], int) for tick in ticks)
    finally:
        await page.close()


async def test_clock_example_through_emit(tmp_path):
    server = await start_on(make_settings(tmp_path, secret="s3"))
    try:
        page = await subscribed_page(server.url, "time")
        code, output = await run_clock("--url", server.url, "--count", "1", "--secret", "s3")
        assert code == 0, output
        await page.wait_for("update")
        await page.close()
        code, output = await run_clock("--url", server.url, "--count", "1", "--secret", "bad")
        assert code == 1 and "refused (403)" in output
    finally:
        await server.stop()


@pytest.mark.browser
async def test_clock_page_shows_time_and_resubscribes_after_restart(tmp_path, http):
    chromium = require_chromium()
    playwright_api = pytest.importorskip("playwright.async_api")
    settings = make_settings(tmp_path)
    server = await start_on(settings)
    port = int(server.url.rsplit(":", 1)[1])
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            console: list[str] = []
            page.on("console", lambda message: console.append(message.text))
            page.on("pageerror", lambda error: console.append(str(error)))
            await page.goto(f"{server.url}/sources/clock.html?channel=clock-test")
            status = page.locator("#status")
            await playwright_api.expect(status).to_have_text("subscribed to clock-test",
                                                             timeout=WAIT * 1000), console
            await post(http, f"{server.url}/broadcast/clock-test/update", data='{"time": 111111}')
            await playwright_api.expect(page.locator("#time")).to_have_text(
                "Time: 111111", timeout=WAIT * 1000)

            await server.stop()
            await playwright_api.expect(status).to_contain_text("disconnected", timeout=WAIT * 1000)
            server = await start_on(settings, port)
            await playwright_api.expect(status).to_have_text("subscribed to clock-test",
                                                             timeout=WAIT * 1000)
            _, answer = await post(http, f"{server.url}/broadcast/clock-test/update",
                                   data='{"time": 222222}')
            assert answer["listeners"] == 1
            await playwright_api.expect(page.locator("#time")).to_have_text(
                "Time: 222222", timeout=WAIT * 1000)

            private = await browser.new_page()
            await private.goto(f"{server.url}/sources/clock.html?channel=dir::x&secret=nope")
            await playwright_api.expect(private.locator("#status")).to_contain_text(
                "refused: The space 'dir' has no secret set", timeout=WAIT * 1000)
        finally:
            await browser.close()
            await server.stop()
