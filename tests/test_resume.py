"""Never miss an alert: socket.io clients resume exactly where they left off, or are told."""

from __future__ import annotations

import asyncio

import pytest
import socketio

from notification_service.history import MemoryHistory

from .support import WAIT, connect_page


async def fire(http, server, code: str, n: int) -> str:
    async with http.get(f"{server.url}/notify?code={code}&event=tick&n={n}") as response:
        return (await response.json())["id"]


async def test_every_event_carries_its_metadata(server, pages, http):
    page = await pages(query="code=meta")
    event_id = await fire(http, server, "meta", 1)
    await page.wait_for("TICK")
    [(data, meta)] = page.with_meta("TICK")
    assert data["n"] == "1"
    assert meta["id"] == event_id and meta["channel"] == "meta" and meta["replayed"] is False
    assert isinstance(meta["time"], float)


async def test_reconnect_with_last_id_gets_exactly_what_was_missed_then_live(server, http):
    page = await connect_page(server.url, query="code=r1")
    ids = [await fire(http, server, "r1", n) for n in range(3)]
    await page.wait_for("TICK", count=3)
    await page.close()
    missed = [await fire(http, server, "r1", n) for n in range(3, 6)]

    back = await connect_page(server.url, auth={"code": "r1", "lastEventId": ids[-1]})
    replayed = await back.wait_for("TICK", count=3)
    assert [d["n"] for d in replayed] == ["3", "4", "5"]
    assert [m["id"] for _d, m in back.with_meta("TICK")] == missed
    assert all(m["replayed"] for _d, m in back.with_meta("TICK"))
    await fire(http, server, "r1", 6)
    ticks = await back.wait_for("TICK", count=4)
    assert [d["n"] for d in ticks] == ["3", "4", "5", "6"]
    assert back.with_meta("TICK")[-1][1]["replayed"] is False
    assert back.named("RESUME_GAP") == []
    await back.close()


async def test_resume_by_register_answers_how_many_were_replayed(server, pages, http):
    first = await fire(http, server, "r2", 0)
    for n in range(1, 4):
        await fire(http, server, "r2", n)
    page = await pages()
    answer = await page.emit("REGISTER", {"code": "r2", "lastEventId": first})
    assert answer == {"ok": True, "code": "r2", "replayed": 3}
    assert [d["n"] for d in await page.wait_for("TICK", count=3)] == ["1", "2", "3"]


async def test_publishes_racing_the_replay_arrive_once_and_in_order(server, http):
    seen = await connect_page(server.url, query="code=race")
    start_id = await fire(http, server, "race", 0)
    await seen.close()
    for n in range(1, 50):
        await fire(http, server, "race", n)

    async def keep_firing() -> None:
        for n in range(50, 250):
            await fire(http, server, "race", n)

    firing = asyncio.create_task(keep_firing())
    await asyncio.sleep(0)  # let the publisher start before the client resumes
    back = await connect_page(server.url, auth={"code": "race", "lastEventId": start_id})
    await firing
    ticks = await back.wait_for("TICK", count=249)
    assert [int(d["n"]) for d in ticks] == list(range(1, 250))
    await back.close()


@pytest.mark.server(history_size=3)
async def test_too_old_id_gets_a_gap_notice_then_what_is_kept(server, pages, http):
    ids = [await fire(http, server, "g1", n) for n in range(10)]
    page = await pages(auth={"code": "g1", "lastEventId": ids[1]})
    [notice] = await page.wait_for("RESUME_GAP")
    assert notice["channel"] == "g1" and notice["lastEventId"] == ids[1]
    assert notice["available"] == 3
    assert [d["n"] for d in await page.wait_for("TICK", count=3)] == ["7", "8", "9"]
    assert [name for name, _ in page.received if name in ("RESUME_GAP", "TICK")][0] == "RESUME_GAP"


async def test_id_from_another_epoch_is_a_gap(server, http):
    await fire(http, server, "g2", 1)
    page = await connect_page(server.url, auth={"code": "g2", "lastEventId": "0ld3p0ch-41"})
    [notice] = await page.wait_for("RESUME_GAP")
    assert notice["available"] == 1
    assert [d["n"] for d in await page.wait_for("TICK")] == ["1"]
    await page.close()


