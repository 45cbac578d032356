"""The Web Push HTTP API end to end: a browser-style subscriber receives, decrypts, verifies."""

from __future__ import annotations

import orjson

from notification_service.webpush.service import WEBPUSH_KEY

from .pushservice import (SUBJECT, WEBPUSH, PushService, push_server, push_service,  # noqa: F401
                          webpush)
from .support import connect_page


async def subscribe(http, server, browser, **extra) -> dict:
    async with http.post(f"{server.url}/webpush/subscriptions",
                         json={**browser.to_json(), **extra}) as response:
        body = await response.json()
        assert response.status in (200, 201), body
        return body


async def notify(http, server, body: dict, status: int = 200, **kwargs) -> dict:
    async with http.post(f"{server.url}/webpush/notify", json=body, **kwargs) as response:
        answer = await response.json()
        assert response.status == status, answer
        return answer


async def test_public_key_is_the_application_server_key(push_server, http):
    async with http.get(f"{push_server.url}/webpush/public-key") as response:
        assert response.status == 200
        key = (await response.json())["publicKey"]
    assert key == push_server.app[WEBPUSH_KEY].public_key and len(key) == 87


async def test_notify_by_id_arrives_decrypted_and_correctly_signed(push_server, push_service, http):
    browser = push_service.subscriber()
    answer = await subscribe(http, push_server, browser, id="alice", group="staff")
    assert answer == {"subscribed": True, "new": True, "channels": ["alice", "staff"]}
    message = {"title": "Hello", "body": "World", "url": "/sources/push.html", "tag": "t1"}
    result = await notify(http, push_server, {"id": "alice", "message": message})
    assert result["queued"] == 1 and result["sent"] == 1
    assert (result["removed"], result["failed"], result["retried"]) == (0, 0, 0)
    [delivery] = await push_service.wait_for(browser)
    assert orjson.loads(delivery.plaintext) == message
    assert delivery.claims["sub"] == SUBJECT and delivery.claims["aud"] == push_service.url
    assert delivery.headers["TTL"] == "86400"  # one day, never pywebpush's 0
    assert push_service.rejections == []


async def test_targets_group_channel_and_all(push_server, push_service, http):
    alice, bob, carol = (push_service.subscriber() for _ in range(3))
    await subscribe(http, push_server, alice, id="alice", group="staff", channels=["news"])
    await subscribe(http, push_server, bob, id="bob", group="staff")
    await subscribe(http, push_server, carol)
    assert (await notify(http, push_server, {"group": "staff", "message": "g"}))["sent"] == 2
    assert (await notify(http, push_server, {"channel": "news", "message": "n"}))["sent"] == 1
    assert (await notify(http, push_server, {"all": True, "message": "a"}))["sent"] == 3
    assert [d.plaintext for d in await push_service.wait_for(alice, 3)] == [b"g", b"n", b"a"]
    assert [d.plaintext for d in await push_service.wait_for(bob, 2)] == [b"g", b"a"]
    assert [d.plaintext for d in await push_service.wait_for(carol, 1)] == [b"a"]
    nobody = await notify(http, push_server, {"id": "nobody", "message": "x"})
    assert nobody["queued"] == 0 and nobody["sent"] == 0


async def test_ttl_urgency_topic_headers(push_server, push_service, http):
    browser = push_service.subscriber()
    await subscribe(http, push_server, browser, id="u1")
    await notify(http, push_server, {"id": "u1", "message": "m", "ttl": 60, "urgency": "high",
                                     "topic": "score-update"})
    [delivery] = await push_service.wait_for(browser)
    assert delivery.headers["TTL"] == "60"
    assert delivery.headers["Urgency"] == "high" and delivery.headers["Topic"] == "score-update"
    for bad in ({"ttl": -1}, {"ttl": "60"}, {"urgency": "urgent"}, {"topic": "x" * 33},
                {"topic": "no spaces"}):
        answer = await notify(http, push_server, {"id": "u1", "message": "m", **bad}, status=400)
        assert answer["code"] == 40021


