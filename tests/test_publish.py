"""POST /emit (ws-emit) and POST /broadcast (broadcasting server): contracts, auth, limits."""

from __future__ import annotations

import pytest

from notification_service.config import Settings, is_loopback_host, startup_warnings

from .publishing import post, subscribed_page

SECRET = "MySecret_123"


# -- /broadcast -------------------------------------------------------------

@pytest.mark.parametrize("body, value", [
    ('{"data": "data_to_broadcast"}', {"data": "data_to_broadcast"}),
    ('["string", 123, 123.45, {"data": 12}]', ["string", 123, 123.45, {"data": 12}]),
    ('"data_to_broadcast"', "data_to_broadcast"),
    ("123", 123),
    ("123.45", 123.45),
    ("true", True),
    ("false", False),
    ("null", None),
])
async def test_broadcast_delivers_every_json_value_unchanged(server, pages, http, body, value):
    page = await subscribed_page(pages, "news")
    status, answer = await post(http, f"{server.url}/broadcast/news/update", data=body)
    assert status == 200
    assert answer["channel"] == "news" and answer["event"] == "update"
    assert answer["listeners"] == 1 and answer["transports"]["socketio"] == 1
    [received] = await page.wait_for("update")
    assert received == value and type(received) is type(value)


async def test_broadcast_with_nobody_listening_says_so(server, http):
    status, answer = await post(http, f"{server.url}/broadcast/empty/ping", data="1")
    assert status == 200 and answer["listeners"] == 0


@pytest.mark.parametrize("body, where", [
    ("False", "line 1 column 1"),
    ('{"a": 1,}', "line 1 column"),
    ("", "empty"),
    ("   ", "empty"),
])
async def test_broadcast_refuses_what_is_not_json(server, http, body, where):
    status, answer = await post(http, f"{server.url}/broadcast/news/update", data=body)
    assert status == 422 and answer["code"] == 42241 and answer["http"] == 422
    assert where in answer["error"]


async def test_broadcast_refuses_bad_names(server, http):
    status, answer = await post(http, f"{server.url}/broadcast/bad%20channel/update", data="1")
    assert (status, answer["code"]) == (422, 42240)
    assert "' ' at position 3" in answer["error"]
    status, answer = await post(http, f"{server.url}/broadcast/news/disconnect", data="1")
    assert (status, answer["code"]) == (422, 42242)
    status, answer = await post(http, f"{server.url}/broadcast/{'x' * 257}/update", data="1")
    assert status == 422


async def test_broadcast_to_a_jwt_style_channel_with_encoded_slashes(server, http):
    channel = "jwt:https://auth.example/:auth0|42"
    status, answer = await post(
        http, f"{server.url}/broadcast/jwt%3Ahttps%3A%2F%2Fauth.example%2F%3Aauth0%7C42/x",
        data="{}")
    assert status == 200 and answer["channel"] == channel


@pytest.mark.server(max_payload_bytes=100, secret=SECRET)
async def test_payload_limit_is_413(server, http):
    status, answer = await post(http, f"{server.url}/broadcast/news/big",
                                data='"' + "x" * 200 + '"')
    assert (status, answer["code"]) == (413, 41340)
    assert "at most 100" in answer["error"]
    status, _ = await post(http, f"{server.url}/broadcast/news/small", data='"' + "x" * 90 + '"')
    assert status == 200
    status, answer = await post(http, f"{server.url}/emit", json={
        "event": "big", "room": "news", "data": "x" * 200, "secret": SECRET})
    assert (status, answer["code"]) == (413, 41340)


async def test_default_payload_limit_is_64_kib(server, http):
    body = '"' + "x" * (64 * 1024) + '"'
    status, answer = await post(http, f"{server.url}/broadcast/news/big", data=body)
    assert status == 413 and "65536" in answer["error"]


async def test_push_query_flag_reaches_the_hub(server, http):
    await post(http, f"{server.url}/broadcast/news/a?push=1", data="1")
    await post(http, f"{server.url}/broadcast/news/b", data="1")
    assert [event.push for event in server.hub.history.recent("news")] == [True, False]


@pytest.mark.server(secret=SECRET)
async def test_push_field_of_emit_reaches_the_hub(server, http):
    for push in (True, False):
        status, _ = await post(http, f"{server.url}/emit", json={
            "event": "e", "room": "r", "secret": SECRET, "push": push})
        assert status == 200
    assert [event.push for event in server.hub.history.recent("r")] == [True, False]


# -- /emit ------------------------------------------------------------------

@pytest.mark.server(secret=SECRET)
async def test_emit_ws_emit_payload(server, pages, http):
    page = await subscribed_page(pages, "time")
    status, answer = await post(http, f"{server.url}/emit", json={
        "event": "update", "room": "time", "data": {"time": 111111},
        "namespace": None, "secret": SECRET})
    assert status == 200
    assert answer["listeners"] == 1 and answer["event"] == "update"
    assert await page.wait_for("update") == [{"time": 111111}]


@pytest.mark.server(secret=SECRET, publish_token="pub")
async def test_emit_secret_as_bearer_and_publish_token(server, http):
    message = {"event": "update", "room": "time", "data": 1}
    for headers in ({"Authorization": f"Bearer {SECRET}"}, {"Authorization": "Bearer pub"}):
        status, _ = await post(http, f"{server.url}/emit", json=message, headers=headers)
        assert status == 200
    status, _ = await post(http, f"{server.url}/emit?token=pub", json=message)
    assert status == 200


