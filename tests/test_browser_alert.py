"""In a real Chromium: the OBS overlay plays designed alerts in the order its queue decides.

Chromium runs with ``--autoplay-policy=no-user-gesture-required`` (OBS lets
sources play sound). Pages record what they play (``HTMLMediaElement.play``),
say (``speechSynthesis.speak``) and show (every ``.alert`` added, by its
``data-event-id``). Screenshots land in tests/artifacts/.
"""

from __future__ import annotations

import asyncio

import pytest

from .media_samples import animated_gif, tone_wav
from .overlays import control, fire, get_json, put_designs, upload
from .support import ARTIFACTS, WAIT

pytestmark = pytest.mark.browser

RECORDER = """
window.__played = []; window.__playing = []; window.__spoken = [];
const realPlay = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
    const src = this.currentSrc || this.src;
    window.__played.push(src);
    const started = realPlay.apply(this, arguments);
    started.then(() => window.__playing.push(src), () => {});
    return started;
};
if (window.speechSynthesis) {
    window.speechSynthesis.speak = function (utterance) {
        window.__spoken.push({text: utterance.text, rate: utterance.rate});
    };
}
new MutationObserver(records => records.forEach(record => record.addedNodes.forEach(node => {
    if (node.classList && node.classList.contains('alert'))
        console.log('SHOWN ' + node.getAttribute('data-event-id') + ' ' + node.getAttribute('data-event'));
}))).observe(document, {childList: true, subtree: true});
"""












class Shown:
    """Every alert a page put on screen, across its reloads, from its console."""

    def __init__(self, page) -> None:
        self.ids: list[str] = []
        self.names: list[str] = []
        self.errors: list[str] = []
        self._changed = asyncio.Event()
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _console(self, message) -> None:
        if message.text.startswith("SHOWN "):
            _, alert_id, name = message.text.split(" ", 2)
            self.ids.append(alert_id)
            self.names.append(name)
            self._changed.set()

    async def wait_for(self, count: int, timeout: float = 4 * WAIT) -> list[str]:
        async def until() -> list[str]:
            while len(self.ids) < count:
                self._changed.clear()
                await self._changed.wait()
            return self.ids
        return await asyncio.wait_for(until(), timeout)


VIEWPORT = {"width": 1280, "height": 720}


async def open_overlay(browser_or_context, server, query: str, *, init: str = RECORDER):
    """A browser opens a page of its own; a context (one shared profile) opens a tab in it."""
    if hasattr(browser_or_context, "new_context"):
        page = await browser_or_context.new_page(viewport=VIEWPORT)
    else:
        page = await browser_or_context.new_page()
    shown = Shown(page)
    await page.add_init_script(init)
    await page.goto(f"{server.url}/sources/alert.html?{query}")
    await page.wait_for_function("() => document.documentElement.dataset.queue === 'ready' "
                                 "&& document.documentElement.dataset.designs !== undefined")
    return page, shown


SCENE = ("document.documentElement.style.background = "
         "'linear-gradient(135deg, #0f2027 0%, #203a43 50%, #2c5364 100%)'")


