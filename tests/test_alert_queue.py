"""The alert queue on the server: overlays report started/finished, the queue releases the next.

Overlays here are real python-socketio clients speaking overlay.js's protocol
(tests/overlays.py); bots fire real GET triggers; the answers are asserted.
"""

from __future__ import annotations

import asyncio

from notification_service.alerts import queue as queue_module

from .overlays import control, fire, get_json as get, open_overlay, put_designs












async def test_alerts_play_one_after_another_with_their_positions(server, http):
    overlay = await open_overlay(server.url, "q1", "ov-a")
    first = await fire(http, server, "q1", "follow", user="ann")
    second = await fire(http, server, "q1", "follow", user="bob")
    assert (first["queued_position"], second["queued_position"]) == (0, 1)
    await overlay.wait_delivered(second["id"])

    answer = await overlay.next()
    assert answer["play"]["id"] == first["id"]
    assert "data" not in answer["play"]  # the transport delivered it: never sent twice
    assert (await fire(http, server, "q1", "follow", user="cy"))["queued_position"] == 2
    assert (await overlay.next())["play"]["id"] == first["id"], "released, not started: again"
    assert (await overlay.started(first["id"]))["ok"] is True

    queue = await get(http, f"{server.url}/codes/q1/queue")
    assert [item["id"] for item in queue["playing"]] == [first["id"]]
    assert [item["data"]["user"] for item in queue["waiting"]] == ["bob", "cy"]
    assert queue["playing"][0]["overlay"] == "ov-a"

    answer = await overlay.finished(first["id"])
    assert answer["play"]["id"] == second["id"]
    queue = await get(http, f"{server.url}/codes/q1/queue")
    assert queue["recent"][0]["id"] == first["id"]
    assert queue["recent"][0]["outcomes"] == {"ov-a": "played"}
    await overlay.close()


async def test_a_code_without_overlays_answers_no_position(server, http):
    answer = await fire(http, server, "nobody", "follow", user="ann")
    assert "queued_position" not in answer  # not an alert code: nothing kept, nothing said
    overlay = await open_overlay(server.url, "filtered", "ov-f", events=["SUB"])
    answer = await fire(http, server, "filtered", "follow", user="ann")
    assert answer["queued_position"] is None  # an overlay, but not one that takes FOLLOW
    await overlay.close()


async def test_each_overlay_has_its_own_line_with_its_own_filter(server, http):
    follows = await open_overlay(server.url, "two", "ov-follow", events=["FOLLOW"])
    subs = await open_overlay(server.url, "two", "ov-sub", events=["SUB"])
    follow = await fire(http, server, "two", "follow", user="ann")
    sub = await fire(http, server, "two", "sub", user="bob")
    both = await fire(http, server, "two", "follow", user="cy")
    assert (follow["queued_position"], sub["queued_position"], both["queued_position"]) == \
        (0, 0, 1)
    await follows.wait_delivered(both["id"])
    await subs.wait_delivered(sub["id"])
    assert (await follows.next())["play"]["id"] == follow["id"]
    assert (await subs.next())["play"]["id"] == sub["id"]
    await subs.started(sub["id"])
    assert "play" not in await subs.finished(sub["id"])  # nothing else is meant for it
    status = await get(http, f"{server.url}/codes/two/status")
    assert {o["overlay"]: (o["events"], o["connected"]) for o in status["overlays"]} == {
        "ov-follow": (["FOLLOW"], True), "ov-sub": (["SUB"], True)}
    await follows.close()
    await subs.close()


async def test_a_reload_never_repeats_a_started_alert_and_never_skips_a_released_one(server,
                                                                                     http):
    page = await open_overlay(server.url, "reload", "ov-r")
    ids = [(await fire(http, server, "reload", "follow", user=name))["id"]
           for name in ("ann", "bob", "cy")]
    await page.wait_delivered(ids[-1])
    assert (await page.next())["play"]["id"] == ids[0]
    await page.started(ids[0])
    await page.close()  # reloaded while ann was on screen: she counts as shown

    page = await open_overlay(server.url, "reload", "ov-r", last_event_id=ids[0])
    await page.wait_delivered(ids[2])  # the transport replays what came after ann
    answer = await page.next()
    assert answer["play"]["id"] == ids[1]
    await page.close()  # reloaded before bob started: bob is not shown yet

    page = await open_overlay(server.url, "reload", "ov-r", last_event_id=ids[0])
    await page.wait_delivered(ids[2])
    assert (await page.next())["play"]["id"] == ids[1]
    queue = await get(http, f"{server.url}/codes/reload/queue")
    assert [item["outcomes"] for item in queue["recent"]] == [{"ov-r": "played"}]
    await page.close()


