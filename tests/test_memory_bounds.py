"""History and the idempotency cache are bounded in real memory (hardening rows 2 and 3).

A JSON byte count is not memory: 64 KiB of ``[{},{},...]`` is about 1 MB of
Python objects. These tests attack a real server process as the issue did and
read its resident memory, then check the in-memory accounting against
tracemalloc and the age bound on a channel nobody touches again.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

import aiohttp
import pytest

from notification_service.history import MemoryHistory
from notification_service.idempotency import FirstAnswer, IdempotencyCache

MiB = 1024 * 1024
EMPTY_OBJECTS = b"[" + b",".join([b"{}"] * 21_845) + b"]"  # 64 KiB of JSON, ~1 MB decoded
GENEROUS = ("--publish-rate", "100000/min")  # the rate limit is not what is measured here


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def broadcast(http: aiohttp.ClientSession, url: str, body: bytes,
                    key: str | None = None) -> dict:
    query = f"?idempotency_key={key}" if key else ""
    async with http.post(f"{url}{query}", data=body,
                         headers={"Content-Type": "application/json"}) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def warm_up(http: aiohttp.ClientSession, url: str) -> None:
    """Small publishes first, so the server's own first-request allocations are not counted."""
    for n in range(50):
        await broadcast(http, f"{url}/broadcast/warm{n % 5}/x", b'{"n": 1}', key=f"w{n}")


async def test_history_bound_holds_in_real_memory_under_decoded_size_attack(spawn, http):
    """Row 3: 200 events of 64 KiB ``[{},{},...]`` under --history-bytes 8 MiB took +197 MB."""
    bound = 8 * MiB
    node = await spawn("--history-bytes", str(bound), *GENEROUS)
    await warm_up(http, node.url)
    before = rss(node.pid)
    for n in range(200):
        await broadcast(http, f"{node.url}/broadcast/c{n}/x", EMPTY_OBJECTS)
    grown = rss(node.pid) - before
    print(f"\n200 x 64 KiB [{{}},...] under --history-bytes 8 MiB: RSS +{grown / MiB:.1f} MiB")
    assert grown <= 2 * bound
    async with http.get(f"{node.url}/channels/c199/events") as response:
        [event] = (await response.json())["events"]  # the newest is kept, decoded as sent
    assert event["data"] == [{}] * 21_845


async def test_idempotency_keys_keep_the_answer_not_the_event(spawn, http):
    """Row 2: 500 x 64 KB keyed publishes under --history-bytes 1 MiB took +30 MB (+1.4 without keys)."""
    history_bound = cache_bound = 1 * MiB
    node = await spawn("--history-bytes", str(history_bound),
                       "--idempotency-bytes", str(cache_bound), *GENEROUS)
    await warm_up(http, node.url)
    body = b'{"blob": "' + b"x" * 65_000 + b'"}'
    before = rss(node.pid)
    answers = [await broadcast(http, f"{node.url}/broadcast/keyed/x", body, key=f"k{n}")
               for n in range(500)]
    grown = rss(node.pid) - before
    print(f"\n500 x 64 KB keyed publishes under --history-bytes 1 MiB, --idempotency-bytes "
          f"1 MiB: RSS +{grown / MiB:.1f} MiB")
    assert grown <= 2 * (history_bound + cache_bound)
    for n in (0, 499):  # both still remembered: a retry gets the first answer
        again = await broadcast(http, f"{node.url}/broadcast/keyed/x", body, key=f"k{n}")
        assert again == {**answers[n], "duplicate": True}


def held_by(build) -> tuple[object, int]:
    """What ``build()`` returns and the memory it holds after the garbage is gone."""
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        built = build()
        gc.collect()
        return built, tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("shape", ["many small channels", "few large events"])
def test_history_counts_what_it_really_holds(shape):
    def build() -> MemoryHistory:
        history = MemoryHistory(max_bytes=64 * MiB)
        if shape == "many small channels":
            for n in range(20_000):
                history.append(f"code{n}", "NEW_FOLLOWER", {"user": f"u{n}"})
        else:
            for n in range(300):
                history.append(f"c{n % 3}", "X", [{}] * 5_000)
        return history

    history, held = held_by(build)
    print(f"\n{shape}: counted {history.total_bytes / MiB:.2f} MiB, held {held / MiB:.2f} MiB")
    assert held <= 1.25 * history.total_bytes


def test_a_channel_nobody_touches_again_expires_by_age():
    now = [1000.0]
    history = MemoryHistory(max_age=60, epoch="e", clock=lambda: now[0])
    history.append("quiet", "X", "x" * 10_000)
    seen = history.append("quiet", "X", 2)
    loaded = history.total_bytes
    now[0] += 61
    history.sweep()  # what the server's periodic sweep runs; no publish, no read of "quiet"
    assert history.event_count() == 0 and history.total_bytes < loaded / 20
    assert history.since("quiet", seen.id).gap is False  # it saw everything: no false gap
    assert history.since("quiet", "e-1").gap is True
    history.append("quiet", "X", 3)  # in use again: remembers what it lost
    assert history.since("quiet", "e-1").gap is True and history.channel_count() == 1


async def test_the_server_sweeps_untouched_history_by_itself(serve, http):
    server = await serve(history_age=1)
    async with http.post(f"{server.url}/broadcast/quiet/x", json={"n": 1}) as response:
        assert response.status == 200
    history = server.hub.history
    assert history.event_count() == 1
    for _ in range(50):  # the sweep runs every second: gone within 2 s, nothing published
        if history.event_count() == 0:
            break
        await asyncio.sleep(0.1)
    assert history.event_count() == 0


def test_idempotency_cache_is_bounded_in_count_and_bytes_oldest_first():
    clock = [0.0]
    cache = IdempotencyCache(window=300, max_keys=100, max_bytes=64 * 1024,
                             clock=lambda: clock[0])

    def answer(n: int) -> FirstAnswer:
        return FirstAnswer(f"e-{n}", "X", 1.0, {"socketio": 1}, {})

    for n in range(1000):
        cache.put("c", "k" * 150 + str(n), answer(n))
    assert len(cache) <= 100 and cache.total_bytes <= 64 * 1024
    assert cache.get("c", "k" * 150 + "999").event_id == "e-999"  # the newest stay
    assert cache.get("c", "k" * 150 + "0") is None  # the oldest went first
    clock[0] += 301
    assert cache.get("c", "k" * 150 + "999") is None and cache.total_bytes == 0
