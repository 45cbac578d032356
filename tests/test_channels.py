"""Listening on channels from a page: subscribe/unsubscribe, join/leave, private spaces."""

from __future__ import annotations

import logging

import pytest

from .publishing import post
from .support import connect_page

ADMIN = "admin-token"


async def broadcast(http, server, channel: str, event: str, body: str = "1") -> dict:
    status, answer = await post(http, f"{server.url}/broadcast/{channel}/{event}", data=body)
    assert status == 200, answer
    return answer


async def set_space(http, server, space: str, secret: str, token: str = ADMIN):
    return await _put(http, f"{server.url}/admin/spaces/{space}", {"secret": secret}, token)


async def _put(http, url, body, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.put(url, json=body, headers=headers) as response:
        return response.status, await response.json()


async def test_subscribe_by_name_and_unsubscribe(server, pages, http):
    page = await pages()
    assert await page.emit("subscribe", "news") == {"ok": True, "channel": "news"}
    assert await page.emit("subscribe", {"channel": "sport"}) == {"ok": True, "channel": "sport"}
    assert (await broadcast(http, server, "news", "headline", '"a"'))["listeners"] == 1
    assert (await broadcast(http, server, "sport", "score", "[1, 0]"))["listeners"] == 1
    assert await page.wait_for("headline") == ["a"]
    assert await page.wait_for("score") == [[1, 0]]
    assert await page.emit("unsubscribe", "news") == {"ok": True, "channel": "news"}
    assert (await broadcast(http, server, "news", "headline"))["listeners"] == 0
    assert (await broadcast(http, server, "sport", "score"))["listeners"] == 1


async def test_ws_emit_join_and_leave(server, pages, http):
    page = await pages()
    assert await page.emit("join", {"room": "time"}) == {"ok": True, "channel": "time"}
    await broadcast(http, server, "time", "update", '{"time": 1}')
    assert await page.wait_for("update") == [{"time": 1}]
    assert await page.emit("leave", {"room": "time"}) == {"ok": True, "channel": "time"}
    assert (await broadcast(http, server, "time", "update"))["listeners"] == 0


async def test_extra_arguments_are_ignored(server, pages):
    page = await pages()
    answer = await page.client.call("subscribe", ("news", "extra"), timeout=5)
    assert answer == {"ok": True, "channel": "news"}


async def test_subscribe_and_register_code_are_the_same_channels(server, pages, http):
    page = await pages(query="code=1234")
    await page.emit("subscribe", "extra")
    async with http.get(f"{server.url}/notify?code=1234&event=follow") as response:
        assert (await response.json())["count"] == 1
    assert (await broadcast(http, server, "1234", "direct"))["listeners"] == 1
    await page.wait_for("FOLLOW")
    await page.wait_for("direct")


async def test_bad_channel_names_are_refused_in_the_ack(server, pages):
    page = await pages()
    for payload in ("bad channel", "", None, 42, {"room": "x"}, "x" * 257, "::x"):
        answer = await page.emit("subscribe", payload)
        assert answer["ok"] is False and answer["error"], payload
    answer = await page.emit("join", {"secret": "s"})
    assert answer["ok"] is False and "room" in answer["error"]
    errors = await page.wait_for("ERROR", count=8)
    assert all("message" in error for error in errors)


@pytest.mark.server(max_channels_per_connection=2)
async def test_too_many_channels_are_refused(server, pages):
    page = await pages(query="code=first")
    assert (await page.emit("subscribe", "a"))["ok"] is True
    answer = await page.emit("subscribe", "b")
    assert answer["ok"] is False and answer["code"] == 42245
    assert "--max-channels-per-connection" in answer["error"]
    assert (await page.emit("subscribe", "a"))["ok"] is True  # already there: fine
    assert (await page.emit("unsubscribe", "a"))["ok"] is True
    assert (await page.emit("subscribe", "b"))["ok"] is True


@pytest.mark.server(admin_token=ADMIN)
async def test_private_space_right_wrong_missing_and_rotated_secrets(server, pages, http, caplog):
    caplog.set_level(logging.INFO, logger="notification_service")
    page = await pages()
    answer = await page.emit("join", {"room": "dir::files", "secret": "s1"})
    assert answer["ok"] is False and "no secret set" in answer["error"]
    assert "PUT /admin/spaces/dir" in answer["error"]

    assert await set_space(http, server, "dir", "s1") == (200, {"space": "dir", "created": True})
    answer = await page.emit("join", {"room": "dir::files", "secret": "wrong"})
    assert answer["ok"] is False and "Wrong or missing secret" in answer["error"]
    answer = await page.emit("subscribe", "dir::files")
    assert answer["ok"] is False and answer["code"] == 40302
    assert await page.emit("join", {"room": "dir::files", "secret": "s1"}) == \
        {"ok": True, "channel": "dir::files"}
    await broadcast(http, server, "dir::files", "changed", '{"name": "a.txt"}')
    assert await page.wait_for("changed") == [{"name": "a.txt"}]

    # Rotation: new joins need the new secret; those already in stay.
    assert await set_space(http, server, "dir", "s2") == (200, {"space": "dir", "created": False})
    late = await pages()
    refused = await late.emit("subscribe", {"channel": "dir::other", "secret": "s1"})
    assert refused["ok"] is False
    accepted = await late.emit("subscribe", {"channel": "dir::other", "secret": "s2"})
    assert accepted == {"ok": True, "channel": "dir::other"}
    await late.close()
    assert (await broadcast(http, server, "dir::files", "changed"))["listeners"] == 1
    refusals = [r.getMessage() for r in caplog.records if "refused join" in r.getMessage()]
    assert any("Wrong or missing secret" in line for line in refusals)
    assert all("s1" not in line.replace("dir::", "") for line in refusals), "secrets must not be logged"


async def test_space_secrets_survive_a_restart(serve, http):
    first = await serve(admin_token=ADMIN)
    assert (await set_space(http, first, "shop", "k1"))[0] == 200
    await first.stop()
    second = await serve(admin_token=ADMIN, data_dir=first.settings.data_dir)
    page = await connect_page(second.url)
    answer = await page.emit("join", {"room": "shop::orders", "secret": "k1"})
    assert answer == {"ok": True, "channel": "shop::orders"}
    await page.close()
    async with http.delete(f"{second.url}/admin/spaces/shop",
                           headers={"Authorization": f"Bearer {ADMIN}"}) as response:
        assert await response.json() == {"space": "shop", "deleted": True}
    await second.stop()
    third = await serve(admin_token=ADMIN, data_dir=first.settings.data_dir)
    page = await connect_page(third.url)
    answer = await page.emit("join", {"room": "shop::orders", "secret": "k1"})
    await page.close()
    assert answer["ok"] is False and "no secret set" in answer["error"]


async def test_admin_route_needs_the_admin_token(serve, http):
    without = await serve()
    status, answer = await set_space(http, without, "dir", "s")
    assert (status, answer["code"]) == (403, 40342) and "--admin-token" in answer["error"]
    server = await serve(admin_token=ADMIN, publish_token="pub")
    assert (await _put(http, f"{server.url}/admin/spaces/dir", {"secret": "s"}, None))[0] == 401
    assert (await set_space(http, server, "dir", "s", token="pub"))[0] == 403
    status, answer = await set_space(http, server, "dir", "")
    assert (status, answer["code"]) == (422, 42244)
    status, answer = await _put(http, f"{server.url}/admin/spaces/dir", ["s"], ADMIN)
    assert status == 422
    status, answer = await set_space(http, server, "bad%20space", "s")
    assert status == 422 and "A space is" in answer["error"]


async def test_schema_version_is_recorded(tmp_path):
    import sqlite3

    from notification_service.spaces import SCHEMA_VERSION, SqliteSpaceSecrets

    store = SqliteSpaceSecrets(tmp_path / "s.sqlite3")
    await store.open()
    await store.put("a", "b")
    assert await store.load_all() == {"a": "b"}
    await store.close()
    with sqlite3.connect(tmp_path / "s.sqlite3") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


async def test_stopping_the_server_disconnects_pages_at_once(server, pages):
    import asyncio
    import time

    page = await pages()
    gone = asyncio.get_running_loop().create_future()
    page.client.on("disconnect",
                   lambda *_: gone.done() or gone.set_result(time.monotonic()))
    closed_early = await pages()
    await closed_early.close()  # just before shutdown: used to hang it forever
    started = time.monotonic()
    await server.stop()
    assert await asyncio.wait_for(gone, 5) - started < 1