async def test_live_event_from_get_trigger_reaches_channel_subscriber(push_server, push_service, http):
    browser = push_service.subscriber()
    await subscribe(http, push_server, browser, channels=["stream42"])
    page = await connect_page(push_server.url, query="code=stream42")
    try:
        async with http.get(f"{push_server.url}/notify?code=stream42&event=new follower"
                            f"&user=bob&body=bob%20follows&push=1") as response:
            answer = await response.json()
        assert answer["count"] == 2  # one page listening + one push queued
        [delivery] = await push_service.wait_for(browser)
        note = orjson.loads(delivery.plaintext)
        assert note["title"] == "NEW_FOLLOWER" and note["body"] == "bob follows"
        assert note["data"]["user"] == "bob" and note["id"] == answer["id"]
        await page.wait_for("NEW_FOLLOWER")
        # without push=1 nothing is pushed
        async with http.get(f"{push_server.url}/notify?code=stream42&event=quiet") as response:
            assert (await response.json())["count"] == 1
        await page.wait_for("QUIET")
        await push_server.app[WEBPUSH_KEY].transport.wait()  # every batch queued so far is sent
        assert len(push_service.received(browser)) == 1
    finally:
        await page.close()


async def test_notify_reaches_live_pages_of_the_same_channel_too(push_server, push_service, http):
    page = await connect_page(push_server.url, query="code=alice")
    try:
        answer = await notify(http, push_server, {"id": "alice", "message": {"title": "hi"}})
        assert answer["listeners"] == 1 and answer["queued"] == 0
        assert await page.wait_for("NOTIFICATION") == [{"title": "hi"}]
    finally:
        await page.close()


async def test_ssrf_refused_at_subscribe_time(push_server, push_service, http):
    browser = push_service.subscriber()
    for endpoint in ("http://10.0.0.1/push/x", "https://169.254.169.254/latest",
                     "http://localhost:6379/", "https://fcm.googleapis.com.evil.example/x"):
        body = {**browser.to_json(), "endpoint": endpoint}
        async with http.post(f"{push_server.url}/webpush/subscriptions", json=body) as response:
            answer = await response.json()
            assert response.status == 403 and answer["code"] == 40320, answer
            assert "push service" in answer["error"] or "http" in answer["error"]
    assert await push_server.app[WEBPUSH_KEY].store.count() == 0


async def test_http_endpoints_refused_without_allow_http(serve, push_service, http):
    server = await serve(**webpush(webpush_allow_http=False))
    async with http.post(f"{server.url}/webpush/subscriptions",
                         json=push_service.subscriber().to_json()) as response:
        answer = await response.json()
    assert response.status == 403 and "--webpush-allow-http" in answer["error"]


async def test_bad_subscriptions_are_refused(push_server, push_service, http):
    good = push_service.subscriber().to_json()
    cases = [
        ({"endpoint": good["endpoint"]}, 400, 40020),
        ({**good, "keys": {"p256dh": "short", "auth": good["keys"]["auth"]}}, 400, 40020),
        ({**good, "keys": {"p256dh": "B" + "A" * 86, "auth": good["keys"]["auth"]}}, 400, 40020),
        ({**good, "id": "bad id!"}, 400, 40020),
        ({**good, "channels": "news"}, 400, 40020),
        ({**good, "channels": ["space::room"]}, 403, 40302),  # private channels need the secret
        ([1, 2], 422, 42220),
    ]
    for body, status, code in cases:
        async with http.post(f"{push_server.url}/webpush/subscriptions", json=body) as response:
            answer = await response.json()
            assert (response.status, answer["code"]) == (status, code), (body, answer)
    async with http.post(f"{push_server.url}/webpush/subscriptions", data=b"{nope",
                         headers={"Content-Type": "application/json"}) as response:
        assert response.status == 422


async def test_resubscribing_updates_and_delete_forgets(push_server, push_service, http):
    browser = push_service.subscriber()
    await subscribe(http, push_server, browser, id="alice")
    again = await subscribe(http, push_server, browser, id="alice", group="vip")
    assert again["new"] is False
    store = push_server.app[WEBPUSH_KEY].store
    assert await store.count() == 1
    async with http.delete(f"{push_server.url}/webpush/subscriptions",
                           json={"endpoint": browser.endpoint}) as response:
        assert response.status == 200 and (await response.json()) == {"removed": 1}
    async with http.delete(f"{push_server.url}/webpush/subscriptions",
                           json={"endpoint": browser.endpoint}) as response:
        assert response.status == 404 and (await response.json())["code"] == 40420
    assert (await notify(http, push_server, {"id": "alice", "message": "x"}))["queued"] == 0


