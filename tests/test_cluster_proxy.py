"""Three nodes behind Debian's nginx with contrib/nginx/notification-cluster.conf: WebSocket-only
clients go round robin, long-polling clients stay on one node, one GET trigger reaches all."""

from __future__ import annotations

import asyncio
import re

import redis.asyncio as aioredis

from notification_service.config import PROJECT_ROOT

from .cluster import start_nodes, until_listeners
from .support import WAIT, connect_page

CONF = PROJECT_ROOT / "contrib" / "nginx" / "notification-cluster.conf"


def configuration(nginx_port: int, node_ports: list[int]) -> str:
    """The shipped file, listening and proxying on the test's ports."""
    text = CONF.read_text().replace("listen 80;", f"listen 127.0.0.1:{nginx_port};")
    for shipped, port in zip((8081, 8082, 8083), node_ports):
        text = text.replace(f"server 127.0.0.1:{shipped};", f"server 127.0.0.1:{port};")
    assert text.count(f"127.0.0.1:{nginx_port}") == 1
    assert all(text.count(f"127.0.0.1:{port};") == 2 for port in node_ports)
    return text


async def test_websocket_round_robin_and_sticky_polling_behind_nginx(spawn, redis_server, nginx,
                                                                     http):
    nodes = await start_nodes(spawn, redis_server.url, 3, "--trust-proxy", "1")
    await nginx.start(configuration(nginx.port, [node.port for node in nodes]))
    client = aioredis.from_url(redis_server.url)
    pages = []
    try:
        for _ in range(12):
            pages.append(await connect_page(nginx.url, query="code=party",
                                            transports=["websocket"]))
        for _ in range(12):
            pages.append(await connect_page(nginx.url, query="code=party",
                                            transports=["polling"]))
        for page in pages:
            await page.wait_for("WELCOME")
        await until_listeners(client, "party", 24)
        counts = await client.hgetall("notify:lc:party")
        nodes_used = {re.sub(rb"^socketio/", b"", field) for field in counts}
        assert len(nodes_used) == 3  # round robin spread the WebSocket clients
        async with http.get(f"{nginx.url}/notify", params={"code": "party", "event": "cheer",
                                                           "who": "all"}) as response:
            answer = await response.json()
        assert answer["count"] == 24
        for page in pages:
            assert await page.wait_for("CHEER") == [{"code": "party", "event": "cheer",
                                                     "who": "all"}]
    finally:
        # A polling client's disconnect waits for its pending long-poll to end: close
        # them all at once, each given a bound.
        await asyncio.gather(*(asyncio.wait_for(page.close(), WAIT) for page in pages),
                             return_exceptions=True)
        await client.aclose()


def test_readme_shows_the_cluster_configuration_the_tests_run():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert f"```nginx\n{CONF.read_text()}```" in readme
