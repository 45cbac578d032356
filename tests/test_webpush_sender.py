"""Every push-service answer handled as meant: 410 gone, 429/503 retried, 413, 403, caching."""

from __future__ import annotations

import logging
import time

from notification_service.webpush.service import WEBPUSH_KEY

from .pushservice import WEBPUSH, PushService, push_server, push_service  # noqa: F401
from .test_webpush_api import notify, subscribe


async def test_gone_subscriptions_are_deleted(push_server, push_service, http):
    gone, kept = push_service.subscriber(), push_service.subscriber()
    await subscribe(http, push_server, gone, group="g")
    await subscribe(http, push_server, kept, group="g")
    push_service.answer(gone, 410)
    result = await notify(http, push_server, {"group": "g", "message": "m"})
    assert (result["sent"], result["removed"], result["failed"]) == (1, 1, 0)
    store = push_server.app[WEBPUSH_KEY].store
    assert await store.get(gone.endpoint) is None
    assert (await store.get(kept.endpoint)).last_success is not None
    # an endpoint the push service does not know (404) is gone too
    unknown = push_service.subscriber()
    await subscribe(http, push_server, unknown, id="u")
    del push_service.subscribers[unknown.token]
    assert (await notify(http, push_server, {"id": "u", "message": "m"}))["removed"] == 1
    assert await store.count() == 1


async def test_429_and_503_are_retried_after_retry_after(push_server, push_service, http):
    browser = push_service.subscriber()
    await subscribe(http, push_server, browser, id="alice")
    push_service.answer(browser, 429, Retry_After="1")
    push_service.answer(browser, 503)
    started = time.monotonic()
    result = await notify(http, push_server, {"id": "alice", "message": "late"})
    assert (result["sent"], result["retried"], result["failed"]) == (1, 2, 0)
    times = push_service.request_times[browser.token]
    assert len(times) == 3 and times[1] - times[0] >= 0.95  # honoured Retry-After: 1
    assert time.monotonic() - started < 3
    assert [d.plaintext for d in await push_service.wait_for(browser)] == [b"late"]


async def test_retries_are_bounded(push_server, push_service, http):
    browser = push_service.subscriber()
    await subscribe(http, push_server, browser, id="alice")
    push_service.answer(browser, 429, times=10)
    result = await notify(http, push_server, {"id": "alice", "message": "m"})
    assert (result["sent"], result["retried"], result["failed"]) == (0, 3, 1)
    assert push_service.requests[browser.token] == 4
    # a Retry-After beyond the limit is not waited for at all
    patient = push_service.subscriber()
    await subscribe(http, push_server, patient, id="bob")
    push_service.answer(patient, 503, Retry_After="3600")
    started = time.monotonic()
    result = await notify(http, push_server, {"id": "bob", "message": "m"})
    assert (result["retried"], result["failed"]) == (0, 1) and time.monotonic() - started < 2
    record = await push_server.app[WEBPUSH_KEY].store.get(patient.endpoint)
    assert record.failure_streak == 1  # kept: it may work later


async def test_too_large_is_refused_before_sending(push_server, push_service, http):
    browser = push_service.subscriber()
    await subscribe(http, push_server, browser, id="alice")
    answer = await notify(http, push_server, {"id": "alice", "message": "x" * 3994}, status=413)
    assert answer["code"] == 41320 and "3993" in answer["error"]
    assert push_service.requests.get(browser.token, 0) == 0
    fits = await notify(http, push_server, {"id": "alice", "message": "x" * 3993})
    assert fits["sent"] == 1
    # and a push service that still answers 413 is a failure, not a retry
    push_service.answer(browser, 413)
    assert (await notify(http, push_server, {"id": "alice", "message": "m"}))["failed"] == 1


async def test_our_configuration_errors_are_logged_kept_and_not_retried(push_server, push_service,
                                                                        http, caplog):
    browser = push_service.subscriber()
    await subscribe(http, push_server, browser, id="alice")
    for status in (400, 401, 403):
        push_service.answer(browser, status)
        with caplog.at_level(logging.ERROR, "notification_service.webpush.sender"):
            result = await notify(http, push_server, {"id": "alice", "message": "m"})
        assert (result["failed"], result["retried"], result["removed"]) == (1, 0, 0)
        assert f"refused our VAPID credentials ({status}" in caplog.text
    assert push_service.requests[browser.token] == 3
    record = await push_server.app[WEBPUSH_KEY].store.get(browser.endpoint)
    assert record is not None and record.failure_streak == 3


