"""/openapi.json describes the whole HTTP API, and schemathesis keeps it true.

The fuzzing runs the schemathesis CLI against a real server on a real port,
with every check on: no 5xx, every status, content type, header and body as
described, invalid input refused, valid input accepted.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import sysconfig
from pathlib import Path

import pytest

from notification_service.openapi import load_spec

from .support import require

TOKEN = "fuzz-token"
# Operations whose valid input no JSON schema can describe exactly.
BEYOND_SCHEMA = ("webpushSubscribe", "alertMediaUpload", "alertDesignsPut")


def test_fragments_merge_and_refuse_conflicts(tmp_path):
    spec = load_spec()
    assert spec["openapi"].startswith("3.")
    for path in ("/notify", "/heartbeat", "/health", "/emit", "/broadcast/{channel}/{event}",
                 "/admin/spaces/{space}", "/openapi.json"):
        assert path in spec["paths"], path
    assert "Error" in spec["components"]["schemas"]
    (tmp_path / "a.json").write_text('{"paths": {"/x": {"get": {"responses": {}}}}}')
    (tmp_path / "b.json").write_text('{"paths": {"/x": {"post": {"responses": {}}}}}')
    with pytest.raises(ValueError, match="b.json redefines paths//x"):
        load_spec(tmp_path)


async def test_openapi_is_served(server, http):
    async with http.get(f"{server.url}/openapi.json") as response:
        assert response.status == 200
        assert response.content_type == "application/json"
        assert (await response.json())["paths"].keys() == load_spec()["paths"].keys()


def schemathesis_executable() -> str | None:
    """The schemathesis CLI installed with the Python running the tests, else one on PATH.

    ``.venv/bin/python -m pytest`` runs from a virtualenv that is not activated,
    so its ``bin/`` (``Scripts\\`` on Windows) is not on PATH: look beside
    ``sys.executable`` and in this interpreter's scripts folder first.
    """
    suffix = ".exe" if sys.platform == "win32" else ""
    folders = [Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))]
    for folder in folders:
        for name in ("schemathesis", "st"):
            candidate = folder / (name + suffix)
            if candidate.is_file():
                return str(candidate)
    return shutil.which("schemathesis") or shutil.which("st")


async def run_schemathesis(executable: str, url: str, report_dir, *options: str) -> str:
    process = await asyncio.create_subprocess_exec(
        executable, "run", f"{url}/openapi.json",
        "--header", f"Authorization: Bearer {TOKEN}",
        "--max-examples", "20", "--seed", "20261122",
        "--generation-database", "none", "--workers", "1", "--no-color",
        "--report-dir", str(report_dir), *options,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=report_dir)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=90)
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    assert "Failures:" not in text, text[-3000:]  # warnings (e.g. 404s for random endpoints) are fine
    return text


@pytest.mark.server(secret=TOKEN, publish_token=TOKEN, admin_token=TOKEN)
async def test_schemathesis_finds_nothing(server, tmp_path):
    executable = schemathesis_executable()
    require(executable is not None, "schemathesis is not installed (pip install schemathesis)")
    # /sse never ends by itself (a stream), so it cannot be fuzzed request by
    # request; tests/test_sse*.py cover it, including against its fragment.
    await run_schemathesis(executable, server.url, tmp_path, "--checks", "all",
                           "--exclude-path", "/sse",
                           *[flag for operation in BEYOND_SCHEMA
                             for flag in ("--exclude-operation-id", operation)])
    # A subscription is valid only with a real P-256 key and an allowed push
    # service, an upload only as a real image or sound, a design only with CSS
    # colours and conditions a regular expression cannot match exactly: here
    # every check runs except "schema-valid data must be accepted".
    await run_schemathesis(executable, server.url, tmp_path, "--checks", "all",
                           "--exclude-checks", "positive_data_acceptance",
                           *[flag for operation in BEYOND_SCHEMA
                             for flag in ("--include-operation-id", operation)])
