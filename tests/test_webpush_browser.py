"""The browser side in a real Chromium: push.html loads the helper, push-sw.js shows pushes.

Headless Chromium cannot subscribe offline (that needs Google's push service),
so the push is handed to the service worker through the DevTools protocol
(ServiceWorker.deliverPushMessage), exactly as a push service's message arrives.
"""

from __future__ import annotations

import asyncio

import pytest

from notification_service.webpush.service import WEBPUSH_KEY

from .pushservice import push_server, push_service  # noqa: F401
from .support import WAIT

pytestmark = pytest.mark.browser


async def test_push_page_registers_the_worker_which_shows_pushes(push_server, browser):
    context = await browser.new_context()
    await context.grant_permissions(["notifications"], origin=push_server.url)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(f"{push_server.url}/sources/push.html?code=1234")
    assert await page.input_value("#channel") == "1234"
    key = push_server.app[WEBPUSH_KEY].public_key
    assert await page.evaluate(
        "k => NotificationServicePush.urlBase64ToUint8Array(k).length", key) == 65
    assert await page.evaluate("NotificationServicePush.supported()") is True

    cdp = await context.new_cdp_session(page)
    registered: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_versions(params: dict) -> None:
        for version in params.get("versions", []):
            if version.get("status") == "activated" and not registered.done():
                registered.set_result(version["registrationId"])

    cdp.on("ServiceWorker.workerVersionUpdated", on_versions)
    await cdp.send("ServiceWorker.enable")
    scope = await page.evaluate(
        "async () => (await NotificationServicePush.registration('')).scope")
    assert scope == f"{push_server.url}/static/"
    registration_id = await asyncio.wait_for(registered, WAIT)

    await cdp.send("ServiceWorker.deliverPushMessage", {
        "origin": push_server.url, "registrationId": registration_id,
        "data": '{"title":"Hello","body":"<b>bold</b>","url":"/sources/push.html","tag":"t"}'})
    await page.wait_for_function(
        "() => document.getElementById('log').textContent.includes('push received')",
        timeout=WAIT * 1000)
    log = await page.text_content("#log")
    assert '"title":"Hello"' in log and "<b>bold</b>" in log  # rendered as text
    shown = await page.evaluate("""async () => {
        const reg = await navigator.serviceWorker.getRegistration('/static/push-sw.js');
        return (await reg.getNotifications()).map(n => [n.title, n.body, n.tag]); }""")
    assert shown == [["Hello", "<b>bold</b>", "t"]]
    await cdp.send("ServiceWorker.deliverPushMessage", {
        "origin": push_server.url, "registrationId": registration_id, "data": "plain text"})
    await page.wait_for_function(
        "() => document.getElementById('log').textContent.includes('plain text')",
        timeout=WAIT * 1000)
    assert errors == []
