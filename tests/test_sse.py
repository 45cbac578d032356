"""GET /sse: a real HTTP client reads the stream like curl -N or EventSource would."""

from __future__ import annotations

import asyncio
import re
import time
import uuid

import pytest

from notification_service.app import SSE_KEY

from .sse_client import SECRET, make_token, open_stream
pytestmark = pytest.mark.server(jwt_secret=SECRET)


async def test_stream_headers_and_retry_hint(server, http):
    stream = await open_stream(http, server.url, token=make_token())
    headers = stream.response.headers
    assert headers["Content-Type"] == "text/event-stream"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Accel-Buffering"] == "no"
    assert uuid.UUID(headers["X-Connection-Id"]).version == 4
    assert "Content-Encoding" not in headers
    await server.hub.publish("jwt:app-1:user-1", "hello", {"n": 1})
    await stream.next_event()
    assert stream.retry == 3000
    stream.close()


async def test_user_and_application_channels_arrive_in_order_with_ids(server, http):
    stream = await open_stream(http, server.url, token=make_token("alice", "shop"))
    first = await server.hub.publish("jwt:shop:alice", "order", {"id": 7, "text": "a\nb"})
    second = await server.hub.publish("jwt:shop", "sale", ["everyone"])
    await server.hub.publish("jwt:shop:bob", "order", {"id": 8})  # another user: not heard
    third = await server.hub.publish("jwt:shop:alice", "order", {"id": 9})
    received = [await stream.next_event() for _ in range(3)]
    assert [(e.name, e.data, e.id) for e in received] == [
        ("order", {"id": 7, "text": "a\nb"}, first.event.id),
        ("sale", ["everyone"], second.event.id),
        ("order", {"id": 9}, third.event.id),
    ]
    assert first.listeners["sse"] == 1
    stream.close()


async def test_token_in_query_string(server, http):
    stream = await open_stream(http, server.url, query=f"token={make_token('bob')}")
    await server.hub.publish("jwt:app-1:bob", "ding", None)
    event = await stream.next_event()
    assert (event.name, event.data) == ("ding", None)
    stream.close()


async def test_public_code_and_channels_without_jwt(server, http):
    stream = await open_stream(http, server.url, query="code=1234&channel=news&channel=sport")
    async with http.get(f"{server.url}/notify?code=1234&event=follow&user=bob") as answer:
        assert (await answer.json())["count"] == 1
    await server.hub.publish("sport", "goal", {"score": "1-0"})
    await server.hub.publish("news", "flash", "hi")
    received = [await stream.next_event() for _ in range(3)]
    assert [(e.name, e.data) for e in received] == [
        ("FOLLOW", {"code": "1234", "event": "follow", "user": "bob"}),
        ("goal", {"score": "1-0"}),
        ("flash", "hi"),
    ]
    stream.close()


@pytest.mark.parametrize("query, status, code, words", [
    ("", 401, 40160, "Bearer"),
    ("channel=jwt:app-1:user-1", 403, 40302, "JWT identity"),
    ("channel=team::room", 403, 40302, "no secret set"),
    ("code=bad%20code", 400, 40002, "A-Z"),
    ("channel=" + "x" * 300, 400, 40061, "1 to 256"),
    ("&".join(f"channel=c{n}" for n in range(40)), 400, 40060, "at most 32"),
])
async def test_listen_refusals(server, http, query, status, code, words):
    async with http.get(f"{server.url}/sse?{query}") as response:
        assert response.status == status
        body = await response.json()
    assert body["code"] == code and words in body["error"]


async def test_private_space_channel_needs_its_secret(server, http):
    class Spaces:
        def get(self, space):
            return "s3cret" if space == "team" else None

    from notification_service.access import ACCESS_KEY
    server.app[ACCESS_KEY].spaces = Spaces()
    async with http.get(f"{server.url}/sse?channel=team::room&secret=nope") as response:
        assert response.status == 403
    stream = await open_stream(http, server.url, query="channel=team::room&secret=s3cret")
    await server.hub.publish("team::room", "msg", 1)
    assert (await stream.next_event()).data == 1
    stream.close()


