"""Import python-socketio without the client libraries its package imports for its clients.

``import socketio`` runs the package's ``__init__``, which imports the
synchronous client's HTTP and WebSocket libraries (requests, urllib3,
charset_normalizer, certifi, websocket-client) if they are installed: about
5 MB of RSS in a server that never uses them. Both imports are optional in
python-engineio (``try: import requests except ImportError``), so they are
hidden while the package loads. A later ``import requests`` elsewhere works
as usual; only python-engineio's synchronous client, which this server never
uses, is left without them.
"""

from __future__ import annotations

import sys

CLIENT_ONLY = ("requests", "websocket")


def _load() -> None:
    if "socketio" in sys.modules:
        return
    hidden = [name for name in CLIENT_ONLY if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail
    try:
        import socketio  # noqa: F401
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]


_load()
