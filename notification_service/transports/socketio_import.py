"""Import python-socketio without the libraries its package imports for clients and Redis.

``import socketio`` runs the package's ``__init__``, which imports the
synchronous client's HTTP and WebSocket libraries (requests, urllib3,
charset_normalizer, certifi, websocket-client) if they are installed: about
5 MB of RSS in a server that never uses them. Both imports are optional in
python-engineio (``try: import requests except ImportError``), so they are
hidden while the package loads. A later ``import requests`` elsewhere works
as usual; only python-engineio's synchronous client, which this server never
uses, is left without them.

The package also imports redis (about 7 MB) and valkey for its Redis client
managers, which this server never uses (its own bus is ``cluster/``). They are
hidden too, and the two manager modules, loaded without them, are dropped
again: ``socketio.RedisManager`` / ``socketio.AsyncRedisManager`` load them
anew, with redis, on first use (a module ``__getattr__``).
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

CLIENT_ONLY = ("requests", "websocket")
REDIS_CLIENTS = ("redis", "valkey")
REDIS_MANAGERS = {"RedisManager": "redis_manager", "AsyncRedisManager": "async_redis_manager"}


def _load() -> None:
    if "socketio" in sys.modules:
        return
    hidden = [name for name in CLIENT_ONLY + REDIS_CLIENTS if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail
    try:
        import socketio
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    if "redis" in hidden:
        _defer_redis_managers(socketio)


def _defer_redis_managers(package: ModuleType) -> None:
    """Forget the manager modules loaded without redis; load them again when asked for."""
    for name, module in REDIS_MANAGERS.items():
        delattr(package, name)
        delattr(package, module)
        del sys.modules[f"{package.__name__}.{module}"]

    def __getattr__(name: str) -> object:
        if name in REDIS_MANAGERS:
            module = importlib.import_module(f".{REDIS_MANAGERS[name]}", package.__name__)
            setattr(package, name, getattr(module, name))
            return getattr(module, name)
        raise AttributeError(f"module {package.__name__!r} has no attribute {name!r}")

    package.__getattr__ = __getattr__  # type: ignore[attr-defined]  # PEP 562


_load()
