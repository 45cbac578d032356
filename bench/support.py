"""Shared pieces of the benchmarks: start a server process, wait for it, read its CPU, memory
and children from /proc, summarise latencies. Nothing here measures anything by itself."""

from __future__ import annotations

import asyncio
import ctypes
import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def wait_until_up(url: str, tries: int = 200) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(tries):
            try:
                async with http.get(url) as response:
                    if response.status < 500:
                        return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def start_process(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=PROJECT_ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_process(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.clock_getcpuclockid, libc.clock_gettime  # noqa: B018 (both must exist)
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _libc()


class _Timespec(ctypes.Structure):
    _fields_ = [("seconds", ctypes.c_long), ("nanoseconds", ctypes.c_long)]


def _cpu_clock_seconds(pid: int) -> float | None:
    """A process's CPU time to the nanosecond (all its threads), from its POSIX CPU-time clock.

    /proc's figures count in ticks of 10 ms, about a quarter of what bench/trigger.py's
    turn of 500 requests costs a server; this clock lets turns be short and many.
    """
    if _LIBC is None:
        return None
    clock = ctypes.c_int()
    if _LIBC.clock_getcpuclockid(pid, ctypes.byref(clock)) != 0:
        return None
    now = _Timespec()
    if _LIBC.clock_gettime(clock, ctypes.byref(now)) != 0:
        return None
    return now.seconds + now.nanoseconds / 1e9


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process: to the nanosecond where the C library tells it
    (Linux), else from /proc in clock ticks; None where neither is available."""
    precise = _cpu_clock_seconds(pid)
    if precise is not None:
        return precise
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def ratio_or_none(figure: float, baseline: float) -> float | None:
    """figure / baseline, None when the baseline read 0 (too short a run for /proc's ticks)."""
    return figure / baseline if baseline else None


def child_pids(pid: int) -> list[int]:
    """The direct children of a process, whichever of its threads started them (Linux /proc)."""
    children: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return children
    for task in tasks:
        try:
            children += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def rss_bytes(pid: int) -> int:
    """RSS of ``pid`` and its descendants (a worker process's memory counts too)."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    except OSError:
        return total
    return total + sum(rss_bytes(child) for child in child_pids(pid))


def raise_file_limit(needed: int = 0) -> None:
    """Raise this process's open-file limit to its hard limit (children inherit it); exit
    with a sentence saying what to do if that is still below ``needed``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # an unlimited hard limit may be above the kernel's
            if soft < needed:
                resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        sys.exit(f"ulimit -n is {soft}; this run needs {needed} open files "
                 "(raise the hard limit: ulimit -Hn, or /etc/security/limits.conf)")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's event loop where it installs (as the server uses it), asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
