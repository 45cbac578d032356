"""Real Redis and PostgreSQL for tests: a redis-server of our own, a fresh PostgreSQL schema.

Tests that stop, kill or restart Redis use :class:`RedisServer`, a
``redis-server`` this test starts on a free port in its own folder (never the
machine's Redis on 6379). PostgreSQL is the machine's (127.0.0.1:5432, trust
auth, database ``test``); each test gets a schema of its own, dropped after.
On a laptop without them these tests skip; under ``CI=true`` they fail.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from .support import WAIT, port_open, require

POSTGRES_HOST, POSTGRES_PORT, POSTGRES_DATABASE = "127.0.0.1", 5432, "test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def until_listening(process: subprocess.Popen[bytes], port: int) -> bool:
    """Wait until ``process`` accepts connections on ``port``: False if it exits first or
    takes longer than WAIT."""
    for _ in range(int(WAIT / 0.02)):
        if port_open("127.0.0.1", port):
            return True
        if process.poll() is not None:
            return False
        await asyncio.sleep(0.02)
    return False


class RedisServer:
    """A ``redis-server`` on a free port that the test may stop, kill and restart.

    :param folder: where it keeps its files (AOF, RDB) and its log.
    :param appendonly: keep an append-only file (``appendfsync everysec``), so a
        restart finds what was written; without it a restart loses everything.
    """

    def __init__(self, folder: Path, *, appendonly: bool = False) -> None:
        executable = shutil.which("redis-server")
        require(executable is not None,
                "redis-server is not installed (apt-get install -y redis-server)")
        self.executable = executable
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.appendonly = appendonly
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [self.executable, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.folder), "--save", "",
                "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", "everysec", "--logfile", str(self.folder / "redis.log")]

    async def start(self) -> None:
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        if await until_listening(self.process, self.port):
            return
        raise AssertionError(f"redis-server did not start on port {self.port}; see "
                             f"{self.folder / 'redis.log'}")

    async def stop(self) -> None:
        """SIGTERM: Redis shuts down cleanly (with AOF, everything written is kept)."""
        await self._end(signal.SIGTERM)

    async def kill(self) -> None:
        """SIGKILL: like a crash."""
        await self._end(signal.SIGKILL)

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def _end(self, how: signal.Signals) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(how)
        await asyncio.get_running_loop().run_in_executor(None, process.wait, WAIT)


def postgres_available() -> bool:
    return port_open(POSTGRES_HOST, POSTGRES_PORT)


async def fresh_schema() -> tuple[str, str]:
    """Create an empty schema in the ``test`` database; return (its name, a URL that uses it)."""
    import asyncpg

    require(postgres_available(), f"PostgreSQL is not running on {POSTGRES_HOST}:{POSTGRES_PORT}")
    schema = "test_" + secrets.token_hex(6)
    connection = await asyncpg.connect(host=POSTGRES_HOST, port=POSTGRES_PORT,
                                       database=POSTGRES_DATABASE)
    try:
        await connection.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await connection.close()
    # asyncpg passes unknown URL parameters on as server settings.
    return schema, (f"postgresql://{POSTGRES_HOST}:{POSTGRES_PORT}/{POSTGRES_DATABASE}"
                    f"?search_path={schema}")


async def drop_schema(schema: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(host=POSTGRES_HOST, port=POSTGRES_PORT,
                                       database=POSTGRES_DATABASE)
    try:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await connection.close()


class NginxServer:
    """Debian's nginx on a free port, with its own configuration, pid, logs and temp folders.

    ``master_process off`` keeps it one process running as this user (nothing
    to drop privileges to, one PID to stop); ``-e`` points its early error log
    into the folder too, so it never touches /var/log/nginx.

    :param folder: holds ``nginx.conf``, the logs and the temp folders.
    """

    TEMP_FOLDERS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")

    def __init__(self, folder: Path) -> None:
        executable = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
        require(executable is not None, "nginx is not installed (apt-get install -y nginx)")
        self.executable = executable
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def error_log(self) -> Path:
        return self.folder / "error.log"

    def configuration(self, http_block: str) -> str:
        """A whole nginx.conf around ``http_block`` (which listens on ``self.port``)."""
        folder = self.folder
        temp = "\n".join(f"    {name}_temp_path {folder / name};" for name in self.TEMP_FOLDERS)
        return (f"daemon off;\nmaster_process off;\nworker_processes 1;\n"
                f"pid {folder / 'nginx.pid'};\nerror_log {self.error_log} info;\n"
                f"events {{ worker_connections 256; }}\n"
                f"http {{\n    access_log {folder / 'access.log'};\n{temp}\n"
                f"{http_block}\n}}\n")

    async def start(self, http_block: str) -> None:
        conf = self.folder / "nginx.conf"
        conf.write_text(self.configuration(http_block))
        for name in self.TEMP_FOLDERS:
            (self.folder / name).mkdir(exist_ok=True)
        self.process = subprocess.Popen(
            [self.executable, "-p", str(self.folder), "-c", str(conf), "-e", str(self.error_log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        if await until_listening(self.process, self.port):
            return
        log = self.error_log.read_text() if self.error_log.exists() else ""
        raise AssertionError(f"nginx did not start on port {self.port}:\n{log}")

    async def stop(self) -> None:
        """SIGQUIT: nginx's graceful shutdown, then SIGKILL if it is still there."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGQUIT)
        try:
            await asyncio.get_running_loop().run_in_executor(None, process.wait, WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.get_running_loop().run_in_executor(None, process.wait, WAIT)


class TcpProxy:
    """A TCP relay on a free port to ``target_port``, which a test can cut off and restore.

    Stands between one node and Redis (or PostgreSQL) to partition that node
    alone: :meth:`cut` closes every relayed connection and refuses new ones (the
    node sees its connections reset, as when a network link drops),
    :meth:`restore` relays again.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.cut_off = False
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    def cut(self) -> None:
        self.cut_off = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.cut_off = False

    async def stop(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _relay(self, client_reader: asyncio.StreamReader,
                     client_writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            client_writer.transport.abort()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1",
                                                                         self.target_port)
        except OSError:
            client_writer.transport.abort()
            return
        self._writers |= {client_writer, server_writer}

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.transport.abort()
                self._writers.discard(writer)

        await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer))
