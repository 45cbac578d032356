"""Liveness and health routes for monitors, load balancers and the seed-0 heartbeat.

``/heartbeat`` answers that the process runs. ``/health`` asks every component
that registered a check (the data folder by writing to it, the Web Push store
by querying it, later Redis) and answers 503 naming the failing ones, so a
load balancer takes a node with a full disk or a dead store out of rotation. Deliberately nothing that lists codes or channels: a listening
code is a secret (the original ``/clients`` route leaked every one of them).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Awaitable, Callable

from aiohttp import web

from . import jsoncodec
from .errors import COMPONENT_FAILING
from .folders import probe, sentence

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0

HealthCheck = Callable[[], Awaitable[object]]  # what it returns is ignored


class HealthChecks:
    """Named async checks. A check returns when its component works and raises when not.

    The exception's message is shown to the caller, so a check must raise with
    a message that carries no secret (no connection strings with passwords).

    :param timeout: seconds a check may take before it counts as failing.
    """

    def __init__(self, timeout: float = CHECK_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._checks: dict[str, HealthCheck] = {}

    def add(self, name: str, check: HealthCheck) -> None:
        if name in self._checks:
            raise ValueError(f"a health check named {name!r} is already registered")
        self._checks[name] = check

    async def run(self) -> dict[str, dict[str, str]]:
        """Run every check concurrently; return each component's state."""
        names = list(self._checks)
        results = await asyncio.gather(*(self._run_one(name) for name in names))
        return dict(zip(names, results))

    async def _run_one(self, name: str) -> dict[str, str]:
        try:
            await asyncio.wait_for(self._checks[name](), self.timeout)
        except asyncio.TimeoutError:
            return {"status": "fail", "error": f"no answer within {self.timeout:g} s"}
        except Exception as error:  # a health check reports failures, it never raises them
            log.warning("health check %s failed: %s", name, error)
            return {"status": "fail", "error": str(error) or type(error).__name__}
        return {"status": "ok"}


def data_dir_check(path: Path) -> HealthCheck:
    """The data folder takes a write (keys and SQLite stores live there).

    A real write, synced: ``os.access`` says yes on a full disk, on a
    read-only mount and to root.
    """
    async def check() -> None:
        try:
            await asyncio.to_thread(probe, path)
        except OSError as error:
            raise RuntimeError(sentence(error, path, "data folder", "--data-dir")) from None
    return check


async def heartbeat(_request: web.Request) -> web.Response:
    return web.json_response({"heartbeat": "OK"})


async def health(request: web.Request) -> web.Response:
    components = await request.app[HEALTH_KEY].run()
    failing = sorted(name for name, state in components.items() if state["status"] != "ok")
    if not failing:
        return web.json_response({"status": "ok", "components": components},
                                 dumps=jsoncodec.dumps)
    error = COMPONENT_FAILING(f"Failing: {', '.join(failing)}.")
    body = {"status": "fail", "failing": failing, "components": components, **error.to_dict()}
    return web.json_response(body, status=error.http, dumps=jsoncodec.dumps)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/heartbeat", heartbeat, name="heartbeat")
    app.router.add_get("/health", health, name="health")


HEALTH_KEY = web.AppKey("health_checks", HealthChecks)
