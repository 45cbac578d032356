"""What the request guards cost a GET trigger: Host, other sites, the rate limit, the body deadline.

Every request passes the front door (frontdoor.py: CORS, guards.py, page
triggers, http_limits.py) before its handler. This prices it on the trigger
path, in-process, against a baseline measured in the same run: the same
handler with only the error handling around it (what every request pays). Rounds are interleaved and the median is
quoted (never the best). A whole GET trigger costs about 73 µs of server CPU
(shared/FACTS.md), so the difference is the share the guards add.

    python bench/guards.py [--calls 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from unittest import mock

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from notification_service import cors, frontdoor, guards  # noqa: E402
from notification_service.config import SETTINGS_KEY, Settings  # noqa: E402
from notification_service.errors import answer_for  # noqa: E402
from notification_service.ratelimit import RATE_LIMITS_KEY, Rate, RateLimits  # noqa: E402


async def handler(_request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok")


async def routed_request(address: str) -> web.Request:
    """A GET trigger from ``address``, resolved by the router as the server would."""
    settings = Settings(port=0, logfile=None)
    app = web.Application()
    app[SETTINGS_KEY] = settings
    app[RATE_LIMITS_KEY] = RateLimits.from_settings(settings)
    app.router.add_get("/notify", handler, name="notify")
    transport = mock.Mock()
    transport.get_extra_info.side_effect = (
        lambda name, default=None: (address, 50000) if name == "peername" else default)
    request = make_mocked_request("GET", "/notify?code=1234&event=follow&user=bob",
                                  headers={"Host": "127.0.0.1:8080"}, app=app,
                                  transport=transport)
    match = await app.router.resolve(request)
    match.add_app(app)
    request._match_info = match  # what the server does before the middlewares run
    return request


def chain(settings: Settings, request: web.Request):  # type: ignore[no-untyped-def]
    """The front door of app.py around ``handler``."""
    limits = request.app[RATE_LIMITS_KEY]
    door = frontdoor.middleware(cors.CorsPolicy([]),
                                guards.RequestGuards(settings.host, [], [], limits),
                                settings.body_timeout, cors.SOCKETIO_PREFIX)

    async def call(request: web.Request) -> web.StreamResponse:
        return await door(request, handler)

    return call


async def baseline(request: web.Request) -> web.StreamResponse:
    try:
        return await handler(request)
    except Exception as error:
        return answer_for(request, error)


async def timed(call, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - started) / calls * 1e6


async def main(options: argparse.Namespace) -> None:
    settings = Settings(port=0, logfile=None)
    for address, what in (("127.0.0.1", "from this machine (publishing exempt)"),
                          ("198.51.100.7", "from another machine (publish bucket taken)")):
        request = await routed_request(address)
        if address != "127.0.0.1":  # a bucket that never empties: every call takes a token
            request.app[RATE_LIMITS_KEY].publish.rate = Rate(10 ** 9, 1.0)
        through = chain(settings, request)
        bare, guarded = [], []
        for _ in range(options.rounds):  # interleaved
            bare.append(await timed(lambda: baseline(request), options.calls))
            guarded.append(await timed(lambda: through(request), options.calls))
        base, with_guards = statistics.median(bare), statistics.median(guarded)
        print(f"{what}: errors only {base:.2f} µs, with the guards {with_guards:.2f} µs "
              f"(+{with_guards - base:.2f} µs a request; medians of {options.rounds} rounds)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    asyncio.run(main(parser.parse_args()))
