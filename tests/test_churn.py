"""Triggers stay correct while pages connect and disconnect (the original answered 500 then)."""

from __future__ import annotations

import asyncio

from .support import connect_page

TRIGGERS = 1000
CHURNING_PAGES = 50
CONCURRENCY = 20


async def test_churn_never_errors_and_steady_listeners_get_everything_once(server, http):
    steady = [await connect_page(server.url, query="code=churn") for _ in range(3)]
    stop_churn = asyncio.Event()
    churn_cycles = 0

    async def churn(index: int) -> None:
        nonlocal churn_cycles
        while not stop_churn.is_set():
            page = await connect_page(server.url, query="code=churn")
            await page.close()
            churn_cycles += 1

    churners = [asyncio.create_task(churn(i)) for i in range(CHURNING_PAGES)]
    statuses: list[int] = []
    sequence_of: dict[str, int] = {}
    numbers = iter(range(TRIGGERS))

    async def fire() -> None:
        for n in numbers:
            async with http.get(f"{server.url}/notify?code=churn&event=tick&n={n}") as response:
                statuses.append(response.status)
                body = await response.json()
                sequence_of[str(n)] = int(body["id"].split("-")[1])

    try:
        await asyncio.gather(*(fire() for _ in range(CONCURRENCY)))
    finally:
        stop_churn.set()
        await asyncio.gather(*churners)

    assert statuses.count(200) == TRIGGERS
    assert churn_cycles >= CHURNING_PAGES  # pages really came and went during the run
    for page in steady:
        ticks = await page.wait_for("TICK", count=TRIGGERS)
        received = [tick["n"] for tick in ticks]
        assert sorted(received, key=int) == [str(n) for n in range(TRIGGERS)]  # each exactly once
        order = [sequence_of[n] for n in received]
        assert order == sorted(order)  # in publish order
        await page.close()