async def test_notify_needs_exactly_one_target_and_a_message(push_server, http):
    for body in ({"message": "x"}, {"id": "a", "group": "b", "message": "x"}, {"all": 1, "message": "x"},
                 {"id": "a"}, {"id": "a", "message": 5}, {"id": "a", "message": {"title": 1}}):
        answer = await notify(http, push_server, body, status=400)
        assert answer["code"] == 40021, body


async def test_notify_requires_the_publish_token_when_set(serve, push_service, http):
    server = await serve(**WEBPUSH, publish_token="s3cret")
    browser = push_service.subscriber()
    await subscribe(http, server, browser, id="alice")  # subscribing needs no token
    body = {"id": "alice", "message": "m"}
    assert (await notify(http, server, body, status=401))["code"] == 40101
    assert (await notify(http, server, body, status=403,
                         headers={"Authorization": "Bearer wrong"}))["code"] == 40301
    ok = await notify(http, server, body, headers={"Authorization": "Bearer s3cret"})
    assert ok["sent"] == 1


async def test_wait_false_answers_at_once_with_the_queued_count(push_server, push_service, http):
    browser = push_service.subscriber()
    await subscribe(http, push_server, browser, id="alice")
    answer = await notify(http, push_server, {"id": "alice", "message": "m", "wait": False},
                          status=202)
    assert answer["queued"] == 1 and "sent" not in answer
    await push_service.wait_for(browser)


async def test_push_service_is_a_real_verifier(push_service, http):
    """The local service rejects what a real one rejects (so passing tests mean something)."""
    browser = push_service.subscriber()
    async with http.post(browser.endpoint, data=b"x", headers={"TTL": "0"}) as response:
        assert response.status == 401
    async with http.post(browser.endpoint, data=b"x", headers={
            "TTL": "0", "Authorization": "vapid t=a.b.c,k=BAAA"}) as response:
        assert response.status == 401
    assert isinstance(push_service, PushService) and len(push_service.rejections) == 2


async def test_replacing_subscription_inherits_id_group_channels(push_server, push_service, http):
    """What push-sw.js sends on pushsubscriptionchange."""
    old, new = push_service.subscriber(), push_service.subscriber()
    await subscribe(http, push_server, old, id="alice", group="staff", channels=["news"])
    answer = await subscribe(http, push_server, new, replaces=old.endpoint)
    assert answer["channels"] == ["alice", "staff", "news"]
    store = push_server.app[WEBPUSH_KEY].store
    assert await store.get(old.endpoint) is None and await store.count() == 1
    assert (await notify(http, push_server, {"channel": "news", "message": "n"}))["sent"] == 1
    assert [d.plaintext for d in await push_service.wait_for(new)] == [b"n"]


async def test_events_without_push_never_touch_the_store(push_server, http):
    store = push_server.app[WEBPUSH_KEY].store
    calls: list[str] = []
    original = store.for_channel

    async def counting(channel: str):
        calls.append(channel)
        return await original(channel)

    store.for_channel = counting
    for _ in range(3):
        async with http.get(f"{push_server.url}/notify?code=c1&event=e") as response:
            assert (await response.json())["count"] == 0
    assert calls == []
    async with http.get(f"{push_server.url}/notify?code=c1&event=e&push=1") as response:
        assert (await response.json())["count"] == 0
    assert calls == ["c1"]


async def test_delete_without_an_endpoint_is_a_clear_400(push_server, http):
    for body in ({}, {"subscription": "x"}, {"endpoint": 5}):
        async with http.delete(f"{push_server.url}/webpush/subscriptions", json=body) as response:
            assert response.status == 400 and (await response.json())["code"] == 40020


async def test_subscriptions_are_capped_but_known_endpoints_can_resubscribe(
        serve, push_service, http):
    server = await serve(**WEBPUSH, webpush_max_subscriptions=2)
    first, second, third = (push_service.subscriber() for _ in range(3))
    await subscribe(http, server, first)
    await subscribe(http, server, second)
    async with http.post(f"{server.url}/webpush/subscriptions",
                         json=third.to_json()) as response:
        body = await response.json()
    assert response.status == 507 and body["code"] == 50720
    assert "--webpush-max-subscriptions" in body["error"]
    assert (await subscribe(http, server, first, group="g"))["new"] is False
