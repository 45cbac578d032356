"""Alert designs and media over HTTP: validated key by key, stored, served, bounded."""

from __future__ import annotations

import json

import pytest

from notification_service.errors import StartupError
from notification_service.webpush.keys import generate_key

from .media_samples import animated_gif, tone_wav
from .overlays import admin, open_overlay, upload

FOLLOW = {"events": {"FOLLOW": {
    "template": "{user} followed!", "image": "https://cdn.example.com/party.gif",
    "sound": "https://cdn.example.com/ding.mp3", "volume": 0.5, "tts": "message",
    "voice": "Google", "rate": 1.1, "duration": 6, "animation": {"in": "slide", "out": "pop"},
    "layout": "behind", "color": "#ffffff", "accent": "rgb(255, 128, 0)",
    "background": "rgba(0, 0, 0, 0.5)", "font": "\"Comic Sans MS\", cursive", "font_size": 48,
    "css": ".alert { border-radius: 0; }", "mode": "queue",
    "variations": [{"if": "amount >= 5", "sound": "https://cdn.example.com/big.mp3"},
                   {"if": "user == 'vip'", "template": "The VIP is here!"}]}}}




async def put(http, server, code: str, body, headers=None) -> tuple[int, dict]:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = admin(server) if headers is None else headers
    async with http.put(f"{server.url}/codes/{code}/alerts", data=data,
                        headers={"Content-Type": "application/json", **headers}) as response:
        return response.status, await response.json()


async def get(http, server, code: str) -> dict:
    async with http.get(f"{server.url}/codes/{code}/alerts") as response:
        assert response.status == 200
        return await response.json()


async def test_a_code_starts_with_the_starter_designs(server, http):
    answer = await get(http, server, "fresh")
    assert answer["source"] == "starter" and answer["revision"] == 0
    assert {"FOLLOW", "SUB", "RAID", "CHEER", "DONATION"} <= set(answer["events"])
    assert answer["events"]["RAID"]["template"] == "{user} raided with {viewers} viewers!"
    assert answer["base"]["message"] == "{message|msg}"  # the name and the message both show
    assert answer["samples"]["RAID"]["viewers"] == "42"


async def test_designs_are_stored_and_read_back(server, http):
    status, answer = await put(http, server, "mine", FOLLOW)
    assert status == 200 and answer["revision"] == 1 and answer["source"] == "stored"
    stored = await get(http, server, "mine")
    assert stored["events"] == FOLLOW["events"] and stored["default"] == {}
    status, again = await put(http, server, "mine", stored)  # what GET answered is accepted
    assert (status, again["revision"]) == (200, 2)
    status, short = await put(http, server, "other", {"default": {"animation": "pop"}})
    assert short["default"]["animation"] == {"in": "pop", "out": "pop"}  # one word: both ways


@pytest.mark.parametrize("body, named", [
    ({"events": {"FOLLOW": {"volume": 2}}}, "events.FOLLOW.volume 2 is outside 0 to 1"),
    ({"events": {"FOLLOW": {"colour": "red"}}}, "events.FOLLOW.colour is not a design key"),
    ({"default": {"animation": "spin"}}, "default.animation 'spin' is not one of fade, slide"),
    ({"default": {"animation": {"in": "fade", "sideways": "pop"}}}, "default.animation.sideways"),
    ({"events": {"FOLLOW": {"variations": [{"if": "amount is big"}]}}},
     "events.FOLLOW.variations[0].if 'amount is big' is not a condition"),
    ({"events": {"FOLLOW": {"variations": [{"if": "amount >= lots"}]}}},
     "events.FOLLOW.variations[0].if >= compares numbers"),
    ({"events": {"FOLLOW": {"variations": [{"if": "amount > 1", "mode": "queue"}]}}},
     "events.FOLLOW.variations[0].mode is not a design key"),
    ({"events": {"FOLLOW": {"variations": [{"sound": ""}]}}},
     "events.FOLLOW.variations[0] needs \"if\""),
    ({"events": {"FOLLOW": {"image": "javascript:alert(1)"}}}, "events.FOLLOW.image"),
    ({"events": {"FOLLOW": {"sound": "media/" + "a" * 64 + ".gif"}}},
     "events.FOLLOW.sound 'media/" + "a" * 64 + ".gif' is not a sound file"),
    ({"events": {"FOLLOW": {"color": "red; background: url(x)"}}}, "events.FOLLOW.color"),
    ({"events": {"FOLLOW": {"mode": "shuffle"}}}, "events.FOLLOW.mode 'shuffle' is not one of"),
    ({"events": {"FOLLOW": {"duration": "5"}}}, "events.FOLLOW.duration is a number"),
    ({"events": {"FOLLOW": {"template": 5}}}, "events.FOLLOW.template is text"),
    ({"events": {"connect": {}}}, "events.connect is not an event name"),
    ({"events": []}, "events maps event names to designs"),
    ({"defaults": {}}, "defaults is not a key of an alert configuration"),
    ([], "the body is an object"),
])
async def test_a_bad_design_is_refused_naming_its_key(server, http, body, named):
    status, answer = await put(http, server, "bad", body)
    assert (status, answer["code"]) == (422, 42270), answer
    assert named in answer["error"]
    assert (await get(http, server, "bad"))["source"] == "starter"  # nothing was stored