async def test_an_overlay_that_vanished_frees_its_line_after_the_lease(server, http,
                                                                       monkeypatch):
    monkeypatch.setattr(queue_module, "FINISH_GRACE", 0.0)
    page = await open_overlay(server.url, "lease", "ov-l")
    first = await fire(http, server, "lease", "follow", user="ann")
    second = await fire(http, server, "lease", "follow", user="bob")
    await page.wait_delivered(second["id"])
    assert (await page.next())["play"]["id"] == first["id"]
    await page.started(first["id"], duration=0.2)
    # It never reports finished (a hung page): the lease runs out and bob is next.
    queue = await get(http, f"{server.url}/codes/lease/queue")
    assert queue["playing"][0]["id"] == first["id"]
    for _ in range(50):  # bounded: the lease is 0.2 s
        queue = await get(http, f"{server.url}/codes/lease/queue")
        if not queue["playing"]:
            break
        await asyncio.sleep(0.05)
    assert queue["playing"] == [] and queue["recent"][0]["outcomes"] == {"ov-l": "played"}
    assert (await page.next())["play"]["id"] == second["id"]
    await page.close()


async def test_modes_skip_if_busy_replace_same_and_interrupt(server, http):
    await put_designs(http, server, "modes", {"events": {
        "HOST": {"mode": "skip_if_busy"}, "VIEWERS": {"mode": "replace_same"},
        "RAID": {"mode": "interrupt"}}})
    page = await open_overlay(server.url, "modes", "ov-m")
    follow = await fire(http, server, "modes", "follow", user="ann")
    await page.wait_delivered(follow["id"])
    await page.next()
    await page.started(follow["id"])
    busy = await fire(http, server, "modes", "host", user="hoster")
    assert busy["queued_position"] is None  # busy: skipped
    first_count = await fire(http, server, "modes", "viewers", count="10")
    second_count = await fire(http, server, "modes", "viewers", count="12")
    assert (first_count["queued_position"], second_count["queued_position"]) == (1, 1)
    raid = await fire(http, server, "modes", "raid", user="raider", viewers="99")
    assert raid["queued_position"] == 0  # at once: the follow on screen is interrupted
    await page.wait_delivered(raid["id"])
    answer = await page.finished(follow["id"], reason="interrupted")
    assert answer["play"]["id"] == raid["id"]
    await page.started(raid["id"])
    answer = await page.finished(raid["id"])
    assert answer["play"]["id"] == second_count["id"]
    queue = await get(http, f"{server.url}/codes/modes/queue")
    outcomes = {item["event"] + ":" + str(item["data"].get("count", "")): item["outcomes"]
                for item in queue["recent"]}
    assert outcomes["HOST:"] == {"ov-m": "busy"}
    assert outcomes["VIEWERS:10"] == {"ov-m": "replaced"}
    assert outcomes["FOLLOW:"] == {"ov-m": "interrupted"}
    await page.close()


