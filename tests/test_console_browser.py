"""In a real Chromium, offline: the operator console drives the overlay of an OBS source.

Every request the console makes is watched: anything not for the server is
refused (as with no internet), and the test fails if one was attempted.
"""

from __future__ import annotations

import pytest

from notification_service.alerts.console import CONSOLE_KEY

from .media_samples import animated_gif, tone_wav
from .support import ARTIFACTS
from .test_browser_alert import SCENE, open_overlay

pytestmark = pytest.mark.browser

async def offline_console(browser, server, *, token: str | None = None, base: str = ""):
    """The console with every request to anywhere but the server refused."""
    context = await browser.new_context(viewport={"width": 1440, "height": 1000})
    outside: list[str] = []

    async def only_the_server(route):
        if route.request.url.startswith(server.url):
            await route.continue_()
        else:
            outside.append(route.request.url)
            await route.abort()
    await context.route("**/*", only_the_server)
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    token = token or server.app[CONSOLE_KEY].token
    await page.goto(f"{server.url}{base}/#token={token}")  # "/" leads to the console
    await page.wait_for_selector("#app:not([hidden])")
    return context, page, outside, problems


async def test_the_console_works_offline_and_its_test_button_reaches_the_overlay(server,
                                                                                 browser):
    context, console, outside, problems = await offline_console(browser, server)
    assert console.url == f"{server.url}/console/"  # the token left the address bar
    await console.fill("#add-code-input", "studio42")
    await console.click("#add-code-form button")
    await console.wait_for_selector("#code-view:not([hidden])")
    code_row = console.locator('#code-list li[data-code="studio42"]')
    assert "studio42" not in await code_row.text_content()  # hidden until clicked
    assert "studio42" not in await console.locator("#overlay-url").text_content()

    overlay, shown = await open_overlay(browser, server, "code=studio42&events=FOLLOW,RAID")
    await console.wait_for_selector('#overlay-rows tr[data-overlay] .badge.ok')
    row = await console.locator("#overlay-rows tr").first.text_content()
    assert "visible" in row and "FOLLOW, RAID" in row

    await console.click('#test-buttons button[data-event="RAID"]')
    ids = await shown.wait_for(1)
    card = overlay.locator(f'.alert[data-event-id="{ids[0]}"]')
    assert await card.locator(".text").text_content() == "TestRaider raided with 42 viewers!"
    await console.wait_for_selector(f'#tail li[data-event-id="{ids[0]}"]')
    await console.wait_for_function(
        f"() => document.querySelector('#playing li[data-event-id=\"{ids[0]}\"]') !== null")
    assert "Test alert" in await console.locator("#tests-panel").text_content()

    await console.screenshot(path=str(_artifact("console-overview.png")))  # codes still hidden
    await console.click("#overlay-url button:has-text('Show')")
    assert "sources/alert.html?code=studio42" in \
        await console.locator("#overlay-url").text_content()
    await console.screenshot(path=str(_artifact("console-full.png")), full_page=True)
    assert outside == [] and problems == []
    assert shown.errors == []
    await context.close()


