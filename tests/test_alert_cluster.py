"""The alert box across nodes: overlays on one node, triggers and the console on another.

Two real node processes share a redis-server of the test's own; overlays are
python-socketio clients that play by themselves as overlay.js does
(tests/overlays.py ``Player``); bots fire real GET triggers at the other node.
The alert reaches the overlay the one way events travel (the bus), and the
queue that decides when it plays lives in Redis, so it does not matter which
node an overlay, a bot or the console talks to.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from .cluster import sequence, start_nodes
from .overlays import Player, fire, get_json, open_overlay

pytestmark = pytest.mark.redis

ADMIN = {"Authorization": "Bearer adm"}


async def control(http: Any, node: Any, code: str, **body: Any) -> dict[str, Any]:
    async with http.post(f"{node.url}/codes/{code}/queue", json=body, headers=ADMIN) as response:
        answer = await response.json()
        assert response.status == 200, answer
        return answer


async def player(node: Any, code: str, overlay: str, duration: float, *,
                 events: list[str] | None = None, presence: dict[str, Any] | None = None
                 ) -> Player:
    page = await open_overlay(node.url, code, overlay, events=events, presence=presence)
    return Player(page, duration, events)


def one_at_a_time(spans: list[tuple[str, float, float]]) -> bool:
    return all(before[2] <= after[1] for before, after in zip(spans, spans[1:]))


@pytest.mark.parametrize("spread", [False, True], ids=["fired-at-b", "round-robin"])
async def test_a_burst_fired_at_one_node_plays_once_in_order_on_the_other(spawn, redis_server,
                                                                          http, spread):
    """Fired at node B; or spread over both nodes, as a load balancer does (their queue
    writes then race: the queue still plays them in publish order)."""
    a, b = await start_nodes(spawn, redis_server.url, 2, "--admin-token", "adm")
    every = await player(a, "burst", "ov-all", 0.05,
                         presence={"visible": True, "active": True, "streaming": True})
    subs = await player(b, "burst", "ov-subs", 0.05, events=["SUB"])
    try:
        names = ["follow", "sub", "follow", "follow", "sub", "raid", "follow", "sub", "follow",
                 "follow"]
        targets = [a, b] if spread else [b]
        answers = await asyncio.gather(*(fire(http, targets[number % len(targets)], "burst",
                                              name, user=f"u{number}")
                                         for number, name in enumerate(names)))
        assert all(isinstance(answer["queued_position"], int) for answer in answers), answers
        published = sorted(answers, key=lambda answer: sequence(answer["id"]))
        in_order = [answer["id"] for answer in published]
        sub_ids = [answer["id"] for answer in published if answer["event"] == "SUB"]

        await every.until(lambda p: len(p.spans) == len(names))
        await subs.until(lambda p: len(p.spans) == len(sub_ids))
        assert every.played == in_order  # each once, in queue (publish) order
        assert subs.played == sub_ids
        assert one_at_a_time(every.spans) and one_at_a_time(subs.spans)

        status = await get_json(http, f"{b.url}/codes/burst/status")
        seen = {o["overlay"]: (o["node"], o["connected"], o["streaming"], o["events"])
                for o in status["overlays"]}
        assert seen == {"ov-all": ("node0", True, True, None),
                        "ov-subs": ("node1", True, None, ["SUB"])}
        queue = await get_json(http, f"{a.url}/codes/burst/queue")
        assert queue["playing"] == [] and queue["waiting"] == []
        outcomes = {item["id"]: item["outcomes"] for item in queue["recent"]}
        assert all(outcomes[i] == {"ov-all": "played", "ov-subs": "played"} for i in sub_ids)
    finally:
        await every.close()
        await subs.close()


async def test_the_console_on_one_node_steers_an_overlay_on_the_other(spawn, redis_server, http):
    a, b = await start_nodes(spawn, redis_server.url, 2, "--admin-token", "adm")
    overlay = await player(a, "steer", "ov-1", 30.0)
    try:
        first = await fire(http, b, "steer", "follow", user="ann")
        second = await fire(http, b, "steer", "follow", user="bob")
        await overlay.until(lambda p: p.playing == first["id"])

        await control(http, b, "steer", action="pause")
        assert await overlay.until(lambda p: p.paused, timeout=1.0) < 1.0
        await control(http, b, "steer", action="skip")
        assert await overlay.until(lambda p: p.playing is None, timeout=1.0) < 1.0
        queue = await get_json(http, f"{a.url}/codes/steer/queue")  # paused: nothing released
        assert queue["paused"] and [item["id"] for item in queue["waiting"]] == [second["id"]]

        await control(http, b, "steer", action="resume")
        assert await overlay.until(lambda p: p.playing == second["id"], timeout=1.0) < 1.0
        replay = await control(http, b, "steer", action="replay", id=first["id"])
        assert replay["queued_position"] == 1
        await control(http, b, "steer", action="skip", id=second["id"])
        assert await overlay.until(lambda p: p.playing == first["id"], timeout=1.0) < 1.0
        assert overlay.played == [first["id"], second["id"], first["id"]]
    finally:
        await overlay.close()


async def test_the_queue_survives_a_node_restart_mid_queue(spawn, redis_server, http):
    a, b = await start_nodes(spawn, redis_server.url, 2, "--admin-token", "adm")
    overlay = await player(a, "again", "ov-r", 30.0)
    answers = [await fire(http, b, "again", "follow", user=name) for name in ("ann", "bob", "cy")]
    ids = [answer["id"] for answer in answers]
    await overlay.until(lambda p: p.playing == ids[0])
    await overlay.close()
    await a.stop()  # the overlay's node goes away mid-queue: ann was on screen
    await a.start()
    back = await player(a, "again", "ov-r", 0.05)  # the page reconnects, same identity
    try:
        await back.until(lambda p: len(p.spans) == 2)
        assert back.played == ids[1:]  # ann counts as shown; bob and cy from the queue
        queue = await get_json(http, f"{b.url}/codes/again/queue")
        assert [item["outcomes"] for item in queue["recent"]] == [{"ov-r": "played"}] * 3
    finally:
        await back.close()