async def test_writing_designs_needs_the_admin_token_and_bounded_json(server, http):
    assert (await put(http, server, "c", FOLLOW, headers={}))[0] == 401
    assert (await put(http, server, "c", FOLLOW, headers={"Authorization": "Bearer no"}))[0] \
        == 403
    status, answer = await put(http, server, "c", b"{not json")
    assert (status, answer["code"]) == (422, 42241)
    status, answer = await put(http, server, "c", {"default": {"css": "x" * 300_000}})
    assert (status, answer["code"]) == (413, 41370)
    status, answer = await put(http, server, "bad code!", FOLLOW)
    assert (status, answer["code"]) == (400, 40002)


async def test_overlays_hear_of_new_designs(server, http):
    overlay = await open_overlay(server.url, "notify-me", "ov-1")
    status, answer = await put(http, server, "notify-me", FOLLOW)
    notices = await overlay.wait_notice(1)
    assert notices == [("ALERT_DESIGNS", {"revision": answer["revision"]})]
    await overlay.close()


async def test_designs_survive_a_restart(serve, http):
    first = await serve()
    assert (await put(http, first, "kept", FOLLOW))[0] == 200
    await first.stop()
    second = await serve(data_dir=first.settings.data_dir)
    assert (await get(http, second, "kept"))["events"] == FOLLOW["events"]


@pytest.mark.postgres
async def test_designs_and_media_in_postgresql_serve_every_node(serve, http, postgres_url,
                                                                tmp_path):
    shared = {"database_url": postgres_url, "vapid_key": tmp_path / "vapid.pem"}
    generate_key(shared["vapid_key"])  # every node must have the same VAPID key
    first = await serve(**shared)
    second = await serve(**shared)  # another node: its own data folder
    assert (await put(http, first, "shared", FOLLOW))[0] == 200
    assert (await get(http, second, "shared"))["events"] == FOLLOW["events"]
    gif = animated_gif(size=32, frames=2)
    async with http.post(f"{first.url}/media", data=gif, headers=admin(first)) as response:
        url = (await response.json())["url"]
    async with http.get(f"{second.url}/{url}") as response:
        assert response.status == 200 and await response.read() == gif
        assert response.content_type == "image/gif"
    await first.stop()
    third = await serve(**shared)
    assert (await get(http, third, "shared"))["revision"] == 1


async def test_designs_from_a_json_file(serve, http, tmp_path):
    path = tmp_path / "designs.json"
    path.write_text(json.dumps({"codes": {
        "*": {"events": {"FOLLOW": {"template": "{user} is new here"}}},
        "studio": FOLLOW}}))
    server = await serve(alert_designs=path)
    everyone = await get(http, server, "anyone")
    assert everyone["source"] == "file"
    assert everyone["events"] == {"FOLLOW": {"template": "{user} is new here"}}
    assert (await get(http, server, "studio"))["events"] == FOLLOW["events"]

    path.write_text(json.dumps({"events": {"FOLLOW": {"volume": 7}}}))
    with pytest.raises(StartupError, match=r"designs.json: events.FOLLOW.volume 7 is outside"):
        await serve(alert_designs=path)
    path.write_text("{oops")
    with pytest.raises(StartupError, match=r"designs.json: cannot read the alert designs"):
        await serve(alert_designs=path)




async def test_uploaded_media_are_served_with_their_type_and_ranges(server, http):
    gif, wav = animated_gif(size=40, frames=2), tone_wav(0.2)
    status, answer = await upload(http, server, gif)
    assert status == 200 and answer["url"].startswith("media/") and answer["url"].endswith(".gif")
    assert (await upload(http, server, gif))[1]["url"] == answer["url"]  # same bytes, one file
    async with http.get(f"{server.url}/{answer['url']}") as response:
        assert (response.status, response.content_type) == (200, "image/gif")
        assert "immutable" in response.headers["Cache-Control"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert await response.read() == gif
    status, sound = await upload(http, server, wav)
    async with http.get(f"{server.url}/{sound['url']}", headers={"Range": "bytes=0-11"}) as response:
        assert (response.status, response.content_type) == (206, "audio/wav")
        assert await response.read() == wav[:12]
    for hostile in (b"<svg onload=alert(1)></svg>", b"<!DOCTYPE html><script>", b"MZ\x90\x00"):
        status, refused = await upload(http, server, hostile)
        assert (status, refused["code"]) == (415, 41570)
    assert (await upload(http, server, gif, headers={}))[0] == 401
    async with http.get(f"{server.url}/media/{'0' * 64}.gif") as response:
        assert response.status == 404
    async with http.get(f"{server.url}/media/..%2Falerts.sqlite3") as response:
        assert response.status == 404


@pytest.mark.server(alert_media_max_bytes=2000, alert_media_total_bytes=2500)
async def test_uploads_are_bounded_one_by_one_and_in_total(server, http):
    status, answer = await upload(http, server, animated_gif(size=64, frames=2))
    assert (status, answer["code"]) == (413, 41371)
    assert "--alert-media-max-bytes" in answer["error"]
    small = [tone_wav(0.03, frequency=f) for f in (300, 400)]
    assert all(len(sound) < 2000 for sound in small)
    assert (await upload(http, server, small[0]))[0] == 200
    status, answer = await upload(http, server, small[1])
    assert (status, answer["code"]) == (507, 50770)
    assert "--alert-media-total-bytes" in answer["error"]