async def test_vapid_header_is_signed_once_per_push_service_origin(push_server, push_service, http):
    other = PushService()
    await other.start()
    try:
        here, there = push_service.subscriber(), other.subscriber()
        await subscribe(http, push_server, here, group="g")
        await subscribe(http, push_server, there, group="g")
        vapid = push_server.app[WEBPUSH_KEY].sender.vapid_headers
        for n in range(3):
            assert (await notify(http, push_server, {"group": "g", "message": str(n)}))["sent"] == 2
        assert vapid.signatures == 2
        [first, *_] = await push_service.wait_for(here, 3)
        [elsewhere, *_] = await other.wait_for(there, 3)
        assert first.claims["aud"] == push_service.url and elsewhere.claims["aud"] == other.url
        assert 11 * 3600 < first.claims["exp"] - time.time() <= 12 * 3600
        assert other.rejections == [] and push_service.rejections == []
    finally:
        await other.stop()


async def test_vapid_header_is_renewed_before_it_expires(push_server):
    vapid = push_server.app[WEBPUSH_KEY].sender.vapid_headers
    now = [1_000_000.0]
    vapid.clock = lambda: now[0]
    first = vapid.header("https://fcm.googleapis.com")
    now[0] += 10 * 3600
    assert vapid.header("https://fcm.googleapis.com") == first
    now[0] += 1.5 * 3600  # under an hour left
    assert vapid.header("https://fcm.googleapis.com") != first


async def test_large_fan_out_encrypts_in_worker_processes(serve, push_service, http):
    server = await serve(**WEBPUSH, webpush_crypto_processes=1)
    server.app[WEBPUSH_KEY].sender.crypto_batch = 2
    browsers = [push_service.subscriber() for _ in range(5)]
    for browser in browsers:
        await subscribe(http, server, browser, group="many")
    result = await notify(http, server, {"group": "many", "message": {"title": "fan"}})
    assert result["sent"] == 5
    for browser in browsers:
        [delivery] = await push_service.wait_for(browser)
        assert delivery.plaintext == b'{"title":"fan"}'


async def test_stored_endpoint_no_longer_allowed_is_not_contacted(push_server, push_service, http):
    browser = push_service.subscriber()
    await subscribe(http, push_server, browser, id="alice")
    webpush = push_server.app[WEBPUSH_KEY]
    from notification_service.webpush.endpoints import EndpointPolicy
    webpush.sender.policy = EndpointPolicy()  # e.g. restarted without --webpush-allow
    result = await notify(http, push_server, {"id": "alice", "message": "m"})
    assert result["failed"] == 1 and push_service.requests.get(browser.token, 0) == 0


async def test_broken_encryption_workers_fall_back_to_the_server_process(push_server, push_service,
                                                                         http):
    from concurrent.futures import ThreadPoolExecutor

    class BrokenPool(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            return super().submit(self.die)

        @staticmethod
        def die():
            raise RuntimeError("worker died")

    sender = push_server.app[WEBPUSH_KEY].sender
    original = sender.crypto_executor
    sender.crypto_executor, sender.crypto_batch = BrokenPool(1), 2
    try:
        browsers = [push_service.subscriber() for _ in range(3)]
        for browser in browsers:
            await subscribe(http, push_server, browser, group="g")
        assert (await notify(http, push_server, {"group": "g", "message": "m"}))["sent"] == 3
    finally:
        sender.crypto_executor.shutdown()
        sender.crypto_executor = original


async def test_redirects_are_never_followed_and_failures_are_logged_once_per_batch(
        push_server, push_service, http, caplog):
    """The allow-list checked the endpoint, not wherever a push service points next."""
    caplog.set_level(logging.WARNING, logger="notification_service")
    browsers = [push_service.subscriber() for _ in range(3)]
    for browser in browsers:
        await subscribe(http, push_server, browser, group="r")
        push_service.answer(browser, 307, Location="http://127.0.0.1:9/internal")
    result = await notify(http, push_server, {"group": "r", "message": "m"})
    assert (result["sent"], result["failed"]) == (0, 3)
    lines = [r.getMessage() for r in caplog.records if "answered 307" in r.getMessage()]
    assert len(lines) == 1 and "for 3 subscription(s)" in lines[0]
