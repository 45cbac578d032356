"""Garbage-collector settings for a server that holds thousands of long-lived connections.

CPython's default collector runs its youngest generation every 700 net
allocations and, every few of those, walks the older generations too. A
server with 5,000 open WebSockets has hundreds of thousands of long-lived
objects (connections, their state, every imported module), and the
per-event objects of a broadcast trigger collections that walk them again
and again: measured here, the collector took 48% of the event loop during a
5,000-client fan-out (shared/FACTS.md). What the server allocates per event
is freed by reference counting; cycles are rare and small. So:

* everything alive once start-up is done (modules, the app, its routes) is
  moved out of the collector's sight with ``gc.freeze()``;
* the youngest generation is collected every 100,000 allocations instead of
  700, the older ones more rarely still;
* the heap start-up freed is given back to the operating system.
"""

from __future__ import annotations

import gc
import sys

THRESHOLDS = (100_000, 50, 50)
"""Allocations before a young collection, then young collections per middle one, middle per old."""


def settle_after_startup() -> None:
    """Freeze what start-up built and set thresholds for long-lived connections.

    Call once, when the app is built and listening: objects made later are
    tracked as usual, so a connection's cycles are still found and freed.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    give_back_freed_memory()


def give_back_freed_memory() -> bool:
    """Return the heap start-up freed to the operating system (glibc's ``malloc_trim``).

    Importing and building the app frees much of what it allocated, but glibc
    keeps those pages for reuse. Trimming gives back about 1.3 MB (0.6 MB net:
    ``ctypes`` costs the rest). False where there is no glibc (macOS, Windows,
    musl): nothing to do there.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    trim(0)
    return True