async def test_jwt_listener_may_add_public_channels(server, http):
    stream = await open_stream(http, server.url, token=make_token(), query="channel=news")
    await server.hub.publish("news", "flash", 1)
    await server.hub.publish("jwt:app-1", "app", 2)
    assert [(await stream.next_event()).data for _ in range(2)] == [1, 2]
    stream.close()


@pytest.mark.server(jwt_secret=SECRET, sse_ping_interval=0.2)
async def test_ping_cadence(server, http):
    stream = await open_stream(http, server.url, token=make_token())
    started = time.monotonic()
    pings = [await stream.wait_for("ping", timeout=2) for _ in range(3)]
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 1.5, elapsed
    assert all(ping.id is None for ping in pings)  # never moves Last-Event-ID
    assert all(isinstance(ping.data["time"], int) for ping in pings)
    stream.close()


async def test_closed_stream_is_forgotten_without_any_event(server, http, monkeypatch):
    """aiohttp does not tell a handler its client left: the stream checks by itself."""
    from notification_service.transports import sse as sse_module

    monkeypatch.setattr(sse_module, "LIVENESS_SECONDS", 0.05)
    stream = await open_stream(http, server.url, query="channel=gone")
    sse = server.app[SSE_KEY]
    assert sse.listener_count("gone") == 1
    stream.close()

    async def until_forgotten() -> None:
        while sse.listener_count("gone"):
            await asyncio.sleep(0.02)
    await asyncio.wait_for(until_forgotten(), 2)
    assert "gone" not in sse._channels


async def test_event_is_encoded_once_for_many_listeners(server, http, monkeypatch):
    from notification_service.transports import sse as sse_module

    calls = []
    original = sse_module.encode_event
    monkeypatch.setattr(sse_module, "encode_event", lambda event: calls.append(1) or original(event))
    streams = [await open_stream(http, server.url, query="channel=many") for _ in range(5)]
    report = await server.hub.publish("many", "e", {"x": 1})
    assert report.listeners["sse"] == 5 and len(calls) == 1
    for stream in streams:
        assert (await stream.next_event()).data == {"x": 1}
        stream.close()


@pytest.mark.server(jwt_secret=SECRET, shutdown_timeout=5.0)
async def test_shutdown_with_a_stream_attached_is_prompt(server, pages, http):
    stream = await open_stream(http, server.url, token=make_token())
    other = await open_stream(http, server.url, query="code=abc")
    page = await pages(auth={"token": make_token("sio-user")})
    await page.wait_for("WELCOME")
    started = time.monotonic()
    await server.stop()
    elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"stopping took {elapsed:.2f} s"
    assert await stream.ended(timeout=2) and await other.ended(timeout=2)


def test_event_frame_format():
    from notification_service.events import Event
    from notification_service.transports.sse import encode_event

    frame = encode_event(Event("ab12-3", "c", "NEW_FOLLOWER", {"user": "a\nb"}, 0.0))
    assert frame == b'id: ab12-3\nevent: NEW_FOLLOWER\ndata: {"user":"a\\nb"}\n\n'
    assert re.fullmatch(rb"(?:[a-z]+: [^\n]*\n)+\n", frame)