@pytest.mark.server(secret=SECRET)
async def test_emit_wrong_or_missing_secret_is_403(server, http):
    message = {"event": "update", "room": "time", "data": 1}
    status, answer = await post(http, f"{server.url}/emit", json={**message, "secret": "nope"})
    assert (status, answer["code"]) == (403, 40340) and "wrong" in answer["error"]
    status, answer = await post(http, f"{server.url}/emit", json=message)
    assert (status, answer["code"]) == (403, 40340) and '"secret"' in answer["error"]


async def test_emit_without_a_configured_secret_says_how_to_enable_it(server, http):
    status, answer = await post(http, f"{server.url}/emit", json={
        "event": "update", "room": "time", "data": 1, "secret": "anything"})
    assert (status, answer["code"]) == (403, 40341)
    assert "--secret" in answer["error"] and "NOTIFY_SECRET" in answer["error"]


@pytest.mark.parametrize("message, fragment", [
    ({"room": "time"}, '"event"'),
    ({"event": "update"}, '"room"'),
    ({"event": "update", "room": "bad room"}, "position"),
    ({"event": "connect", "room": "time"}, "reserved"),
    ({"event": "update", "room": "time", "namespace": "/chat"}, "namespace"),
    ({"event": "update", "room": "time", "push": "yes"}, "push"),
    ([1, 2], "JSON object"),
])
@pytest.mark.server(secret=SECRET)
async def test_emit_bad_fields_are_422(server, http, message, fragment):
    if isinstance(message, dict):
        message = {**message, "secret": SECRET}
    status, answer = await post(http, f"{server.url}/emit", json=message,
                                headers={"Authorization": f"Bearer {SECRET}"})
    assert status == 422, answer
    assert fragment in answer["error"]


@pytest.mark.server(secret=SECRET)
async def test_emit_invalid_json_is_422_with_position(server, http):
    status, answer = await post(http, f"{server.url}/emit", data="{'event': 1}")
    assert (status, answer["code"]) == (422, 42241) and "column 2" in answer["error"]


# -- publish token on every way in ------------------------------------------

@pytest.mark.server(publish_token="pub")
async def test_publish_token_guards_broadcast_and_triggers(server, http):
    status, answer = await post(http, f"{server.url}/broadcast/news/a", data="1")
    assert status == 401 and "token" in answer["error"]
    status, _ = await post(http, f"{server.url}/broadcast/news/a", data="1",
                           headers={"Authorization": "Bearer wrong"})
    assert status == 403
    status, _ = await post(http, f"{server.url}/broadcast/news/a", data="1",
                           headers={"Authorization": "Bearer pub"})
    assert status == 200
    status, _ = await post(http, f"{server.url}/broadcast/news/a?token=pub", data="1")
    assert status == 200
    async with http.get(f"{server.url}/notify?code=abc&event=x") as response:
        assert response.status == 401
    async with http.get(f"{server.url}/notify?code=abc&event=x&token=pub") as response:
        assert response.status == 200
    # /emit accepts the publish token alone, since it is a publisher's credential.
    status, _ = await post(http, f"{server.url}/emit", json={
        "event": "a", "room": "news", "secret": "pub"})
    assert status == 200


def test_warning_when_public_without_publish_token():
    assert startup_warnings(Settings(host="127.0.0.1")) == []
    assert startup_warnings(Settings(host="localhost")) == []
    assert startup_warnings(Settings(host="::1")) == []
    [warning] = startup_warnings(Settings(host="0.0.0.0"))
    assert "--publish-token" in warning and "NOTIFY_PUBLISH_TOKEN" in warning
    assert startup_warnings(Settings(host="0.0.0.0", publish_token="x")) == []


def test_several_nodes_without_a_shared_database_are_warned():
    [warning] = startup_warnings(Settings(redis_url="redis://127.0.0.1:6379/0"))
    assert "--database-url" in warning and "space secrets" in warning
    assert startup_warnings(Settings(redis_url="redis://127.0.0.1:6379/0",
                                     database_url="postgresql://127.0.0.1/notify")) == []
    assert not is_loopback_host("example.org")


def test_flags_and_environment(monkeypatch):
    from notification_service.config import settings_from_args

    monkeypatch.setenv("NOTIFY_SECRET", "from-env")
    monkeypatch.setenv("NOTIFY_CORS_ORIGIN", "http://a.example, http://b.example")
    settings = settings_from_args(["--max-payload-bytes", "10", "--max-channels-per-connection", "3"])
    assert settings.secret == "from-env"
    assert settings.cors_origins == ["http://a.example", "http://b.example"]
    assert (settings.max_payload_bytes, settings.max_channels_per_connection) == (10, 3)
    monkeypatch.delenv("NOTIFY_CORS_ORIGIN")
    settings = settings_from_args(["--cors-origin", "*", "--secret", "s"])
    assert settings.cors_origins == ["*"] and settings.secret == "s"


async def test_deeply_nested_json_is_refused_not_a_500(server, http):
    nested = "[" * 300 + "]" * 300
    async with http.post(f"{server.url}/broadcast/news/x", data=nested,
                         headers={"Content-Type": "application/json"}) as response:
        body = await response.json()
    assert response.status == 422 and body["code"] == 42241
    assert "nested deeper than 200 levels" in body["error"]
    fine = "[" * 150 + "]" * 150
    async with http.post(f"{server.url}/broadcast/news/x", data=fine,
                         headers={"Content-Type": "application/json"}) as response:
        assert response.status == 200


async def test_get_on_a_post_route_never_triggers(server, http):
    async with http.get(f"{server.url}/emit?code=1234&event=oops") as response:
        assert response.status == 405 and response.headers["Allow"] == "POST"
    async with http.get(f"{server.url}/broadcast/news/x?code=1234&event=oops") as response:
        assert response.status == 405
    assert server.hub.history.recent("1234") == []
