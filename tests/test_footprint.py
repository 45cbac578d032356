"""What a server costs before anyone connects: no worker process, a settled collector,
no library imported that a default single-node server does not use yet; and what each
idle WebSocket listener adds."""

from __future__ import annotations

import asyncio
import platform
import subprocess
import sys
from pathlib import Path

import aiohttp

from notification_service.config import PROJECT_ROOT
from notification_service.webpush import crypto

from .support import WAIT


def children(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


def rss(pid: int) -> int:
    """Resident memory of process ``pid``, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


async def test_a_started_server_runs_no_worker_process(spawn):
    """The Web Push encryption pool (and multiprocessing's resource tracker) waits for a fan-out."""
    node = await spawn()
    assert children(node.pid) == []


MAX_RSS_AT_START_MB = 52
"""About 46 MB measured (bench/fanout.py, Python 3.11, Linux x86-64); Node socket.io 4.8: 55."""


async def test_a_started_server_stays_under_its_memory_budget(spawn):
    """Once with a key to make (a child process makes it), once with the key on disk."""
    first = await spawn()
    assert children(first.pid) == []  # the key's child process is gone
    assert rss(first.pid) / 2**20 < MAX_RSS_AT_START_MB
    await first.stop()
    again = await spawn("--data-dir", str(first.folder / "data"), "--logfile",
                        str(first.folder / "again.log"), own_locations=False)
    assert rss(again.pid) / 2**20 < MAX_RSS_AT_START_MB


def test_the_lazy_pool_starts_its_processes_on_first_use():
    pool = crypto.LazyProcessPool(1)
    assert not pool.started
    key = bytes.fromhex("04" + "11" * 64)  # not a point on the curve: encrypt_many answers None
    assert pool.submit(crypto.encrypt_many, b"hi", [(key, b"a" * 16)]).result(WAIT * 6) == [None]
    assert pool.started
    pool.shutdown()
    assert not pool.started


def test_settling_after_start_up_freezes_and_raises_the_thresholds():
    """In a process of its own: the test process keeps its own collector settings."""
    script = ("import gc; from notification_service import gctuning; "
              "gctuning.settle_after_startup(); "
              "print(gc.get_freeze_count() > 1000, gc.get_threshold() == gctuning.THRESHOLDS)")
    out = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    assert out == ["True", "True"]


def test_settling_gives_freed_heap_back_where_glibc_can():
    from notification_service import gctuning
    assert gctuning.give_back_freed_memory() == (platform.libc_ver()[0] == "glibc")


NOT_AT_START = ("redis", "valkey", "prometheus_client", "jwt", "asyncpg", "cryptography",
                "py_vapid", "multiprocessing")
"""Imported on first use only: --redis-url, the first /metrics scrape, the first JWT,
--database-url, the first Web Push subscription or push, the first large fan-out."""

STARTED_SERVER_MODULES = """
import asyncio, sys
from aiohttp import web
from notification_service.app import create_app
from notification_service.config import settings_from_args

async def main():
    settings = settings_from_args(["-p", "0", "-f", "", "-l", "WARNING",
                                   "--data-dir", sys.argv[1]])
    runner = web.AppRunner(create_app(settings))
    await runner.setup()  # start-up and cleanup contexts: stores open, VAPID key made
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
    await runner.cleanup()

asyncio.run(main())
"""


def test_a_default_server_imports_no_redis_postgres_openssl_or_jwt_library_at_start(tmp_path):
    """In a fresh process (the test process has imported them long ago): once making the
    VAPID key, once reading it."""
    for start in ("key made", "key read"):
        out = subprocess.run([sys.executable, "-c", STARTED_SERVER_MODULES, str(tmp_path)],
                             cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
                             check=True).stdout
        loaded = set(out.split())
        assert "aiohttp" in loaded and "socketio" in loaded  # the script did start a server
        assert loaded.isdisjoint(NOT_AT_START), (start, sorted(loaded & set(NOT_AT_START)))
    assert (tmp_path / "vapid_private.pem").is_file()


def test_python_socketio_loads_its_redis_managers_on_first_use():
    """socketio.RedisManager (the flask-socketio bridge's side) still works, with redis."""
    script = ("import sys; from notification_service.transports import socketio_import; "
              "import socketio; before = 'redis' in sys.modules; "
              "manager = socketio.RedisManager; "
              "import socketio.async_redis_manager as m; "
              "print(before, manager.__name__, m.aioredis is not None, "
              "socketio.AsyncRedisManager is m.AsyncRedisManager)")
    out = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    assert out == ["False", "RedisManager", "True", "True"]


IDLE_LISTENERS = 1000
IDLE_BYTES_PER_LISTENER = 15 * 1024
"""Measured here: 12.2 KB (19.3 KB while a WebSocket kept its request's handler chain
suspended); bench/fanout.py measures 13.1 KB at 1,000 and 13.5 KB at 5,000 (Node socket.io
4.8: 18.9 KB at 5,000)."""


async def listen(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    """A raw engine.io/socket.io WebSocket listener, connected and joined (``?code=``)."""
    ws = await http.ws_connect(url, max_msg_size=0)
    assert (await ws.receive(timeout=WAIT)).data.startswith("0")  # engine.io OPEN
    await ws.send_str("40")
    assert (await ws.receive(timeout=WAIT)).data.startswith("40")  # socket.io CONNECT
    assert '"WELCOME"' in (await ws.receive(timeout=WAIT)).data
    return ws


async def test_an_idle_websocket_listener_costs_the_server_under_15_kb(spawn):
    """RSS growth of a server process with 1,000 idle listeners after one event reached all."""
    node = await spawn("--max-connections-per-address", "100000", "--lookup-rate", "off")
    url = node.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket&code=idle"
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        first = await listen(http, url)  # what the first listener alone loads and caches
        before = rss(node.pid)
        gate = asyncio.Semaphore(100)

        async def one() -> aiohttp.ClientWebSocketResponse:
            async with gate:
                return await listen(http, url)

        listeners = [first, *await asyncio.gather(*(one() for _ in range(IDLE_LISTENERS)))]
        async with http.get(f"{node.url}/notify?code=idle&event=WARM") as response:
            assert (await response.json())["count"] == IDLE_LISTENERS + 1
        for ws in listeners:
            assert (await ws.receive(timeout=WAIT)).data.startswith('42["WARM"')
        per_listener = (rss(node.pid) - before) / IDLE_LISTENERS
        await asyncio.gather(*(ws.close() for ws in listeners))
    assert per_listener < IDLE_BYTES_PER_LISTENER, f"{per_listener / 1024:.1f} KB per listener"