@pytest.mark.server(sse_queue_size=4)
async def test_slow_reader_is_cut_off_while_a_fast_one_keeps_receiving(server, http, caplog):
    import logging
    import socket

    loop = asyncio.get_running_loop()
    slow = socket.socket()
    try:
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.setblocking(False)
        await loop.sock_connect(slow, ("127.0.0.1", server.port))
        await loop.sock_sendall(slow, b"GET /sse?channel=busy HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        head = await asyncio.wait_for(loop.sock_recv(slow, 1024), 5)
        assert head.startswith(b"HTTP/1.1 200")  # ... and it never reads again
        fast = await open_stream(http, server.url, query="channel=busy")
        sse = server.app[SSE_KEY]
        assert sse.listener_count("busy") == 2

        payload = {"blob": "x" * 65536}
        caplog.set_level(logging.WARNING, "notification_service.transports.sse")
        published = 0
        while sse.listener_count("busy") == 2:
            assert published < 400, "the slow reader was never cut off"
            report = await server.hub.publish("busy", "big", payload)
            published += 1
            event = await fast.next_event()  # the fast reader keeps pace, in order
            assert event.id == report.event.id
        assert published > sse.queue_size  # it was cut off for falling behind, not at once
        # After the cut-off the fast reader still gets everything.
        for _ in range(5):
            report = await server.hub.publish("busy", "big", payload)
            assert report.listeners["sse"] == 1
            assert (await fast.next_event()).id == report.event.id
        assert any("too slowly" in record.getMessage() for record in caplog.records)

        async def drained_to_the_end() -> None:
            try:
                while await loop.sock_recv(slow, 65536):
                    pass
            except ConnectionError:
                pass
        await asyncio.wait_for(drained_to_the_end(), 5)  # the server dropped it
        fast.close()
    finally:
        slow.close()


async def test_head_answers_headers_without_a_stream(server, http):
    async with http.head(f"{server.url}/sse?code=1234") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        assert "X-Connection-Id" in response.headers
    assert server.app[SSE_KEY].listener_count("1234") == 0
    async with http.head(f"{server.url}/sse") as response:
        assert response.status == 401


@pytest.mark.server(jwt_secret=SECRET, secret="emit-secret")
async def test_every_way_in_reaches_a_jwt_listener(server, http):
    """The issue's 'done when': curl -N with a JWT prints what any producer sends that user."""
    stream = await open_stream(http, server.url, token=make_token("alice", "shop"))
    async with http.post(f"{server.url}/broadcast/jwt:shop:alice/order",
                         json={"via": "broadcast"}) as response:
        assert (await response.json())["listeners"] == 1
    async with http.post(f"{server.url}/emit", json={
            "event": "order", "room": "jwt:shop", "data": {"via": "emit"},
            "secret": "emit-secret"}) as response:
        assert (await response.json())["listeners"] == 1
    await server.hub.publish("jwt:shop:alice", "order", {"via": "python"})
    received = [(await stream.next_event()).data["via"] for _ in range(3)]
    assert received == ["broadcast", "emit", "python"]
    stream.close()


@pytest.mark.server(cors_origins=["https://overlay.example"])
async def test_cross_origin_stream_is_labelled_for_allowed_origins(server, http):
    async with http.get(f"{server.url}/sse?code=1234",
                        headers={"Origin": "https://overlay.example"}) as response:
        assert response.headers["Access-Control-Allow-Origin"] == "https://overlay.example"
        assert "X-Connection-Id" in response.headers["Access-Control-Expose-Headers"]
    async with http.get(f"{server.url}/sse?code=1234",
                        headers={"Origin": "https://evil.example"}) as response:
        assert "Access-Control-Allow-Origin" not in response.headers


def test_queue_bound_in_events_and_bytes():
    """What waits for a stream that is not live yet (or lags) is bounded in frames and bytes."""
    from notification_service.transports.sse import SSEConnection

    connection = SSEConnection(None, ["c"], None, max_queue=3, max_bytes=1000)  # type: ignore[arg-type]
    assert connection.offer(b"x" * 2000)  # one large event into an empty queue: taken
    assert not connection.offer(b"x")  # ... but nothing more until it is written
    assert connection.take() == b"x" * 2000
    assert connection.offer(b"x" * 600) and connection.offer(b"x" * 300)
    assert not connection.offer(b"x" * 200)  # 1100 bytes > 1000
    assert connection.offer(b"x" * 50)
    assert not connection.offer(b"x")  # 4 events > 3
