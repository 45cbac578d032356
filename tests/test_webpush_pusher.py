"""solidwebpush's verbs through the Python API: blocking, nonblocking and wait()."""

from __future__ import annotations

import orjson
import pytest

from notification_service.errors import ApiError
from notification_service.webpush.sender import PayloadTooLarge
from notification_service.webpush.service import PUSHER_KEY

from .pushservice import push_server, push_service  # noqa: F401
from .support import connect_page


async def test_solidwebpush_workflow(push_server, push_service):
    pusher = push_server.app[PUSHER_KEY]
    assert pusher.getUrlB64PublicKey() == pusher.get_url_b64_public_key()
    alice, bob = push_service.subscriber(), push_service.subscriber()
    assert await pusher.new_subscription("alice", alice.to_json(), group=13)
    assert await pusher.newSubscription("bob", orjson.dumps(bob.to_json()).decode(), 13)

    report = await pusher.notify("alice", {"title": "Notification Title", "body": "Hello World"})
    assert report.sent == 1
    [delivery] = await push_service.wait_for(alice)
    assert orjson.loads(delivery.plaintext) == {"title": "Notification Title", "body": "Hello World"}

    assert (await pusher.notify_all("Hello group", 13)).sent == 2
    assert (await pusher.notifyAll("Hello everyone")).sent == 2
    assert [d.plaintext for d in await push_service.wait_for(bob, 2)] == [b"Hello group",
                                                                         b"Hello everyone"]
    assert await pusher.remove_subscription("alice") == 1
    assert (await pusher.notify("alice", "gone")).sent == 0


async def test_nonblocking_then_wait(push_server, push_service):
    pusher = push_server.app[PUSHER_KEY]
    browsers = [push_service.subscriber() for _ in range(3)]
    for n, browser in enumerate(browsers):
        await pusher.new_subscription(f"user{n}", browser.to_json(), group="all3")
    assert await pusher.notify_all("one", "all3", nonblocking=True) is None
    assert await pusher.notify("user0", "two", nonblocking=True) is None
    assert await pusher.send_notification(browsers[2].to_json(), "three", nonblocking=True) is None
    await pusher.wait()
    assert [len(push_service.received(b)) for b in browsers] == [2, 1, 2]
    assert push_service.received(browsers[2])[1].plaintext == b"three"


async def test_send_notification_to_subscriptions_not_stored(push_server, push_service):
    pusher = push_server.app[PUSHER_KEY]
    browsers = [push_service.subscriber() for _ in range(2)]
    report = await pusher.sendNotificationToAll([b.to_json() for b in browsers], "direct",
                                                ttl=30, urgency="low", topic="t")
    assert report.sent == 2
    delivery = (await push_service.wait_for(browsers[0]))[0]
    assert (delivery.headers["TTL"], delivery.headers["Urgency"]) == ("30", "low")
    with pytest.raises(ApiError) as refused:
        await pusher.send_notification({**browsers[0].to_json(), "endpoint": "http://10.0.0.1/x"},
                                       "m")
    assert refused.value.code == 40320


async def test_python_notify_reaches_live_pages_and_refuses_big_messages(push_server, push_service):
    pusher = push_server.app[PUSHER_KEY]
    page = await connect_page(push_server.url, query="code=alice")
    try:
        await pusher.notify("alice", {"title": "live"})
        assert await page.wait_for("NOTIFICATION") == [{"title": "live"}]
    finally:
        await page.close()
    with pytest.raises(PayloadTooLarge):
        await pusher.notify("alice", "x" * 4000)
    with pytest.raises(ValueError, match="ttl"):
        await pusher.notify("alice", "m", ttl=-5)
