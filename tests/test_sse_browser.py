"""A real headless Chromium page listening with EventSource (sources/sse.html)."""

from __future__ import annotations

import pytest

from .sse_client import SECRET, make_token

pytestmark = [pytest.mark.browser, pytest.mark.server(jwt_secret=SECRET)]


async def test_eventsource_page_shows_published_event_as_text(server, browser):
    page = await browser.new_page()
    await page.goto(f"{server.url}/sources/sse.html?code=4321&events=ALERT")
    await page.wait_for_function("() => document.getElementById('state').textContent === 'connected'",
                                 timeout=5000)
    report = await server.hub.publish("4321", "ALERT", {"user": "<b>bob</b>"})
    assert report.listeners["sse"] == 1
    item = page.locator("#log li").first
    await item.wait_for(timeout=5000)
    assert await item.locator(".name").text_content() == "ALERT"
    assert report.event.id in await item.locator(".id").text_content()
    assert await item.locator(".data").text_content() == '{"user":"<b>bob</b>"}'
    assert await page.locator("#log b").count() == 0  # rendered as text, never as HTML
    await page.close()


async def test_eventsource_with_jwt_in_query(server, browser):
    page = await browser.new_page()
    token = make_token("viewer", "site")
    await page.goto(f"{server.url}/sources/sse.html?token={token}")
    await page.wait_for_function("() => document.getElementById('state').textContent === 'connected'",
                                 timeout=5000)
    await server.hub.publish("jwt:site:viewer", "message", "hello viewer")
    item = page.locator("#log li").first
    await item.wait_for(timeout=5000)
    assert await item.locator(".data").text_content() == '"hello viewer"'
    await page.close()