async def screenshot(page, name: str) -> None:
    """The overlay over a stand-in for the game (the page itself stays transparent)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.evaluate(SCENE)
    await page.screenshot(path=str(ARTIFACTS / name))
    await page.evaluate("document.documentElement.style.background = ''")


async def test_a_designed_follow_shows_its_template_image_sound_and_speech(server, http, browser):
    gif = (await upload(http, server, animated_gif()))[1]["url"]
    sound = (await upload(http, server, tone_wav()))[1]["url"]
    await put_designs(http, server, "designed", {"events": {"FOLLOW": {
        "title": "New follower", "template": "{user} followed with {bits} bits!",
        "message": "{message}", "image": gif, "sound": sound, "volume": 0.5,
        "tts": "message", "rate": 1.2, "duration": 3, "animation": "pop", "layout": "beside",
        "color": "#fefefe", "accent": "#7cf", "background": "rgba(30, 10, 60, 0.9)",
        "font": "Verdana, sans-serif", "css": ".alert .text { letter-spacing: 3px; }"}}})
    page, shown = await open_overlay(browser, server, "code=designed")
    hostile = "<img src=x onerror=window.hacked=1>"
    alert = await fire(http, server, "designed", "follow", user="bob", bits="50",
                       message=f"hi {hostile}")
    card = page.locator(f'.alert[data-event-id="{alert["id"]}"]')
    await card.wait_for(state="visible")
    assert await card.locator(".title").text_content() == "New follower"
    assert await card.locator(".text").text_content() == "bob followed with 50 bits!"
    assert await card.locator(".message").text_content() == f"hi {hostile}"  # as text
    image = card.locator("img.media")
    assert (await image.get_attribute("src")).endswith(gif)
    await page.wait_for_function("() => document.querySelector('.alert img.media').naturalWidth === 160")
    await page.wait_for_function("() => window.__playing.length > 0")  # the sound really started
    played = await page.evaluate("window.__played")
    assert [url for url in played if url.endswith(sound)], played
    spoken = await page.evaluate("window.__spoken")
    assert [(said["text"], round(said["rate"], 3)) for said in spoken] == [(f"hi {hostile}", 1.2)]
    assert await card.evaluate("node => getComputedStyle(node.querySelector('.text'))"
                               ".letterSpacing") == "3px"
    assert await card.evaluate("node => getComputedStyle(node).flexDirection") == "row"
    assert await page.evaluate("window.hacked === undefined")
    assert await page.locator(".alert img").count() == 1  # only the design's image
    await page.wait_for_timeout(700)  # the pop-in is done: the alert as viewers see it
    await screenshot(page, "overlay-designed-follow.png")
    assert shown.errors == []


async def test_default_design_shows_name_message_and_every_field(server, http, browser):
    await put_designs(http, server, "plain", {"events": {
        "RAID": {"template": "{user} raided with {viewers} viewers!"}}})
    page, shown = await open_overlay(browser, server, "code=plain&status=1&duration=10")
    status = await page.locator("#status").text_content()
    assert "plain" not in status and "queue ready" in status  # never the code on stream
    assert await page.evaluate("getComputedStyle(document.body).backgroundColor") in (
        "rgba(0, 0, 0, 0)", "transparent")  # OBS shows the game through it
    follow = await fire(http, server, "plain", "follow", user="ann", message="first time here")
    card = page.locator(f'.alert[data-event-id="{follow["id"]}"]')
    await card.wait_for(state="visible")
    assert await card.locator(".title").text_content() == "FOLLOW"
    assert await card.locator(".text").text_content() == "ann"
    assert await card.locator(".message").text_content() == "first time here"
    assert (await control(http, server, "plain", action="skip"))[0] == 200
    raid = await fire(http, server, "plain", "raid", user="cara", viewers="42")
    card = page.locator(f'.alert[data-event-id="{raid["id"]}"]')
    await card.wait_for(state="visible")
    assert await card.locator(".text").text_content() == "cara raided with 42 viewers!"
    assert "plain" not in await page.locator("body").text_content()
    assert shown.errors == []


async def test_variations_and_interrupting_events(server, http, browser):
    await put_designs(http, server, "vary", {"events": {
        "CHEER": {"template": "{user} cheered {amount}", "duration": 20, "variations": [
            {"if": "amount >= 1000", "template": "HUGE cheer from {user}!", "accent": "#ff0000"},
            {"if": "message contains hype", "template": "{user} is hyped"}]},
        "RAID": {"template": "RAID by {user}", "mode": "interrupt", "duration": 20}}})
    page, shown = await open_overlay(browser, server, "code=vary")
    small = await fire(http, server, "vary", "cheer", user="ann", amount="5", message="hype!")
    card = page.locator(f'.alert[data-event-id="{small["id"]}"]')
    await card.wait_for(state="visible")
    assert await card.locator(".text").text_content() == "ann is hyped"
    big = await fire(http, server, "vary", "cheer", user="bob", amount="1500")
    assert big["queued_position"] == 1
    raid = await fire(http, server, "vary", "raid", user="cy")
    assert raid["queued_position"] == 0  # cuts in: the cheer on screen goes
    raid_card = page.locator(f'.alert[data-event-id="{raid["id"]}"]')
    await raid_card.wait_for(state="visible", timeout=1500)
    await card.wait_for(state="detached")
    assert shown.ids == [small["id"], raid["id"]]
    assert (await control(http, server, "vary", action="skip"))[0] == 200
    big_card = page.locator(f'.alert[data-event-id="{big["id"]}"]')
    await big_card.wait_for(state="visible")
    assert await big_card.locator(".text").text_content() == "HUGE cheer from bob!"
    assert await big_card.evaluate("node => getComputedStyle(node.querySelector('.title')).color") \
        == "rgb(255, 0, 0)"
    assert shown.errors == []


@pytest.mark.parametrize("animation", ["fade", "slide", "pop"])
async def test_animations_mid_way(server, http, browser, animation):
    gif = (await upload(http, server, animated_gif()))[1]["url"]
    await put_designs(http, server, "anim", {"default": {
        "animation": animation, "image": gif, "duration": 30,
        "template": "{user} just followed!", "title": "New follower"}})
    page, _shown = await open_overlay(browser, server, "code=anim")
    alert = await fire(http, server, "anim", "follow", user="bob")
    card = page.locator(f'.alert[data-event-id="{alert["id"]}"]')
    await card.wait_for(state="attached")
    await page.wait_for_function("() => document.querySelector('.alert img').complete")
    # Freeze the entrance mid-way through its motion (120 of 600 ms: the curve eases out).
    middle = await page.evaluate("""() => {
        const [entrance] = document.querySelector('.alert').getAnimations();
        entrance.pause(); entrance.currentTime = 120;
        return [entrance.animationName, getComputedStyle(document.querySelector('.alert')).opacity];
    }""")
    assert middle[0] == f"alert-{animation}-in"
    assert 0.05 < float(middle[1]) < 1.0 or animation == "pop"
    await screenshot(page, f"overlay-{animation}-in-midway.png")
    assert (await control(http, server, "anim", action="skip"))[0] == 200
    await page.wait_for_function(
        "() => document.querySelector('.alert') && document.querySelector('.alert')"
        f".classList.contains('out-{animation}')")
    await page.evaluate("""() => {
        const [exit] = document.querySelector('.alert').getAnimations();
        exit.pause(); exit.currentTime = 120;
    }""")
    await screenshot(page, f"overlay-{animation}-out-midway.png")


async def test_two_overlays_reloaded_mid_burst_show_each_alert_exactly_once(server, http,
                                                                           browser):
    context = await browser.new_context(viewport=VIEWPORT)  # one profile, like OBS: shared storage
    follows, shown_follows = await open_overlay(
        context, server, "code=burst&events=FOLLOW&duration=0.3&gap=0")
    subs, shown_subs = await open_overlay(context, server, "code=burst&events=SUB&duration=0.3&gap=0")
    sent: dict[str, list[str]] = {"FOLLOW": [], "SUB": []}
    for n in range(8):
        name = "follow" if n % 2 == 0 else "sub"
        sent[name.upper()].append((await fire(http, server, "burst", name, user=f"u{n}"))["id"])
    await shown_follows.wait_for(1)
    await shown_subs.wait_for(1)
    await follows.reload()  # mid-burst: both sources reload (an OBS scene change)
    await subs.reload()
    for n in range(8, 16):
        name = "follow" if n % 2 == 0 else "sub"
        sent[name.upper()].append((await fire(http, server, "burst", name, user=f"u{n}"))["id"])
    assert await shown_follows.wait_for(8) == sent["FOLLOW"]
    assert await shown_subs.wait_for(8) == sent["SUB"]
    for _ in range(100):  # bounded: the last two alerts finish (0.3 s on screen, 1.2 s moving)
        queue = await get_json(http, f"{server.url}/codes/burst/queue")
        if not queue["playing"]:
            break
        await asyncio.sleep(0.1)
    assert queue["playing"] == [] and queue["waiting"] == []
    assert shown_follows.ids == sent["FOLLOW"] and shown_subs.ids == sent["SUB"]
    ids = {await follows.evaluate("document.documentElement.dataset.overlay"),
           await subs.evaluate("document.documentElement.dataset.overlay")}
    assert len(ids) == 2  # one identity per source, though they share one profile
    await context.close()


OBS = """
window.obsstudio = {pluginVersion: "2.24.1",
                    getStatus: callback => callback({streaming: true, recording: false})};
