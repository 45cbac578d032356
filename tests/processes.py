"""Servers as real processes: for what an in-process server cannot show.

A node killed with SIGKILL, several nodes on one Redis, the start-up
failures a user sees on the console, an installed command: these need a
separate process. :class:`ServerProcess` runs ``notification_server.py`` (or
another command) with flags, waits until ``/heartbeat`` answers, and is
stopped by the ``spawn`` fixture after the test. Only processes started here
are ever signalled, always by PID.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Sequence

import aiohttp

from notification_service.config import PROJECT_ROOT

from .services import free_port
from .support import WAIT

SERVER_SCRIPT = PROJECT_ROOT / "notification_server.py"


class ServerProcess:
    """One server process on its own port, data folder and log file.

    :param folder: holds ``data/`` and ``server.log``.
    :param flags: extra command-line flags (``--redis-url``, ...).
    :param command: what to run instead of ``python notification_server.py``.
    :param env: extra environment variables.
    :param own_locations: pass ``--data-dir`` and ``--logfile`` inside ``folder``;
        False leaves the server's defaults (tests of the default locations).
    :param cwd: the working directory (default ``folder``).
    """

    def __init__(self, folder: Path, flags: Sequence[str] = (), *,
                 command: Sequence[str] | None = None, env: dict[str, str] | None = None,
                 port: int | None = None, own_locations: bool = True,
                 cwd: Path | None = None) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.logfile = folder / "server.log"
        self.flags = list(flags)
        self.command = list(command) if command else [sys.executable, str(SERVER_SCRIPT)]
        self.env = {**os.environ, **(env or {})}
        self.own_locations = own_locations
        self.cwd = cwd or folder
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def arguments(self) -> list[str]:
        locations = (["--data-dir", str(self.folder / "data"), "--logfile", str(self.logfile)]
                     if self.own_locations else [])
        return [*self.command, "--host", "127.0.0.1", "--port", str(self.port), *locations,
                *self.flags]

    async def start(self, *, wait: bool = True) -> None:
        """Start it; with ``wait``, until ``/heartbeat`` answers (or fail with its output)."""
        self.process = subprocess.Popen(self.arguments(), stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, env=self.env,
                                        cwd=self.cwd)
        if wait:
            await self.wait_ready()

    async def wait_ready(self) -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(int(2 * WAIT / 0.05)):
                if self.process is not None and self.process.poll() is not None:
                    raise AssertionError(f"the server exited with {self.process.returncode}:\n"
                                         f"{self.output()}")
                try:
                    async with http.get(self.url + "/heartbeat") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"the server did not answer /heartbeat on {self.url}")

    async def wait_exit(self, timeout: float = WAIT) -> int:
        """Wait for the process to end by itself; return its exit code."""
        assert self.process is not None
        return await asyncio.get_running_loop().run_in_executor(
            None, self.process.wait, timeout)

    def output(self) -> str:
        """What it printed, once it has ended."""
        if self.process is None or self.process.stdout is None or self.process.poll() is None:
            return ""
        return self.process.stdout.read().decode(errors="replace")

    async def stop(self) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL if it is still there after WAIT."""
        await self._signal(signal.SIGTERM)

    async def kill(self) -> None:
        """SIGKILL: like a crash or the OOM killer."""
        await self._signal(signal.SIGKILL)

    async def _signal(self, how: signal.Signals) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(how)
        try:
            await self.wait_exit()
        except subprocess.TimeoutExpired:
            process.kill()
            await self.wait_exit()
