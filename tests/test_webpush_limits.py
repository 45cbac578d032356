"""Web Push under attack: bounded in rows and bytes, strict fields, bad endpoints fail alone.

Issue 9, rows 1, 4 and 13: 1,000 long subscriptions took 329 MB of SQLite
(no token needed); a cap of 1,500 stored 1,502 rows under 8 concurrent
subscribers; a zone-id endpoint was stored and made every later notify a 500;
network failures were invisible and failing subscriptions were never pruned.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notification_service.webpush.crypto import b64url_encode
from notification_service.webpush.service import WEBPUSH_KEY
from notification_service.webpush.store import Subscription

from .pushservice import WEBPUSH, push_server, push_service, webpush  # noqa: F401

MiB = 1024 * 1024
SUBSCRIBE = "/webpush/subscriptions"


def browser_keys() -> dict[str, str]:
    key = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return {"p256dh": b64url_encode(key), "auth": b64url_encode(secrets.token_bytes(16))}


KEYS = browser_keys()


def long_subscription(n: int) -> dict:
    """The attack of row 1: the longest endpoint, id, group and 32 channels the server takes."""
    prefix = f"https://fcm.googleapis.com/fcm/send/{n:08d}-"
    return {"endpoint": prefix + "e" * (1024 - len(prefix)), "keys": KEYS,
            "id": f"{n:08d}" + "i" * 120, "group": f"{n:08d}" + "g" * 120,
            "channels": [f"{n:08d}-{c:02d}" + "c" * 117 for c in range(32)]}


async def attack(http, server, bodies, workers: int = 8) -> list[tuple[int, int | None]]:
    """POST every body with ``workers`` concurrent subscribers; (status, code) of each answer."""
    queue = list(bodies)
    answers: list[tuple[int, int | None]] = []

    async def worker() -> None:
        while queue:
            body = queue.pop()
            async with http.post(server.url + SUBSCRIBE, json=body) as response:
                answer = await response.json()
                answers.append((response.status, answer.get("code")))

    await asyncio.gather(*(worker() for _ in range(workers)))
    return answers


def files_size(server) -> int:
    data = server.settings.data_dir
    return sum(path.stat().st_size for path in data.glob("webpush.sqlite3*"))


async def test_long_subscriptions_stay_within_the_byte_bound(serve, http):
    bound = 4 * MiB
    server = await serve(webpush_max_bytes=bound, subscribe_rate="off")
    before = files_size(server)
    answers = await attack(http, server, [long_subscription(n) for n in range(400)])
    statuses = {status for status, _code in answers}
    assert statuses == {201, 507}, statuses
    assert all(code == 50720 for status, code in answers if status == 507)
    rows, stored = await server.app[WEBPUSH_KEY].store.stored()
    assert stored <= bound
    assert 100 < rows < 400  # about 19 KB each: the bytes bound, not the row bound, stopped it
    size = files_size(server)
    print(f"\n{rows} long subscriptions stored; SQLite files {size / MiB:.2f} MiB for a "
          f"{bound / MiB:.0f} MiB bound (were {before / MiB:.2f} MiB)")
    assert size <= 2 * bound


async def test_the_row_cap_holds_under_eight_concurrent_subscribers(serve, http):
    server = await serve(webpush_max_subscriptions=150, subscribe_rate="off")
    bodies = [{"endpoint": f"https://fcm.googleapis.com/fcm/send/c{n}", "keys": KEYS}
              for n in range(200)]
    answers = await attack(http, server, bodies)
    assert sorted(status for status, _ in answers).count(201) == 150
    assert [status for status, _ in answers].count(507) == 50
    assert await server.app[WEBPUSH_KEY].store.count() == 150


def key_of(size: int, first: int = 4) -> str:
    return b64url_encode(bytes([first]) + secrets.token_bytes(size - 1))


@pytest.mark.parametrize("change, status, fragment", [
    ({"endpoint": "https://fcm.googleapis.com/fcm/send/" + "x" * 1000}, 403, "longer than 1024"),
    ({"keys": {**KEYS, "p256dh": key_of(64)}}, 400, "65 bytes"),
    ({"keys": {**KEYS, "p256dh": key_of(66)}}, 400, "65 bytes"),
    ({"keys": {**KEYS, "p256dh": KEYS["p256dh"] + "!!!!"}}, 400, "65 bytes"),
    ({"keys": {**KEYS, "p256dh": key_of(65, first=2)}}, 400, "uncompressed"),
    ({"keys": {**KEYS, "p256dh": key_of(33, first=2)}}, 400, "65 bytes"),
    ({"keys": {**KEYS, "auth": b64url_encode(secrets.token_bytes(15))}}, 400, "16 bytes"),
    ({"keys": {**KEYS, "auth": b64url_encode(secrets.token_bytes(17))}}, 400, "16 bytes"),
    ({"keys": {**KEYS, "auth": "A" * 22 + " " * 4000}}, 400, "16 bytes"),
    ({"id": "i" * 129}, 400, "1 to 128"),
    ({"group": "g" * 129}, 400, "1 to 128"),
    ({"channels": [f"c{n}" for n in range(33)]}, 400, "at most 32"),
    ({"channels": ["c" * 129]}, 400, "1 to 128"),
])
async def test_fields_are_checked_strictly(serve, http, change, status, fragment):
    server = await serve(subscribe_rate="off")
    body = {"endpoint": "https://fcm.googleapis.com/fcm/send/ok", "keys": KEYS, **change}
    async with http.post(server.url + SUBSCRIBE, json=body) as response:
        answer = await response.json()
    assert response.status == status and fragment in answer["error"], answer
    assert await server.app[WEBPUSH_KEY].store.count() == 0


@pytest.mark.parametrize("endpoint, fragment", [
    ("https://[::1%25.push.apple.com]:1/x", "zone id"),
    ("https://[::1%.push.apple.com]/x", "zone id"),
    ("https://17.253.144.10/x", "IP addresses are accepted only when named exactly"),
    ("https://[2a01:b740::1]/x", "IP addresses are accepted only when named exactly"),
    ("https://fcm.googleapis.com:8443/x", "--webpush-allow fcm.googleapis.com:8443"),
    ("https://u@fcm.googleapis.com/x", "user name"),
    ("https://fcm.googleapis.com@evil.example/x", "user name"),
])
async def test_zone_ids_ip_literals_userinfo_and_other_ports_are_refused(
        serve, http, endpoint, fragment):
    server = await serve(subscribe_rate="off")
    async with http.post(server.url + SUBSCRIBE,
                         json={"endpoint": endpoint, "keys": KEYS}) as response:
        answer = await response.json()
    assert (response.status, answer["code"]) == (403, 40320) and fragment in answer["error"]


async def test_ports_and_addresses_allowed_explicitly(serve, http):
    server = await serve(subscribe_rate="off", webpush_allow=[
        "fcm.googleapis.com:8443", "push.example.org:*", "[2a01:b740::1]:443"])
    for endpoint in ("https://fcm.googleapis.com:8443/x", "https://push.example.org:9/x",
                     "https://[2a01:b740::1]/x"):
        async with http.post(server.url + SUBSCRIBE,
                             json={"endpoint": endpoint, "keys": KEYS}) as response:
            assert response.status == 201, await response.text()
    async with http.post(server.url + SUBSCRIBE, json={
            "endpoint": "https://fcm.googleapis.com:8444/x", "keys": KEYS}) as response:
        assert response.status == 403


async def test_a_stored_subscription_that_cannot_be_sent_fails_alone(
        push_server, push_service, http, caplog):
    """Row 4: the zone-id endpoint that got in before made every notify answer 500."""
    caplog.set_level(logging.WARNING, logger="notification_service")
    good = push_service.subscriber()
    async with http.post(push_server.url + SUBSCRIBE, json=good.to_json()) as response:
        assert response.status == 201
    store = push_server.app[WEBPUSH_KEY].store
    await store.upsert(Subscription("https://[::1%25.push.apple.com]:1/x", KEYS["p256dh"],
                                    KEYS["auth"]))  # stored before the guard existed
    await store.upsert(Subscription(push_service.url + "/push/badkeys", "AAAA", "AAAA"))
    for _ in range(2):  # a retrying publisher sees the same honest answer
        async with http.post(push_server.url + "/webpush/notify",
                             json={"all": True, "message": "hi"}) as response:
            answer = await response.json()
        assert response.status == 200, answer
        assert (answer["sent"], answer["failed"]) == (1, 2)
    assert [d.plaintext for d in await push_service.wait_for(good, 2)] == [b"hi", b"hi"]
    assert "Traceback" not in caplog.text
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("allow-list now refuses" in line and "for 1 subscription(s)" in line
               for line in warnings) == 2
    assert sum("keys cannot be used for 1 subscription(s)" in line for line in warnings) == 2


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_network_failures_are_warnings_once_per_batch_with_counts(
        serve, http, caplog):
    caplog.set_level(logging.WARNING, logger="notification_service")
    server = await serve(**webpush(subscribe_rate="off"))
    dead = f"http://127.0.0.1:{closed_port()}"
    for n in range(5):
        async with http.post(server.url + SUBSCRIBE, json={
                "endpoint": f"{dead}/push/{n}", "keys": KEYS, "group": "g"}) as response:
            assert response.status == 201
    async with http.post(server.url + "/webpush/notify",
                         json={"group": "g", "message": "m"}) as response:
        answer = await response.json()
    assert (answer["sent"], answer["failed"]) == (0, 5)
    lines = [r.getMessage() for r in caplog.records
             if r.levelno == logging.WARNING and "could not connect" in r.getMessage()]
    assert lines == [f"web push: {dead}: could not connect for 5 subscription(s)"]


@pytest.mark.parametrize("days, pruned", [(0, True), (1, False)])
async def test_failing_subscriptions_are_pruned_after_n_failures_over_d_days(
        serve, http, days, pruned):
    server = await serve(**webpush(subscribe_rate="off", webpush_prune_failures=3,
                                   webpush_prune_days=days))
    endpoint = f"http://127.0.0.1:{closed_port()}/push/dead"
    async with http.post(server.url + SUBSCRIBE,
                         json={"endpoint": endpoint, "keys": KEYS, "id": "u"}) as response:
        assert response.status == 201
    removed = []
    for _ in range(3):
        async with http.post(server.url + "/webpush/notify",
                             json={"id": "u", "message": "m"}) as response:
            removed.append((await response.json())["removed"])
    record = await server.app[WEBPUSH_KEY].store.get(endpoint)
    if pruned:
        assert removed == [0, 0, 1] and record is None
    else:
        assert removed == [0, 0, 0] and record.failure_streak == 3
