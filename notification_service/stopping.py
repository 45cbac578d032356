"""Stopping on a signal, the same way on every platform.

Ctrl+C and SIGTERM (systemd, Docker, ``kill``) on POSIX; Ctrl+C, Ctrl+Break and
closing the console window (which Windows delivers as SIGBREAK) on Windows. A
POSIX event loop takes signal handlers (``loop.add_signal_handler``); Windows'
event loops raise NotImplementedError there, and without a handler Ctrl+C only
surfaces as a KeyboardInterrupt wherever the loop happens to be. So there the
plain ``signal.signal`` handler is used, and all it does is hand ``stop`` to
the loop with ``call_soon_threadsafe`` (which also wakes a loop waiting for
I/O). Either way the server then shuts down as usual: connections closed at
once, stores closed, the log flushed.

This module must never do more in a handler than schedule ``stop``, and never
touch a signal the platform does not have.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Callable


def stop_signals() -> list[signal.Signals]:
    """The signals that mean "stop" here: SIGINT, SIGTERM, and SIGBREAK where it exists."""
    names = ("SIGINT", "SIGTERM", "SIGBREAK")
    return [getattr(signal, name) for name in names if hasattr(signal, name)]


def on_stop_signal(loop: asyncio.AbstractEventLoop, stop: Callable[[str], None], *,
                   platform: str = sys.platform) -> Callable[[], None]:
    """Call ``stop(signal name)`` on the loop when a stop signal arrives; return a function
    undoing it.

    ``platform`` is the platform check, a parameter so tests drive the Windows path here.
    """
    if platform != "win32":
        added: list[signal.Signals] = []
        try:
            for number in stop_signals():
                loop.add_signal_handler(number, stop, number.name)
                added.append(number)
        except NotImplementedError:  # a loop without signal support: the portable way below
            for number in added:
                loop.remove_signal_handler(number)
        else:
            def remove() -> None:
                for number in added:
                    loop.remove_signal_handler(number)
            return remove
    return _with_signal_module(loop, stop)


def _with_signal_module(loop: asyncio.AbstractEventLoop,
                        stop: Callable[[str], None]) -> Callable[[], None]:
    """``signal.signal`` handlers (the main thread only) that schedule ``stop`` on ``loop``."""
    def handler(number: int, _frame: object) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(stop, signal.Signals(number).name)

    previous = {number: signal.signal(number, handler) for number in stop_signals()}

    def restore() -> None:
        for number, earlier in previous.items():
            signal.signal(number, earlier)
    return restore
