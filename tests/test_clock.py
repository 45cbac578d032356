"""The clock example end to end: examples/clock.py publishes, sources/clock.html shows it,
and notificationservice.js subscribes again after the server restarts."""

from __future__ import annotations

import asyncio
import sys

import pytest

from notification_service.config import PROJECT_ROOT

from .publishing import post, subscribed_page
from .support import WAIT


async def run_clock(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(PROJECT_ROOT / "examples" / "clock.py"), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=20)
    return process.returncode, output.decode()


async def test_clock_example_publishes_to_a_page(server, pages):
    page = await subscribed_page(pages, "time")
    code, output = await run_clock("--url", server.url, "--count", "2", "--interval", "0.05")
    assert code == 0, output
    assert output.count("update -> time: 1 listener(s)") == 2
    ticks = await page.wait_for("update", count=2)
    assert all(isinstance(tick["time"], int) for tick in ticks)


@pytest.mark.server(secret="s3")
async def test_clock_example_through_emit(server, pages):
    page = await subscribed_page(pages, "time")
    code, output = await run_clock("--url", server.url, "--count", "1", "--secret", "s3")
    assert code == 0, output
    await page.wait_for("update")
    code, output = await run_clock("--url", server.url, "--count", "1", "--secret", "bad")
    assert code == 1 and "refused (403)" in output


@pytest.mark.browser
async def test_clock_page_shows_time_and_resubscribes_after_restart(serve, browser, http):
    from playwright.async_api import expect  # the browser fixture made sure it is there

    first = await serve()
    page = await browser.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.on("pageerror", lambda error: console.append(str(error)))
    await page.goto(f"{first.url}/sources/clock.html?channel=clock-test")
    status = page.locator("#status")
    await expect(status).to_have_text("subscribed to clock-test", timeout=WAIT * 1000), console
    await post(http, f"{first.url}/broadcast/clock-test/update", data='{"time": 111111}')
    await expect(page.locator("#time")).to_have_text("Time: 111111", timeout=WAIT * 1000)

    await first.stop()
    await expect(status).to_contain_text("disconnected", timeout=WAIT * 1000)
    server = await serve(port=first.port, data_dir=first.settings.data_dir)
    await expect(status).to_have_text("subscribed to clock-test", timeout=WAIT * 1000)
    _, answer = await post(http, f"{server.url}/broadcast/clock-test/update",
                           data='{"time": 222222}')
    assert answer["listeners"] == 1
    await expect(page.locator("#time")).to_have_text("Time: 222222", timeout=WAIT * 1000)

    private = await browser.new_page()
    await private.goto(f"{server.url}/sources/clock.html?channel=dir::x&secret=nope")
    await expect(private.locator("#status")).to_contain_text(
        "refused: The space 'dir' has no secret set", timeout=WAIT * 1000)
