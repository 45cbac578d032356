"""Space secrets in PostgreSQL (``--database-url``): set or rotated on one node, in force on all.

Real PostgreSQL (a fresh schema), two in-process nodes and a third started
later; pages join ``space::name`` rooms on the node that did not write the secret.
"""

from __future__ import annotations


import asyncpg
import pytest

from notification_service.spaces import POSTGRES_MIGRATIONS, SPACES_KEY
from notification_service.webpush.keys import generate_key

from .services import TcpProxy
from .support import joins, until

pytestmark = pytest.mark.postgres

ADMIN = "admin-token-for-tests"


async def put_secret(http, url, space, secret):
    async with http.put(f"{url}/admin/spaces/{space}", json={"secret": secret},
                        headers={"Authorization": f"Bearer {ADMIN}"}) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def delete_secret(http, url, space):
    async with http.delete(f"{url}/admin/spaces/{space}",
                           headers={"Authorization": f"Bearer {ADMIN}"}) as response:
        assert response.status == 200
        return await response.json()


@pytest.fixture
def shared(postgres_url, tmp_path):
    """Settings of nodes sharing one database (and so one VAPID key)."""
    key = tmp_path / "vapid.pem"
    generate_key(key)
    return {"database_url": postgres_url, "vapid_key": key, "admin_token": ADMIN}


async def test_a_secret_set_or_rotated_on_one_node_takes_effect_on_the_others(shared, serve,
                                                                              http):
    a = await serve(**shared)
    b = await serve(**shared)

    assert not await joins(b.url, "dir::files", "first")  # no secret yet
    assert (await put_secret(http, a.url, "dir", "first"))["created"] is True
    await until(lambda: joins(b.url, "dir::files", "first"))

    assert (await put_secret(http, a.url, "dir", "second"))["created"] is False  # rotation
    await until(lambda: _refused(b.url, "dir::files", "first"))
    assert await joins(b.url, "dir::files", "second")
    assert await joins(a.url, "dir::files", "second")

    # A node started later loads what is there.
    c = await serve(**shared)
    assert await joins(c.url, "dir::files", "second")

    # Deleting on b: a and c refuse every new join.
    assert (await delete_secret(http, b.url, "dir"))["deleted"] is True
    await until(lambda: _refused(a.url, "dir::files", "second"))
    await until(lambda: _refused(c.url, "dir::files", "second"))


async def test_after_a_lost_listening_connection_every_secret_is_reloaded(shared, serve, http):
    a = await serve(**shared)
    b = await serve(**shared)
    await put_secret(http, a.url, "dir", "first")
    await until(lambda: joins(b.url, "dir::files", "first"))
    backend = b.app[SPACES_KEY].backend
    listening = backend.listener_pid
    connection = await asyncpg.connect(shared["database_url"])
    try:
        # A change b is never told of (written straight into the table, no NOTIFY),
        # then b's listening connection is cut: reconnecting, it reloads everything.
        await connection.execute("UPDATE space_secrets SET secret = 'second'")
        assert await joins(b.url, "dir::files", "first")
        await connection.execute("SELECT pg_terminate_backend($1)", listening)
    finally:
        await connection.close()
    await until(lambda: joins(b.url, "dir::files", "second"))
    assert backend.listener_pid != listening


async def test_the_table_is_versioned_and_created_on_start(postgres_url, serve, http):
    server = await serve(database_url=postgres_url, admin_token=ADMIN)
    await put_secret(http, server.url, "dir", "s")
    connection = await asyncpg.connect(postgres_url)
    try:
        version = await connection.fetchval(
            "SELECT version FROM schema_versions WHERE store = 'space_secrets'")
        assert version == len(POSTGRES_MIGRATIONS)
        rows = await connection.fetch("SELECT space, secret FROM space_secrets")
        assert [tuple(row) for row in rows] == [("dir", "s")]
    finally:
        await connection.close()


async def _refused(url, room, secret) -> bool:
    return not await joins(url, room, secret)


async def test_while_postgresql_does_not_answer_writes_are_503_and_joins_go_on(
        shared, serve, http):
    from .pushservice import WEBPUSH, PushService

    relay = TcpProxy(5432)  # cut and restored: the machine's PostgreSQL is shared, never stopped
    await relay.start()
    url = shared["database_url"].replace(":5432/", f":{relay.port}/")
    server = await serve(**{**shared, "database_url": url}, **WEBPUSH)
    await put_secret(http, server.url, "dir", "first")
    relay.cut()

    async with http.put(f"{server.url}/admin/spaces/dir", json={"secret": "second"},
                        headers={"Authorization": f"Bearer {ADMIN}"}) as response:
        body = await response.json()
        assert (response.status, body["code"]) == (503, 50363), body
        assert "PostgreSQL" in body["error"]
    browser = PushService().subscriber()
    browser.base_url = "http://127.0.0.1:9"
    async with http.post(f"{server.url}/webpush/subscriptions", json=browser.to_json()) as response:
        body = await response.json()
        assert (response.status, body["code"]) == (503, 50363), body
    assert await joins(server.url, "dir::files", "first")  # secrets in memory keep working
    async with http.get(f"{server.url}/health") as response:
        assert response.status == 503 and "webpush_store" in (await response.json())["failing"]

    relay.restore()  # the pool connects again
    try:
        await until(lambda: _sets(http, server.url, "dir", "second"))
        assert await joins(server.url, "dir::files", "second")
    finally:
        await relay.stop()


async def _sets(http, url, space, secret) -> bool:
    async with http.put(f"{url}/admin/spaces/{space}", json={"secret": secret},
                        headers={"Authorization": f"Bearer {ADMIN}"}) as response:
        return response.status == 200
