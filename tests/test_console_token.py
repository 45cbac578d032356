"""On start the server prints the console's link; the generated admin token is kept private."""

from __future__ import annotations

import os
import re
import stat

from notification_service.alerts.console import TOKEN_FILE, load_or_create

LINK = re.compile(r"Console: (http://127\.0\.0\.1:(\d+)/console/)(#token=(\S+))?")


async def test_the_printed_link_opens_the_console_with_a_private_token(spawn, http):
    node = await spawn()
    async with http.get(f"{node.url}/") as response:  # "/" leads to the console
        assert response.status == 200 and str(response.url) == f"{node.url}/console/"
        assert "Alert console" in await response.text()
    await node.stop()
    found = LINK.search(node.output())
    assert found is not None, node.output()
    assert int(found.group(2)) == node.port
    token_file = node.folder / "data" / TOKEN_FILE
    assert found.group(4) == token_file.read_text().strip()
    if os.name == "posix":
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert found.group(4) not in node.logfile.read_text()  # printed, never logged
    assert load_or_create(token_file) == found.group(4)  # the next start reads the same one


async def test_the_token_guards_the_alert_routes(spawn, http):
    node = await spawn()
    token = (node.folder / "data" / TOKEN_FILE).read_text().strip()
    url = f"{node.url}/codes/abc/queue"
    async with http.post(url, json={"action": "pause"}) as response:
        assert response.status == 401
    async with http.post(url, json={"action": "pause"},
                         headers={"Authorization": f"Bearer {token}"}) as response:
        assert (await response.json())["paused"] is True
    async with http.put(f"{node.url}/admin/spaces/dir", json={"secret": "s"},
                        headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 403  # the other admin routes stay off without --admin-token


async def test_with_admin_token_the_link_carries_no_token(spawn):
    node = await spawn("--admin-token", "operator-secret-123")
    await node.stop()
    found = LINK.search(node.output())
    assert found is not None and found.group(3) is None
    assert "operator-secret-123" not in node.output()
    assert not (node.folder / "data" / TOKEN_FILE).exists()


def test_a_damaged_token_file_is_replaced(tmp_path):
    path = tmp_path / TOKEN_FILE
    path.write_text("short\n")
    token = load_or_create(path)
    assert len(token) >= 32 and path.read_text().strip() == token
    assert load_or_create(path) == token