async def test_designing_an_alert_in_the_console_changes_the_overlay(server, browser, tmp_path):
    context, console, outside, problems = await offline_console(browser, server)
    await console.fill("#add-code-input", "designer7")
    await console.click("#add-code-form button")
    await console.wait_for_selector("#code-view:not([hidden])")
    await console.select_option("#design-event", "FOLLOW")
    await console.fill('#designer [data-key="template"]', "{user} is here! Welcome!")
    await console.select_option('#designer [data-key="animation.in"]', "pop")
    await console.select_option('#designer [data-key="layout"]', "beside")
    gif = tmp_path / "star.gif"
    gif.write_bytes(animated_gif())
    await console.set_input_files("#upload-image", str(gif))
    await console.wait_for_function(
        "() => document.querySelector('#designer [data-key=\"image\"]').value.startsWith('media/')")
    sound = tmp_path / "ding.wav"
    sound.write_bytes(tone_wav())
    await console.set_input_files("#upload-sound", str(sound))
    await console.wait_for_function(
        "() => document.querySelector('#designer [data-key=\"sound\"]').value.endsWith('.wav')")
    preview = console.locator("#preview .alert")
    assert await preview.locator(".text").text_content() == "TestFollower is here! Welcome!"
    await console.wait_for_function("() => document.querySelector('#preview .alert img') "
                                    "&& document.querySelector('#preview .alert img').naturalWidth > 0")
    await console.locator("#designer").screenshot(path=str(_artifact("console-designer.png")))

    await console.fill('#designer [data-key="duration"]', "500")  # too long: refused, named
    await console.click("#save")
    await console.wait_for_function("() => document.getElementById('save-state').textContent"
                                    ".includes('events.FOLLOW.duration')")
    assert await console.locator('#designer [data-key="duration"].field-error').count() == 1
    await console.fill('#designer [data-key="duration"]', "6")
    await console.click("#save")
    await console.wait_for_function("() => document.getElementById('save-state').textContent"
                                    ".startsWith('Saved')")

    overlay, shown = await open_overlay(browser, server, "code=designer7")
    await console.click('#test-buttons button[data-event="FOLLOW"]')
    ids = await shown.wait_for(1)
    card = overlay.locator(f'.alert[data-event-id="{ids[0]}"]')
    assert await card.locator(".text").text_content() == "TestFollower is here! Welcome!"
    await overlay.wait_for_function("() => document.querySelector('.alert img.media') "
                                    "&& document.querySelector('.alert img.media').naturalWidth > 0")
    await overlay.wait_for_function("() => window.__playing.some(url => url.endsWith('.wav'))")
    await overlay.wait_for_timeout(700)
    await overlay.evaluate(SCENE)
    await overlay.screenshot(path=str(_artifact("overlay-from-console.png")))
    # Chromium logs the refused save (the 422 asked for above) as a failed load: nothing else.
    assert outside == [] and [p for p in problems if "status of 422" not in p] == []
    await context.close()


async def test_the_console_asks_for_a_token_and_refuses_a_wrong_one(server, browser):
    page = await browser.new_page()
    await page.goto(f"{server.url}/console/")
    await page.wait_for_selector("#sign-in:not([hidden])")
    await page.fill("#token-input", "not-the-token")
    await page.click("#sign-in-form button")
    await page.wait_for_function("() => document.getElementById('sign-in-error').textContent"
                                 ".includes('token is wrong')")
    await page.fill("#token-input", server.app[CONSOLE_KEY].token)
    await page.click("#sign-in-form button")
    await page.wait_for_selector("#app:not([hidden])")


async def test_console_and_overlay_under_a_base_path(serve, browser, http, tmp_path):
    server = await serve(base_path="/live")
    context, console, outside, problems = await offline_console(browser, server, base="/live")
    assert console.url == f"{server.url}/live/console/"
    await console.fill("#add-code-input", "based")
    await console.click("#add-code-form button")
    gif = tmp_path / "star.gif"
    gif.write_bytes(animated_gif(size=48, frames=2))
    await console.select_option("#design-event", "FOLLOW")
    await console.set_input_files("#upload-image", str(gif))
    await console.wait_for_function(
        "() => document.querySelector('#designer [data-key=\"image\"]').value.startsWith('media/')")
    await console.click("#save")
    await console.wait_for_function("() => document.getElementById('save-state').textContent"
                                    ".startsWith('Saved')")
    overlay = await context.new_page()
    await overlay.goto(f"{server.url}/live/sources/alert.html?code=based")
    await overlay.wait_for_function("() => document.documentElement.dataset.queue === 'ready'")
    await console.click('#test-buttons button[data-event="FOLLOW"]')
    await overlay.wait_for_function("() => document.querySelector('.alert img.media') "
                                    "&& document.querySelector('.alert img.media').naturalWidth === 48")
    assert (await overlay.evaluate("document.querySelector('.alert img.media').src")).startswith(
        f"{server.url}/live/media/")
    assert outside == [] and problems == []
    await context.close()


def _artifact(name: str):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name
