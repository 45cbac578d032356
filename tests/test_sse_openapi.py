"""The OpenAPI fragment for /sse, /connections and /health is valid and matches real answers."""

from __future__ import annotations

import json

import jsonschema
import openapi_spec_validator
import pytest

from notification_service.config import PROJECT_ROOT

from .sse_client import SECRET, make_token, open_stream

FRAGMENT = PROJECT_ROOT / "notification_service" / "openapi" / "sse.json"


pytestmark = pytest.mark.server(jwt_secret=SECRET)


def fragment() -> dict:
    return json.loads(FRAGMENT.read_text())


def schema_of(path: str, status: str) -> dict:
    """The response schema, with the fragment's components reachable for $ref."""
    response = fragment()["paths"][path]["get"]["responses"][status]
    return {**response["content"]["application/json"]["schema"],
            "components": fragment()["components"]}


def test_fragment_is_valid_openapi():
    openapi_spec_validator.validate(
        {"openapi": "3.1.0", "info": {"title": "fragment", "version": "0"}, **fragment()})


async def test_answers_match_the_fragment(server, http):
    stream = await open_stream(http, server.url, token=make_token("u", "app"))
    headers = {"Authorization": f"Bearer {make_token('admin-ish', 'app')}"}
    async with http.get(f"{server.url}/connections/app", headers=headers) as response:
        jsonschema.validate(await response.json(), schema_of("/connections/{application_id}", "200"))
    async with http.get(f"{server.url}/connections/app/u", headers=headers) as response:
        jsonschema.validate(await response.json(),
                            schema_of("/connections/{application_id}/{user_id}", "200"))
    async with http.get(f"{server.url}/health") as response:
        jsonschema.validate(await response.json(), schema_of("/health", "200"))
    async with http.get(f"{server.url}/sse?channel=jwt:x") as response:
        assert str(response.status) in fragment()["paths"]["/sse"]["get"]["responses"]
        jsonschema.validate(await response.json(), schema_of("/sse", "403"))
    stream.close()
