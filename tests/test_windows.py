"""Windows code paths, driven here: stopping without loop.add_signal_handler, no POSIX-only
call on the start path.

Windows' event loops raise NotImplementedError from add_signal_handler. The
stop path for them is forced on this machine two ways: in-process through the
platform parameter, and as a whole server process whose event loop refuses
signal handlers like a Windows loop does, stopped with pages attached.
"""

from __future__ import annotations

import ast
import asyncio
import signal
import sys
import time

import pytest

from notification_service import stopping
from notification_service.config import PROJECT_ROOT

from .support import WAIT, connect_page

# The real CLI, with the stop path Windows takes: no uvloop (it does not install there),
# a loop whose add_signal_handler raises like Windows' loops do, and the platform check
# answering "win32".
AS_ON_WINDOWS = """
import asyncio, sys
sys.path.insert(0, {root!r})
sys.modules["uvloop"] = None
def refuse(*_args, **_kwargs):
    raise NotImplementedError("as on Windows")
asyncio.AbstractEventLoop.add_signal_handler = refuse
asyncio.unix_events._UnixSelectorEventLoop.add_signal_handler = refuse
from notification_service import stopping
stopping.on_stop_signal.__kwdefaults__["platform"] = "win32"
from notification_service.cli import main
sys.exit(main(sys.argv[1:]))
""".format(root=str(PROJECT_ROOT))


@pytest.mark.parametrize("number", stopping.stop_signals())
async def test_windows_path_stops_on_a_signal_without_add_signal_handler(monkeypatch, number):
    loop = asyncio.get_running_loop()

    def refuse(*_args, **_kwargs):
        raise NotImplementedError("as on Windows")

    monkeypatch.setattr(loop, "add_signal_handler", refuse)
    before = signal.getsignal(number)
    stopped: asyncio.Future[str] = loop.create_future()
    restore = stopping.on_stop_signal(loop, stopped.set_result, platform="win32")
    try:
        signal.raise_signal(number)
        assert await asyncio.wait_for(stopped, WAIT) == number.name
    finally:
        restore()
    assert signal.getsignal(number) is before


async def test_a_loop_without_signal_support_falls_back_on_posix_too(monkeypatch):
    loop = asyncio.get_running_loop()
    added = []

    def refuse_second(number, callback, *arguments):
        if added:
            raise NotImplementedError
        added.append(number)

    monkeypatch.setattr(loop, "add_signal_handler", refuse_second)
    monkeypatch.setattr(loop, "remove_signal_handler", lambda number: added.remove(number))
    stopped: asyncio.Future[str] = loop.create_future()
    restore = stopping.on_stop_signal(loop, stopped.set_result, platform="linux")
    try:
        assert added == []  # the half-installed loop handlers were taken back
        signal.raise_signal(signal.SIGTERM)
        assert await asyncio.wait_for(stopped, WAIT) == "SIGTERM"
    finally:
        restore()


@pytest.mark.skipif(sys.platform == "win32", reason="signals a child process, a POSIX call")
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM])
async def test_server_on_the_windows_path_shuts_down_cleanly_with_pages_attached(spawn, number):
    server = await spawn(command=[sys.executable, "-c", AS_ON_WINDOWS])
    pages = [await connect_page(server.url, query="code=win1234") for _ in range(3)]
    gone = [asyncio.Event() for _ in pages]
    for page, flag in zip(pages, gone):
        page.client.on("disconnect", lambda *_args, flag=flag: flag.set())
    started = time.monotonic()
    server.process.send_signal(number)
    assert await server.wait_exit() == 0  # not ended by the signal itself: it shut down
    elapsed = time.monotonic() - started
    await asyncio.wait_for(asyncio.gather(*(flag.wait() for flag in gone)), WAIT)
    output = server.output()
    assert elapsed < 2.0, f"took {elapsed:.2f} s"
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    log = server.logfile.read_text()
    assert "listening on" in log and f"stopping ({number.name})" in log, log[-600:]


POSIX_ONLY_MODULES = {"fcntl", "pwd", "grp", "resource", "termios", "pty"}
POSIX_ONLY_CALLS = {"fork", "forkpty", "getuid", "geteuid", "getgid", "setsid", "setuid",
                    "killpg", "getpgid", "chown", "mkfifo", "nice", "add_signal_handler",
                    "SIGKILL", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD", "SIGQUIT"}
GUARDED_CALLS = {"chmod"}  # works on Windows, but only sets the read-only flag there


def _platform_guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and any(
                isinstance(part, ast.Attribute) and part.attr in ("name", "platform")
                for part in ast.walk(node.test)):
            return True
    return False


def test_no_posix_only_call_in_the_package():
    """What the server runs must exist on Windows: no fork, uid, POSIX-only signal or module,
    and chmod only behind a platform check (stopping.py is the one place that may ask a loop
    for signal handlers, and it falls back)."""
    package = PROJECT_ROOT / "notification_service"
    found = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: parent for parent in ast.walk(tree)
                   for child in ast.iter_child_nodes(parent)}
        where = path.relative_to(PROJECT_ROOT)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [alias.name for alias in node.names] if isinstance(node, ast.Import) \
                    else [node.module or ""]
                found += [f"{where}:{node.lineno} imports {name}" for name in names
                          if name.split(".")[0] in POSIX_ONLY_MODULES]
            elif isinstance(node, ast.Attribute):
                if node.attr in POSIX_ONLY_CALLS and path.name != "stopping.py":
                    found.append(f"{where}:{node.lineno} uses {node.attr}")
                if node.attr in GUARDED_CALLS and not _platform_guarded(node, parents):
                    found.append(f"{where}:{node.lineno} calls {node.attr} without a "
                                 f"platform check")
    assert found == []