async def test_one_argument_python_handlers_can_opt_out_of_metadata(server, http):
    client = socketio.AsyncClient(reconnection=False)
    arrived = asyncio.get_running_loop().create_future()
    client.on("TICK", lambda data: arrived.set_result(data))  # one argument only
    await client.connect(f"{server.url}?code=plain&meta=0", transports=["websocket"])
    try:
        await fire(http, server, "plain", 7)
        assert (await asyncio.wait_for(arrived, WAIT))["n"] == "7"
    finally:
        await client.disconnect()


def test_history_bounds_count_age_bytes_and_channels():
    now = [1000.0]
    history = MemoryHistory(per_channel=5, max_age=60, max_bytes=10_000, max_channels=3,
                            epoch="e", clock=lambda: now[0])
    first = history.append("a", "X", 1)
    for n in range(2, 8):
        history.append("a", "X", n)
    assert [e.data for e in history.recent("a")] == [3, 4, 5, 6, 7]
    assert history.since("a", first.id).gap is True
    assert history.since("a", "e-2").gap is False  # 2 is the newest dropped: nothing lost after it
    assert [e.data for e in history.since("a", "e-5").events] == [6, 7]

    now[0] += 61
    assert history.recent("a") == []  # expired
    assert history.since("a", "e-7").gap is False
    assert history.since("a", "e-6").gap is True

    for channel in ("b", "c", "d", "e"):
        history.append(channel, "X", channel)
    assert history.recent("b") == []  # "a", then "b": least recently published, forgotten
    assert history.since("b", "e-7").gap is True  # b's event 8 is gone
    assert history.since("b", "e-8").gap is False  # the client saw it before it went

    big = MemoryHistory(per_channel=100, max_bytes=10_000, epoch="f")
    for n in range(100):
        big.append("x", "X", "y" * 998)  # 1000 bytes each as JSON, plus bookkeeping
    kept = big.recent("x")
    assert 5 <= len(kept) < 10 and 9_000 < big.total_bytes <= 10_000
    assert [event.data for event in kept] == ["y" * 998] * len(kept)


def test_ids_increase_per_channel_across_channels():
    history = MemoryHistory(epoch="e")
    ids = [history.append(channel, "X", None).id for channel in ("a", "b", "a", "c", "a")]
    assert ids == ["e-1", "e-2", "e-3", "e-4", "e-5"]


async def test_polling_returns_what_was_missed_in_order(server, http):
    ids = [await fire(http, server, "poll1", n) for n in range(4)]
    async with http.get(f"{server.url}/channels/poll1/events", params={"since": ids[1]}) as response:
        body = await response.json()
    assert [e["data"]["n"] for e in body["events"]] == ["2", "3"]
    assert [e["id"] for e in body["events"]] == ids[2:]
    assert body["gap"] is False and body["lastEventId"] == ids[3]
    async with http.get(f"{server.url}/channels/poll1/events", params={"since": ids[3]}) as response:
        body = await response.json()
    assert body == {"channel": "poll1", "events": [], "gap": False, "lastEventId": ids[3]}


@pytest.mark.server(history_size=2, admin_token="adm")
async def test_polling_reports_gaps_and_respects_private_channels(server, http):
    ids = [await fire(http, server, "poll2", n) for n in range(5)]
    async with http.get(f"{server.url}/channels/poll2/events?since={ids[0]}") as response:
        body = await response.json()
    assert body["gap"] is True and [e["data"]["n"] for e in body["events"]] == ["3", "4"]
    async with http.get(f"{server.url}/channels/team::board/events") as response:
        assert response.status == 403 and (await response.json())["code"] == 40302
    async with http.get(f"{server.url}/channels/team::board/events",
                        headers={"Authorization": "Bearer adm"}) as response:
        assert response.status == 200


async def test_a_restart_changes_the_epoch_and_resuming_clients_hear_of_the_gap(serve, http):
    before = await serve()
    last_seen = await fire(http, before, "restart", 1)
    await before.stop()
    after = await serve(port=before.port, data_dir=before.settings.data_dir)
    new_id = await fire(http, after, "restart", 2)
    assert new_id.split("-")[0] != last_seen.split("-")[0]
    page = await connect_page(after.url, auth={"code": "restart", "lastEventId": last_seen})
    [notice] = await page.wait_for("RESUME_GAP")
    assert notice["lastEventId"] == last_seen
    assert [d["n"] for d in await page.wait_for("TICK")] == ["2"]
    await page.close()
