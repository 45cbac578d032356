"""Private spaces and the connection registry are bounded (issue 9, build item 1).

Past a bound a typed error (507 or 429, stable code, a sentence), never growth:
measured as the SQLite file and the objects in memory, within 2x the bound.
"""

from __future__ import annotations

import sys

import aiohttp
import pytest

from notification_service.registry import REGISTRY_KEY
from notification_service.spaces import SPACES_KEY

from .sse_client import SECRET, make_token
from .support import connect_page

ADMIN = "admin-token-for-bounds"
KiB = 1024


async def put_space(http, server, space: str, secret: str) -> tuple[int, dict]:
    async with http.put(f"{server.url}/admin/spaces/{space}", json={"secret": secret},
                        headers={"Authorization": f"Bearer {ADMIN}"}) as response:
        return response.status, await response.json()


def deep_size(secrets: dict[str, str]) -> int:
    return sys.getsizeof(secrets) + sum(sys.getsizeof(k) + sys.getsizeof(v)
                                        for k, v in secrets.items())


async def test_space_secrets_are_bounded_in_bytes(serve, http):
    bound = 256 * KiB
    server = await serve(admin_token=ADMIN, spaces_max_bytes=bound)
    answers = []
    for n in range(400):  # 400 x 1 KB secrets: more than the bound
        status, answer = await put_space(http, server, f"space{n}", f"{n:04d}" + "s" * 1020)
        answers.append((status, answer.get("code")))
    assert set(answers) == {(200, None), (507, 50740)}
    spaces = server.app[SPACES_KEY]
    assert spaces.bytes <= bound
    assert await put_space(http, server, "space0", "shorter") == (
        200, {"space": "space0", "created": False})  # rotating never needs room
    await server.stop()  # the database is closed and written
    database = server.settings.data_dir / "spaces.sqlite3"
    size = database.stat().st_size
    memory = deep_size(spaces._secrets)
    print(f"\n{spaces.count} spaces kept: {size / KiB:.0f} KiB on disk, {memory / KiB:.0f} KiB "
          f"of objects, for a {bound / KiB:.0f} KiB bound")
    assert size <= 2 * bound and memory <= 2 * bound


async def test_space_count_is_bounded(serve, http):
    server = await serve(admin_token=ADMIN, max_spaces=5)
    for n in range(5):
        assert (await put_space(http, server, f"s{n}", "secret"))[0] == 200
    status, answer = await put_space(http, server, "s5", "secret")
    assert (status, answer["code"]) == (507, 50740) and "--max-spaces" in answer["error"]
    async with http.delete(f"{server.url}/admin/spaces/s0",
                           headers={"Authorization": f"Bearer {ADMIN}"}) as response:
        assert response.status == 200
    assert (await put_space(http, server, "s5", "secret"))[0] == 200  # room again


async def sse(http, server, user: str, app: str) -> aiohttp.ClientResponse:
    return await http.get(f"{server.url}/sse",
                          headers={"Authorization": f"Bearer {make_token(user, app)}"},
                          timeout=aiohttp.ClientTimeout(total=None, sock_read=None))


@pytest.mark.server(jwt_secret=SECRET, max_connections_per_application=3,
                    max_identified_connections=5)
async def test_identified_connections_are_bounded_per_application_and_in_all(server, http):
    registry = server.app[REGISTRY_KEY]
    opened = [await sse(http, server, f"u{n}", "shop") for n in range(3)]
    assert [response.status for response in opened] == [200, 200, 200]
    refused = await sse(http, server, "u3", "shop")
    answer = await refused.json()
    assert (refused.status, answer["code"]) == (429, 42960)
    assert "--max-connections-per-application" in answer["error"] and refused.headers["Retry-After"]
    page = await connect_page(server.url, auth={"token": make_token("bob", "shop")})
    try:
        [error] = await page.wait_for("ERROR")  # socket.io is refused the same way
        assert error["code"] == 42960
    finally:
        await page.close()
    opened += [await sse(http, server, f"v{n}", "blog") for n in range(2)]
    assert registry.total == 5
    full = await sse(http, server, "w0", "forum")
    answer = await full.json()
    assert (full.status, answer["code"]) == (507, 50760)
    assert "--max-identified-connections" in answer["error"]
    assert registry.total == 5 and registry.total <= registry.max_total
    anonymous = await http.get(f"{server.url}/sse?code=public", timeout=aiohttp.ClientTimeout(
        total=None, sock_read=None))
    assert anonymous.status == 200  # listeners without an identity are not listed, not limited
    for response in (*opened, anonymous):
        response.close()


def test_the_registry_is_bounded_in_bytes_by_its_count_and_the_name_limits():
    """The byte side of --max-identified-connections: JWT names are at most 128
    characters (identity.NAME_MAX_LENGTH), so a full registry of the costliest
    entries (distinct 4-byte-character applications and users) stays under
    2 KiB a connection, and a connection past the bound adds nothing."""
    import gc
    import tracemalloc

    from notification_service.access import Identity
    from notification_service.errors import ApiError
    from notification_service.identity import NAME_MAX_LENGTH
    from notification_service.registry import ConnectionInfo, ConnectionRegistry

    bound, per_connection = 2_000, 2 * KiB
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        registry = ConnectionRegistry(max_per_application=bound, max_total=bound)
        refused = 0
        for n in range(bound + 500):
            name = f"{n:06d}" + "\U0001F600" * (NAME_MAX_LENGTH - 6)
            identity = Identity(name, name)
            try:
                registry.admit(identity)
            except ApiError:
                refused += 1
                continue
            registry.add(ConnectionInfo(f"{n:020d}", identity, "sse", "2001:db8::1"))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    print(f"\n{registry.total} identified connections: {held / KiB:.0f} KiB "
          f"({held / registry.total:.0f} B each), {refused} refused")
    assert registry.total == bound and refused == 500
    assert held <= bound * per_connection
