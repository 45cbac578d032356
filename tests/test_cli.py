"""The command line: flags, environment variables, and stopping fast with pages attached."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import aiohttp
import pytest

from notification_service.config import PROJECT_ROOT, build_parser, settings_from_args

from .support import WAIT, connect_page

FLAGS = ["--host", "--port", "--loglevel", "--logfile", "--web-root", "--data-dir",
         "--history-size", "--history-age", "--history-bytes",
         "--publish-token", "--admin-token"]


def test_help_lists_every_flag_with_its_environment_variable():
    text = build_parser().format_help()
    for flag in FLAGS:
        assert flag in text
        assert "NOTIFY_" + flag[2:].replace("-", "_").upper() in text


def test_environment_variables_and_flags(monkeypatch, tmp_path):
    monkeypatch.setenv("NOTIFY_PORT", "9123")
    monkeypatch.setenv("NOTIFY_LOGLEVEL", "debug")
    monkeypatch.setenv("NOTIFY_DATA_DIR", str(tmp_path))
    settings = settings_from_args([])
    assert (settings.port, settings.loglevel, settings.data_dir) == (9123, "DEBUG", tmp_path)
    assert settings_from_args(["-p", "9000"]).port == 9000  # the flag wins


def test_bad_loglevel_in_environment_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("NOTIFY_LOGLEVEL", "verbose")
    with pytest.raises(SystemExit):
        settings_from_args([])
    assert "'VERBOSE' is not one of" in capsys.readouterr().err


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_stops_within_two_seconds_with_pages_attached(tmp_path, stop_signal):
    port = free_port()
    logfile = tmp_path / "log" / "server.log"
    process = subprocess.Popen(
        [sys.executable, str(PROJECT_ROOT / "notification_server.py"), "-p", str(port),
         "-f", str(logfile), "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ})
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # bounded wait for the port
                try:
                    async with http.get(url + "/heartbeat") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
        pages = [await connect_page(url, query="code=1234") for _ in range(5)]
        disconnected = [asyncio.Event() for _ in pages]
        for page, flag in zip(pages, disconnected):
            page.client.on("disconnect", lambda *args, flag=flag: flag.set())
        started = time.monotonic()
        process.send_signal(stop_signal)
        await asyncio.get_running_loop().run_in_executor(None, process.wait, WAIT)
        elapsed = time.monotonic() - started
        assert elapsed < 2.0, f"took {elapsed:.2f} s to stop"
        await asyncio.wait_for(asyncio.gather(*(flag.wait() for flag in disconnected)), WAIT)
        assert "Traceback" not in process.stderr.read().decode()
        assert logfile.exists() and "listening on" in logfile.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
