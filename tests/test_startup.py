"""Start-up failures are one sentence and exit code 2, never a traceback (row 10).

Before: 11 of 11 bad data folders (read-only, full, corrupt SQLite, garbage
PEM, a file where a folder belongs) ended in a 14-84-line traceback, some
after "listening on"; a port in use, a bad host, an unwritable log folder
too, and "listening on" came before the bind. Each case here runs the real
command (``spawn(..., wait=False)``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .support import WAIT, require


def mountable() -> bool:
    return sys.platform == "linux" and os.geteuid() == 0


@contextlib.contextmanager
def tmpfs(path: Path, *, size: str = "1m", read_only: bool = False):
    """A small filesystem of our own at ``path``: full or read-only, even for root."""
    require(mountable(), "mounting a tmpfs needs root on Linux")
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> None:
    """Write until the disk says ENOSPC."""
    with open(folder / "filler", "wb") as file:
        with contextlib.suppress(OSError):
            while True:
                file.write(b"\0" * 65536)
                file.flush()


async def fails_with(node, *fragments: str) -> str:
    code = await node.wait_exit(4 * WAIT)  # the machine may be busy: Python starts slowly
    output = node.output()
    lines = [line for line in output.splitlines() if line.strip()]
    assert code == 2, output
    assert "Traceback" not in output and "listening on" not in output, output
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and lines[-1] == errors[0], output
    for fragment in fragments:
        assert fragment in errors[0], output
    return errors[0]


async def test_port_in_use(spawn):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        node = await spawn(port=port, wait=False)
        await fails_with(node, f"127.0.0.1:{port} is already in use", "-p")


@pytest.mark.parametrize("host, fragment", [
    ("no-such-host.invalid", "no such address or host name"),
    ("192.0.2.77", "this machine has no such address"),
])
async def test_bad_host(spawn, host, fragment):
    node = await spawn("--host", host, wait=False)
    await fails_with(node, host, fragment, "-H")


@pytest.mark.parametrize("flags, fragment", [
    (["-p", "99999"], "99999 is above the largest allowed value, 65535"),
    (["--publish-rate", "lots"], "'lots' is not a rate"),
    (["--webpush-allow", "push.example:http"], "the port must be a number"),
])
async def test_bad_values(spawn, flags, fragment):
    node = await spawn(*flags, wait=False)
    await fails_with(node, fragment)


@contextlib.contextmanager
def folder_that_is(state: str, tmp_path: Path):
    """A folder the server cannot use, in one of four ways."""
    if state == "a file":
        (tmp_path / "folder").write_text("not a folder")
        yield tmp_path / "folder"
    elif state == "under a file":
        (tmp_path / "blocker").write_text("x")
        yield tmp_path / "blocker" / "folder"
    elif state == "read-only":
        with tmpfs(tmp_path / "folder", read_only=True) as folder:
            yield folder
    else:
        with tmpfs(tmp_path / "folder", size="256k") as folder:
            fill(folder)
            yield folder


@pytest.mark.parametrize("state, fragment", [
    ("a file", "is a file, not a folder"), ("under a file", "is a file, not a folder"),
    ("read-only", "is not writable"), ("full", "is full")])
@pytest.mark.parametrize("flag, what", [("--data-dir", "data folder"), ("--logfile", "log folder")])
async def test_an_unusable_data_or_log_folder(spawn, tmp_path, state, fragment, flag, what):
    with folder_that_is(state, tmp_path) as folder:
        value = folder / "server.log" if flag == "--logfile" else folder
        node = await spawn(flag, str(value), wait=False)
        await fails_with(node, what, str(folder.name), fragment, flag)


@pytest.mark.parametrize("name, fragment", [
    ("webpush.sqlite3", "The Web Push database"),
    ("spaces.sqlite3", "The space secrets database"),
])
async def test_corrupt_sqlite(spawn, tmp_path, name, fragment):
    node_folder = tmp_path / "node0" / "data"
    node_folder.mkdir(parents=True)
    (node_folder / name).write_bytes(b"this is not a database" * 200)
    node = await spawn(wait=False)
    await fails_with(node, fragment, name, "move it away")


async def test_garbage_pem(spawn, tmp_path):
    data = tmp_path / "node0" / "data"
    data.mkdir(parents=True)
    (data / "vapid_private.pem").write_text("-----BEGIN PRIVATE KEY-----\ngarbage\n")
    node = await spawn(wait=False)
    await fails_with(node, "vapid_private.pem", "is not a PEM P-256 private key")


async def test_missing_vapid_key_file(spawn, tmp_path):
    node = await spawn("--vapid-key", str(tmp_path / "nowhere.pem"), wait=False)
    await fails_with(node, "nowhere.pem", "does not exist")


async def test_listening_is_logged_after_the_bind_with_absolute_paths(spawn, tmp_path, http):
    node = await spawn("--port", "0", "--data-dir", "relative-data", wait=False)
    line = ""
    for _ in range(200):  # bounded: until the line is written
        if node.logfile.exists():
            line = next((line for line in node.logfile.read_text().splitlines()
                         if "listening on" in line), "")
            if line:
                break
        await asyncio.sleep(0.05)
    port = int(re.search(r"listening on http://127\.0\.0\.1:(\d+)/;", line).group(1))
    assert port != 0  # -p 0 took a free port, and the line says which
    async with http.get(f"http://127.0.0.1:{port}/heartbeat") as response:
        assert response.status == 200  # bound when it said so
    # absolute, the relative one taken from its working folder
    assert f"data folder {tmp_path / 'node0' / 'relative-data'}," in line
    assert f"log file {node.logfile}," in line and "serving the shipped pages" in line
