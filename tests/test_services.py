"""The shared service fixtures work: a Redis of our own, a fresh PostgreSQL schema, a server process."""

from __future__ import annotations

import asyncio

import aiohttp
import asyncpg
import pytest
import redis.asyncio as aioredis

from notification_service.cluster.nodes import NodeLiveness
from notification_service.cluster.redis import RedisKeys, connect
from notification_service.stores.postgres import migrate


async def test_redis_server_can_be_restarted_and_loses_data_without_persistence(redis_server):
    before = connect(redis_server.url)
    await before.set("k", "v")
    await before.aclose()
    await redis_server.restart()
    after = connect(redis_server.url)
    assert await after.get("k") is None
    await after.aclose()


async def test_node_liveness_expires_without_refresh(redis_server):
    client = connect(redis_server.url)
    keys = RedisKeys("t")
    one = NodeLiveness(client, keys, "one", ttl=1, refresh=0.2)
    two = NodeLiveness(client, keys, "two", ttl=1, refresh=0.2)
    await one.start()
    await two.announce()  # announced once, never refreshed: like a node killed with -9
    assert await one.live_nodes() == {"one", "two"}
    for _ in range(60):  # bounded: the key expires after 1 s
        if await one.live_nodes() == {"one"}:
            break
        await asyncio.sleep(0.05)
    assert await one.live_nodes() == {"one"}
    await one.stop()
    assert await one.live_nodes() == set()
    await client.aclose()


async def test_postgres_schema_is_fresh_and_migrations_run_once(postgres_url):
    pool = await asyncpg.create_pool(postgres_url, min_size=1, max_size=2)
    try:
        assert await pool.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = "
                                   "current_schema()") == 0
        migrations = [["CREATE TABLE t (x int)"], ["ALTER TABLE t ADD COLUMN y int"]]
        assert await migrate(pool, "demo", migrations) == 0
        assert await migrate(pool, "demo", migrations) == 2
        assert await pool.fetchval("SELECT version FROM schema_versions WHERE store = 'demo'") == 2
        with pytest.raises(Exception, match="newer than this server's 1"):
            await migrate(pool, "demo", migrations[:1])
    finally:
        await pool.close()


async def test_spawned_server_answers_and_stops(spawn):
    node = await spawn()
    async with aiohttp.ClientSession() as http:
        async with http.get(node.url + "/heartbeat") as response:
            assert await response.json() == {"heartbeat": "OK"}
    await node.stop()
    assert node.process.returncode == 0


async def test_spawned_server_with_redis_announces_itself(spawn, redis_server):
    node = await spawn("--redis-url", redis_server.url, "--node-name", "n1")
    client: aioredis.Redis = connect(redis_server.url)
    assert await client.exists("notify:node:n1") == 1
    await node.stop()
    assert await client.exists("notify:node:n1") == 0
    await client.aclose()