"""


async def test_a_hidden_obs_source_holds_alerts_until_it_is_visible(server, http, browser):
    page, shown = await open_overlay(browser, server, "code=obs&duration=0.5",
                                     init=OBS + RECORDER)
    await page.evaluate("window.dispatchEvent(new CustomEvent('obsSourceVisibleChanged', "
                        "{detail: {visible: false}}))")
    await page.wait_for_function("() => document.documentElement.dataset.visible === 'false'")
    status = await _wait_status(http, server, "obs", lambda o: o["visible"] is False)
    assert (status["connected"], status["streaming"], status["obs"], status["client"]) == (
        True, True, "2.24.1", "overlay/1.0")
    first = await fire(http, server, "obs", "follow", user="held1")
    second = await fire(http, server, "obs", "follow", user="held2")
    assert (first["queued_position"], second["queued_position"]) == (0, 1)
    await page.wait_for_timeout(1000)  # twice an alert's length: nothing may show meanwhile
    assert shown.ids == []
    queue = await get_json(http, f"{server.url}/codes/obs/queue")
    assert [item["id"] for item in queue["waiting"]] == [first["id"], second["id"]]

    await page.evaluate("window.dispatchEvent(new CustomEvent('obsSourceVisibleChanged', "
                        "{detail: {visible: true}}))")
    assert await shown.wait_for(2) == [first["id"], second["id"]]
    await _wait_status(http, server, "obs", lambda o: o["visible"] is True)
    await page.evaluate("window.dispatchEvent(new CustomEvent('obsSourceActiveChanged', "
                        "{detail: {active: false}}))")
    await _wait_status(http, server, "obs", lambda o: o["active"] is False)


async def test_pause_skip_and_replay_act_on_the_overlay_within_a_second(server, http, browser):
    page, shown = await open_overlay(browser, server, "code=live&duration=20")
    assert (await control(http, server, "live", action="pause"))[0] == 200
    await page.wait_for_function("() => document.documentElement.dataset.paused === 'true'",
                                 timeout=1000)
    alert = await fire(http, server, "live", "follow", user="ann")
    await page.wait_for_timeout(600)
    assert shown.ids == []  # paused: it waits
    assert (await control(http, server, "live", action="resume"))[0] == 200
    card = page.locator(f'.alert[data-event-id="{alert["id"]}"]')
    await card.wait_for(state="visible", timeout=1000)

    assert (await control(http, server, "live", action="skip"))[0] == 200
    await card.wait_for(state="detached", timeout=1000)
    assert (await control(http, server, "live", action="replay", id=alert["id"]))[0] == 200
    await card.wait_for(state="visible", timeout=1000)
    assert shown.ids == [alert["id"], alert["id"]]
    assert shown.errors == []




async def _wait_status(http, server, code: str, predicate) -> dict:
    for _ in range(100):  # bounded: presence reports are immediate
        status = await get_json(http, f"{server.url}/codes/{code}/status")
        if status["overlays"] and predicate(status["overlays"][0]):
            return status["overlays"][0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"status never matched: {status}")


async def test_example_page_logs_every_event(server, http, browser):
    page = await browser.new_page()
    await page.goto(f"{server.url}/sources/example.html?code=dev1")
    await page.wait_for_function("() => document.getElementById('status').className === 'registered'")
    async with http.get(f"{server.url}/notify?code=dev1&event=build&step=3") as response:
        assert response.status == 200
    entry = page.locator("#log li").first
    await entry.wait_for()
    text = await entry.text_content()
    assert "BUILD" in text and '"step": "3"' in text


async def test_pages_confirm_receipts(server, http, browser):
    page = await browser.new_page()
    await page.goto(f"{server.url}/sources/example.html?code=receipt1")
    await page.wait_for_function("() => document.getElementById('status').className === 'registered'")
    async with http.get(f"{server.url}/notify?code=receipt1&event=x&wait=3000") as response:
        answer = await response.json()
    assert (answer["count"], answer["acknowledged"]) == (1, 1)


@pytest.mark.redis
async def test_the_real_overlay_on_one_node_plays_a_burst_fired_at_another(spawn, redis_server,
                                                                          http, browser):
    """Two nodes on one Redis: the pages on node A, the burst spread over both nodes."""
    from .cluster import sequence, start_nodes

    a, b = await start_nodes(spawn, redis_server.url, 2)
    context = await browser.new_context(viewport=VIEWPORT)
    follows, shown_follows = await open_overlay(context, a,
                                                "code=nodes&events=FOLLOW&duration=0.2&gap=0")
    every, shown_every = await open_overlay(context, a, "code=nodes&duration=0.2&gap=0")
    names = ["follow", "sub", "follow", "follow", "sub", "follow"]
    answers = await asyncio.gather(*(fire(http, (b, a)[n % 2], "nodes", name, user=f"u{n}")
                                     for n, name in enumerate(names)))
    assert all(isinstance(answer["queued_position"], int) for answer in answers), answers
    published = sorted(answers, key=lambda answer: sequence(answer["id"]))
    in_order = [answer["id"] for answer in published]
    follow_ids = [answer["id"] for answer in published if answer["event"] == "FOLLOW"]
    assert await shown_every.wait_for(len(in_order)) == in_order
    assert await shown_follows.wait_for(len(follow_ids)) == follow_ids
    status = await get_json(http, f"{b.url}/codes/nodes/status")
    assert [(o["node"], o["connected"], o["events"]) for o in status["overlays"]] == [
        ("node0", True, ["FOLLOW"]), ("node0", True, None)]
    for _ in range(100):  # bounded: the last alerts leave the screen
        queue = await get_json(http, f"{b.url}/codes/nodes/queue")
        if not queue["playing"]:
            break
        await asyncio.sleep(0.1)
    assert queue["playing"] == [] and queue["waiting"] == []
    assert shown_every.ids == in_order and shown_follows.ids == follow_ids  # none twice
    assert shown_every.errors == [] and shown_follows.errors == []
    await context.close()
