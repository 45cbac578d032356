"""The seed-0 GET trigger contract: /notify and the same query on any page URL."""

from __future__ import annotations

import pytest



async def get_json(http, url: str) -> tuple[int, dict]:
    async with http.get(url) as response:
        return response.status, await response.json()


async def test_notify_name_data_and_count(server, pages, http):
    one, two = await pages(query="code=1234"), await pages(query="code=1234")
    status, answer = await get_json(
        http, f"{server.url}/notify?code=1234&event=new%20follower&user=bob&user=alice&amount=5")
    assert status == 200
    assert answer["success"] == 1
    assert answer["count"] == 2
    assert answer["msg"] == "Broadcast event to 2 clients"
    assert answer["event"] == "NEW_FOLLOWER"
    assert answer["id"].endswith("-1")
    expected = {"code": "1234", "event": "new follower", "user": "alice", "amount": "5"}
    assert await one.wait_for("NEW_FOLLOWER") == [expected]
    assert await two.wait_for("NEW_FOLLOWER") == [expected]


async def test_nobody_listening_is_still_success(server, http):
    status, answer = await get_json(http, f"{server.url}/notify?code=nobody&event=X")
    assert status == 200
    assert (answer["success"], answer["count"], answer["msg"]) == (
        1, 0, "Broadcast event to 0 clients")


async def test_other_codes_do_not_receive(server, pages, http):
    mine, other = await pages(query="code=mine"), await pages(query="code=other")
    await get_json(http, f"{server.url}/notify?code=mine&event=A")
    await get_json(http, f"{server.url}/notify?code=other&event=B")
    for code in ("mine", "other"):
        await get_json(http, f"{server.url}/notify?code={code}&event=sentinel")
    # Events arrive in order on a connection: a stray A or B would be there before SENTINEL.
    await mine.wait_for("SENTINEL")
    await other.wait_for("SENTINEL")
    assert mine.named("A") == [{"code": "mine", "event": "A"}] and mine.named("B") == []
    assert other.named("B") == [{"code": "other", "event": "B"}] and other.named("A") == []


async def test_ids_increase_per_code(server, http):
    ids = [(await get_json(http, f"{server.url}/notify?code=c1&event=E"))[1]["id"] for _ in range(3)]
    epochs = {event_id.split("-")[0] for event_id in ids}
    assert len(epochs) == 1
    assert [int(event_id.split("-")[1]) for event_id in ids] == [1, 2, 3]


@pytest.mark.parametrize("query, missing", [
    ("event=FOLLOW", "code"), ("code=1234", "event"), ("", "code")])
async def test_missing_parameter_is_400_naming_it(server, http, query, missing):
    status, answer = await get_json(http, f"{server.url}/notify?{query}")
    assert status == 400
    assert answer["code"] == 40001 and answer["http"] == 400
    assert f"'{missing}'" in answer["error"]


async def test_bad_code_is_400_with_reason(server, http):
    status, answer = await get_json(http, f"{server.url}/notify?code=a%20b&event=X")
    assert status == 400 and answer["code"] == 40002
    assert "' ' at position 1" in answer["error"]


async def test_head_triggers_too(server, pages, http):
    page = await pages(query="code=head")
    async with http.head(f"{server.url}/notify?code=head&event=ping") as response:
        assert response.status == 200
    await page.wait_for("PING")


async def test_page_url_with_event_triggers_instead_of_serving(server, pages, http):
    page = await pages(query="code=1234")
    status, answer = await get_json(
        http, f"{server.url}/sources/alert.html?code=1234&event=FOLLOW&user=bob")
    assert status == 200 and answer["count"] == 1
    assert await page.wait_for("FOLLOW") == [{"code": "1234", "event": "FOLLOW", "user": "bob"}]
    # any unknown path as well
    status, answer = await get_json(http, f"{server.url}/whatever?code=1234&event=RAID")
    assert status == 200 and answer["count"] == 1
    await page.wait_for("RAID")


async def test_page_url_without_event_serves_the_page(server, http):
    async with http.get(f"{server.url}/sources/alert.html?code=1234") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/html")
        assert "notificationservice.js" in await response.text()


async def test_api_routes_are_not_captured_by_the_page_form(server, http):
    status, answer = await get_json(http, f"{server.url}/heartbeat?code=1&event=X")
    assert (status, answer) == (200, {"heartbeat": "OK"})


async def test_heartbeat_and_health(server, http):
    assert await get_json(http, f"{server.url}/heartbeat") == (200, {"heartbeat": "OK"})
    status, body = await get_json(http, f"{server.url}/health")
    assert status == 200 and body["status"] == "ok"


async def test_no_route_lists_codes(server, pages, http):
    await pages(query="code=secret-code")
    for path in ("/clients", "/codes", "/connections"):
        async with http.get(server.url + path) as response:
            assert response.status in (401, 403, 404)
            assert "secret-code" not in await response.text()


@pytest.mark.server(publish_token="s3cret")
async def test_publish_token_guards_triggers(server, http):
    status, answer = await get_json(http, f"{server.url}/notify?code=1&event=X")
    assert (status, answer["code"]) == (401, 40101)
    status, answer = await get_json(http, f"{server.url}/notify?code=1&event=X&token=nope")
    assert (status, answer["code"]) == (403, 40301)
    status, answer = await get_json(http, f"{server.url}/notify?code=1&event=X&token=s3cret")
    assert status == 200
    async with http.get(f"{server.url}/notify?code=1&event=X",
                        headers={"Authorization": "Bearer s3cret"}) as response:
        assert response.status == 200


@pytest.mark.server(publish_token="s3cret")
async def test_token_is_never_part_of_the_event_data(server, pages, http):
    page = await pages(query="code=1")
    await get_json(http, f"{server.url}/notify?code=1&event=X&token=s3cret&a=b")
    assert await page.wait_for("X") == [{"code": "1", "event": "X", "a": "b"}]


async def test_logs_mask_codes_at_info_and_never_show_payloads(server, http, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="notification_service")
    await get_json(http, f"{server.url}/notify?code=9876&event=X&user=visible-payload")
    text = caplog.text
    assert "98**" in text
    assert "9876" not in text and "visible-payload" not in text
    assert len([r for r in caplog.records if r.name == "notification_service.hub"]) == 1
