"""GET /metrics: Prometheus counters move with what the server did; only the admin may scrape."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client.parser import text_string_to_metric_families

from .pushservice import WEBPUSH, PushService, push_service  # noqa: F401
from .sse_client import open_stream
from .support import connect_page

ADMIN = "metrics-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


async def scrape(http, url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample as {(name, sorted labels): value}."""
    async with http.get(url + "/metrics", headers=AUTH) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_counters_move_after_publishing(serve, http):
    server = await serve(admin_token=ADMIN)
    before = await scrape(http, server.url)
    page = await connect_page(server.url, query="code=metric1")
    stream = await open_stream(http, server.url, query="code=metric1")
    try:
        during = await scrape(http, server.url)
        assert value(during, "notify_connections", transport="socketio") == 1
        assert value(during, "notify_connections", transport="sse") == 1
        async with http.get(server.url + "/notify",
                            params={"code": "metric1", "event": "follow"}) as response:
            assert (await response.json())["count"] == 2
        async with http.post(server.url + "/broadcast/metric1/raid", json={"n": 1}) as response:
            assert response.status == 200
        await page.wait_for("raid")
        after = await scrape(http, server.url)
    finally:
        await page.close()
        stream.close()
    for way in ("trigger", "broadcast"):
        assert value(after, "notify_published_total", way=way) == value(
            before, "notify_published_total", way=way) + 1
    for transport in ("socketio", "sse"):
        assert value(after, "notify_delivered_total", transport=transport) == 2
    assert value(after, "notify_publish_seconds_count") == 2
    assert value(after, "notify_publish_seconds_sum") > 0
    assert value(after, "notify_history_events") == 2
    assert value(after, "notify_history_bytes") > 0
    no_codes = [key for key in after if any("metric1" in label for label in key[1])]
    assert no_codes == [], "a code appeared as a label"


async def test_resumes_are_counted_by_outcome(serve, http):
    server = await serve(admin_token=ADMIN)
    async with http.get(server.url + "/notify",
                        params={"code": "resume1", "event": "first"}) as response:
        first_id = (await response.json())["id"]
    async with http.get(server.url + "/notify",
                        params={"code": "resume1", "event": "second"}) as response:
        assert response.status == 200
    replayed = await connect_page(server.url, auth={"code": "resume1", "lastEventId": first_id})
    gap = await connect_page(server.url, auth={"code": "resume1", "lastEventId": "gone-5"})
    try:
        await replayed.wait_for("SECOND")
        await gap.wait_for("RESUME_GAP")
        samples = await scrape(http, server.url)
    finally:
        await replayed.close()
        await gap.close()
    assert value(samples, "notify_resumes_total", outcome="replayed") == 1
    assert value(samples, "notify_resumes_total", outcome="gap") == 1


async def test_webpush_answers_are_counted_by_status_class(serve, http, push_service):
    server = await serve(**WEBPUSH, admin_token=ADMIN)
    delivered, gone = push_service.subscriber(), push_service.subscriber()
    for browser in (delivered, gone):
        async with http.post(server.url + "/webpush/subscriptions", json={
                **browser.to_json(), "channels": ["pushed"]}) as response:
            assert response.status in (200, 201)
    push_service.answer(gone, 410)
    async with http.post(server.url + "/webpush/notify",
                         json={"channel": "pushed", "message": "m", "wait": True}) as response:
        answer = await response.json()
        assert (answer["sent"], answer["removed"]) == (1, 1), answer
    samples = await scrape(http, server.url)
    assert value(samples, "notify_webpush_sent_total", status="2xx") == 1
    assert value(samples, "notify_webpush_sent_total", status="4xx") == 1
    assert value(samples, "notify_published_total", way="webpush") == 1
    assert value(samples, "notify_delivered_total", transport="webpush") == 2


async def test_scraping_needs_the_admin_token_unless_public(serve, http):
    guarded = await serve(admin_token=ADMIN)
    async with http.get(guarded.url + "/metrics") as response:
        assert (response.status, (await response.json())["code"]) == (401, 40101)
    async with http.get(guarded.url + "/metrics",
                        headers={"Authorization": "Bearer wrong"}) as response:
        assert (response.status, (await response.json())["code"]) == (403, 40301)
    no_admin = await serve()
    async with http.get(no_admin.url + "/metrics") as response:
        body = await response.json()
        assert (response.status, body["code"]) == (403, 40342)
        assert "--metrics-public" in body["error"]
    public = await serve(metrics_public=True)
    async with http.get(public.url + "/metrics") as response:
        assert response.status == 200
        assert "notify_published_total" in await response.text()


@pytest.mark.redis
async def test_bus_lag_on_a_node_with_redis(serve, http, redis_server):
    """0 while the node's bus reader keeps up; growing while Redis does not answer; 0 again."""
    server = await serve(admin_token=ADMIN, redis_url=redis_server.url, node_name="lag")
    async with http.post(server.url + "/broadcast/lagging/tick", json={"n": 1}) as response:
        assert response.status == 200
    assert value(await scrape(http, server.url), "notify_bus_lag_seconds") == 0
    await redis_server.kill()
    for _ in range(100):  # the reader notices within its block time (1 s)
        lag = value(await scrape(http, server.url), "notify_bus_lag_seconds")
        if lag > 0.5:
            break
        await asyncio.sleep(0.05)
    assert lag > 0.5
    await redis_server.start()
    for _ in range(100):
        lag = value(await scrape(http, server.url), "notify_bus_lag_seconds")
        if lag == 0:
            break
        await asyncio.sleep(0.05)
    assert lag == 0