async def test_pause_resume_skip_clear_and_replay(server, http):
    page = await open_overlay(server.url, "ctl", "ov-c")
    assert await control(http, server, "ctl", action="pause") == (
        200, {"ok": True, "action": "pause", "paused": True})
    first = await fire(http, server, "ctl", "follow", user="ann")
    await page.wait_delivered(first["id"])
    answer = await page.next()
    assert answer["paused"] is True and "play" not in answer
    await control(http, server, "ctl", action="resume")
    notices = await page.wait_notice(2)
    assert [data["action"] for _name, data in notices] == ["pause", "resume"]
    assert (await page.next())["play"]["id"] == first["id"]
    await page.started(first["id"])

    status, answer = await control(http, server, "ctl", action="skip")
    assert (status, answer["skipped"]) == (200, [first["id"]])
    assert (await page.wait_notice(3))[-1][1] == {"action": "skip", "paused": False,
                                                  "ids": [first["id"]]}
    ids = [(await fire(http, server, "ctl", "sub", user=n))["id"] for n in ("b", "c")]
    status, answer = await control(http, server, "ctl", action="clear")
    assert (status, answer["cleared"]) == (200, 2)
    await page.wait_delivered(ids[-1])
    answer = await page.next()
    assert "play" not in answer and set(answer["done"]) >= set(ids)

    status, answer = await control(http, server, "ctl", action="replay", id=first["id"])
    assert (status, answer["queued_position"]) == (200, 0)
    answer = await page.next(have=[])
    assert answer["play"]["id"] == first["id"]
    assert answer["play"]["data"]["user"] == "ann"  # the overlay no longer has it: the queue's copy

    for body, code in (({"action": "explode"}, 42271), ({"action": "replay"}, 42271),
                       ({"action": "replay", "id": "nope-1"}, 40470),
                       ({"action": "skip", "id": "nope-1"}, 40470)):
        status, answer = await control(http, server, "ctl", **body)
        assert (status, answer["code"]) == (code // 100, code), body
    async with http.post(f"{server.url}/codes/ctl/queue", json={"action": "pause"}) as response:
        assert response.status == 401
    async with http.post(f"{server.url}/codes/ctl/queue", json={"action": "pause"},
                         headers={"Authorization": "Bearer wrong"}) as response:
        assert response.status == 403
    await page.close()


async def test_a_hidden_overlay_holds_alerts_and_drop_drops_them(server, http):
    held = await open_overlay(server.url, "hide", "ov-hold")
    dropping = await open_overlay(server.url, "hide", "ov-drop", hidden="drop")
    await held.show({"visible": False})
    await dropping.show({"visible": False})
    alert = await fire(http, server, "hide", "follow", user="ann")
    assert alert["queued_position"] == 0
    await held.wait_delivered(alert["id"])
    answer = await held.next()
    assert "play" not in answer and answer["held"] == 1
    status = await get(http, f"{server.url}/codes/hide/status")
    assert {o["overlay"]: o["visible"] for o in status["overlays"]} == {
        "ov-hold": False, "ov-drop": False}
    await held.show({"visible": True})
    assert (await held.next())["play"]["id"] == alert["id"]
    await dropping.show({"visible": True})
    assert "play" not in await dropping.next()
    queue = await get(http, f"{server.url}/codes/hide/queue")
    assert queue["playing"][0]["overlay"] == "ov-hold"
    assert queue["playing"][0]["outcomes"] == {"ov-drop": "hidden"}
    await held.close()
    await dropping.close()


async def test_the_queue_survives_a_server_restart(serve, http):
    first = await serve()
    page = await open_overlay(first.url, "keep", "ov-k")
    ids = [(await fire(http, first, "keep", "follow", user=n))["id"] for n in ("ann", "bob")]
    await page.wait_delivered(ids[1])
    await page.next()
    await page.started(ids[0])
    await page.close()
    await first.stop()

    second = await serve(port=first.port, data_dir=first.settings.data_dir)
    queue = await get(http, f"{second.url}/codes/keep/queue")
    assert [item["id"] for item in queue["waiting"]] == [ids[1]]
    page = await open_overlay(second.url, "keep", "ov-k", last_event_id=ids[0])
    answer = await page.next()  # history is gone with the old process: the queue's copy plays
    assert answer["play"]["id"] == ids[1] and answer["play"]["data"]["user"] == "bob"
    await page.close()


async def test_a_new_identity_takes_over_the_line_of_a_source_that_lost_its_own(server, http):
    """OBS restarted, or "shut down source when not visible": sessionStorage is new."""
    page = await open_overlay(server.url, "adopt", "ov-old", events=["FOLLOW"])
    await page.close()
    alert = await fire(http, server, "adopt", "follow", user="ann")
    assert alert["queued_position"] == 0  # waits for the source to come back
    page = await open_overlay(server.url, "adopt", "ov-new", events=["FOLLOW"])
    answer = await page.next(have=[])
    assert answer["play"]["id"] == alert["id"]
    status = await get(http, f"{server.url}/codes/adopt/status")
    assert [o["overlay"] for o in status["overlays"]] == ["ov-new"]
    await page.close()
