"""Chat bots paste the answer into chat: one short sentence, status 200, errors included.
And a bot that retries never doubles an alert."""

from __future__ import annotations

import pytest


async def get_text(http, url: str, **headers) -> tuple[int, str, str]:
    async with http.get(url, headers=headers) as response:
        return response.status, response.headers["Content-Type"], await response.text()


@pytest.mark.parametrize("how", ["reply", "accept", "nightbot"])
async def test_text_reply_when_asked(server, pages, http, how):
    await pages(query="code=4242")
    url = f"{server.url}/notify?code=4242&event=hype"
    headers = {}
    if how == "reply":
        url += "&reply=text"
    elif how == "accept":
        headers["Accept"] = "text/plain"
    else:
        headers["Nightbot-Channel"] = "name=streamer&provider=twitch&providerId=1"
    status, content_type, text = await get_text(http, url, **headers)
    assert (status, content_type) == (200, "text/plain; charset=utf-8")
    assert text == "Sent HYPE to 1 overlay."


async def test_text_reply_for_nobody_listening_masks_the_code(server, http):
    status, _, text = await get_text(http, f"{server.url}/notify?code=987654&event=x&reply=text")
    assert status == 200
    assert text == "Sent X, but no overlay is listening on code 98**."
    assert "987654" not in text


async def test_text_reply_errors_are_200_sentences_under_400_characters(server, http):
    status, _, text = await get_text(http, f"{server.url}/notify?code=1234&reply=text")
    assert status == 200
    assert text.startswith("Could not send: Missing query parameter 'event'")
    status, _, text = await get_text(http, f"{server.url}/notify?code={'x' * 300}!&event=a&reply=text")
    assert status == 200 and text.startswith("Could not send:") and len(text) <= 400


@pytest.mark.server(publish_token="t")
async def test_only_the_token_is_removed_from_event_data(server, pages, http):
    """Seed 0: every query parameter is data; the token is a secret and never passed on."""
    page = await pages(query="code=ctl")
    await get_text(http, f"{server.url}/notify?code=ctl&event=a&reply=text"
                         f"&idempotency_key=k1&push=0&wait=soon&x=1&token=t")
    assert await page.wait_for("A") == [{"code": "ctl", "event": "a", "reply": "text",
                                         "idempotency_key": "k1", "push": "0",
                                         "wait": "soon", "x": "1"}]


async def test_retried_publish_with_same_key_alerts_once(server, pages, http):
    page = await pages(query="code=idem")
    url = f"{server.url}/notify?code=idem&event=follow&user=bob"
    async with http.get(url, headers={"Idempotency-Key": "retry-1"}) as response:
        first = await response.json()
    async with http.get(url + "&idempotency_key=retry-1") as response:
        second = await response.json()
    assert second["id"] == first["id"] and second["count"] == first["count"] == 1
    assert second["duplicate"] is True and "duplicate" not in first
    async with http.get(url + "&idempotency_key=retry-2") as response:
        third = await response.json()
    assert third["id"] != first["id"]
    async with http.get(f"{server.url}/notify?code=idem&event=sentinel") as response:
        assert response.status == 200
    await page.wait_for("SENTINEL")  # events arrive in order: a third FOLLOW would be here by now
    assert len(page.named("FOLLOW")) == 2


async def test_same_key_on_another_code_is_another_publish(server, http):
    for code in ("k1", "k2"):
        async with http.get(f"{server.url}/notify?code={code}&event=x&idempotency_key=same") as response:
            assert "duplicate" not in await response.json()


async def test_duplicate_text_reply_says_so(server, http):
    url = f"{server.url}/notify?code=dup&event=x&reply=text&idempotency_key=a"
    await get_text(http, url)
    assert (await get_text(http, url))[2] == "Already sent X (same idempotency key); not sent again."


@pytest.mark.server(secret="s")
async def test_json_routes_are_idempotent_and_wait_for_receipts(server, pages, http):
    page = await pages(query="code=json1", confirm_receipts=True)
    url = f"{server.url}/broadcast/json1/price"
    async with http.post(url + "?wait=2000", json={"p": 1},
                         headers={"Idempotency-Key": "b1"}) as response:
        first = await response.json()
    async with http.post(url, json={"p": 1}, headers={"Idempotency-Key": "b1"}) as response:
        again = await response.json()
    assert (first["listeners"], first["acknowledged"]) == (1, 1)
    assert again["duplicate"] is True and again["id"] == first["id"]
    body = {"event": "price", "room": "json1", "data": 2, "secret": "s",
            "idempotency_key": "e1", "wait": 2000}
    async with http.post(f"{server.url}/emit", json=body) as response:
        emitted = await response.json()
    async with http.post(f"{server.url}/emit", json=body) as response:
        assert (await response.json())["duplicate"] is True
    assert emitted["acknowledged"] == 1
    assert [data for data in page.named("price")] == [{"p": 1}, 2]
