"""JWT checks: every refusal is a 401 that says which check failed, on every transport."""

from __future__ import annotations

import base64
import time

import jwt
import pytest
import yarl
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from notification_service import jsoncodec
from notification_service.identity import JwtVerifier
from notification_service.errors import ApiError

from .sse_client import SECRET, make_token, open_stream


pytestmark = pytest.mark.server(jwt_secret=SECRET)


def _b64(value: dict) -> str:
    return base64.urlsafe_b64encode(jsoncodec.dumps_bytes(value)).rstrip(b"=").decode()


def unsigned_token() -> str:
    now = int(time.time())
    claims = {"sub": "u", "iss": "a", "iat": now, "exp": now + 60}
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(private_key) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


REFUSALS = {
    "missing sub": (make_token(sub=None), 40166, "'sub'"),
    "missing exp": (jwt.encode({"sub": "u", "iss": "a", "iat": int(time.time())}, SECRET),
                    40166, "'exp'"),
    "expired": (make_token(lifetime=-60), 40165, "expired"),
    "bad signature": (make_token(key="another-secret-that-is-32-bytes-long!!"), 40164,
                      "signature"),
    "alg none": (unsigned_token(), 40162, "alg: none"),
    "other algorithm": (make_token(key=SECRET * 2, algorithm="HS512"), 40163, "HS512"),
    "garbage": ("not.a.jwt", 40161, "not a JWT"),
    "future iat": (make_token(iat=int(time.time()) + 3600), 40166, "future"),
    "space in sub": (make_token(sub="bob smith"), 40166, "may use only"),
    "sub not a string": (make_token(sub=42), 40166, "Subject"),
}


@pytest.mark.parametrize("name", REFUSALS)
async def test_sse_refuses_with_the_reason(server, http, name):
    token, code, words = REFUSALS[name]
    async with http.get(f"{server.url}/sse", headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 401
        body = await r.json()
    assert body["code"] == code and body["http"] == 401
    assert words in body["error"], body


async def test_expiry_within_leeway_is_accepted(server, http):
    stream = await open_stream(http, server.url, token=make_token(lifetime=-3))
    stream.close()


async def test_socketio_auth_token_refused_with_reason(server, pages):
    page = await pages(auth={"token": make_token(lifetime=-60)})
    [error] = await page.wait_for("ERROR")
    assert error["code"] == 40165 and "expired" in error["message"]
    await page.client.wait()  # the server disconnects it
    assert not page.client.connected


async def test_without_a_configured_key_tokens_are_refused(serve, http):
    server = await serve()
    async with http.get(f"{server.url}/sse?token={make_token()}") as response:
        assert response.status == 401
        body = await response.json()
        assert body["code"] == 40167 and "--jwt-secret" in body["error"]


async def test_rs256_with_public_key_and_no_key_confusion(serve, tmp_path, http):
    private_key = rsa_key()
    key_file = tmp_path / "jwt.pub.pem"
    key_file.write_bytes(public_pem(private_key))
    server = await serve(jwt_public_key=key_file)
    stream = await open_stream(http, server.url,
                               token=make_token("u", "a", key=private_key, algorithm="RS256"))
    await server.hub.publish("jwt:a:u", "hi", 1)
    assert (await stream.next_event()).data == 1
    stream.close()
    # The classic forgery: HS256 signed with the public key's PEM as the secret.
    forged = jwt.api_jws.PyJWS()
    forged._algorithms["HS256"].prepare_key = lambda key: key  # bypass PyJWT's own guard
    token = forged.encode(jsoncodec.dumps_bytes(
        {"sub": "u", "iss": "a", "iat": int(time.time()), "exp": int(time.time()) + 60}),
        public_pem(private_key), algorithm="HS256")
    async with http.get(f"{server.url}/sse?token={token}") as response:
        assert response.status == 401
        assert (await response.json())["code"] == 40163


def test_es256_public_key():
    private_key = ec.generate_private_key(ec.SECP256R1())
    verifier = JwtVerifier(public_key_pem=public_pem(private_key))
    assert verifier.algorithms == ["ES256"]
    identity = verifier.verify(make_token("u", "a", key=private_key, algorithm="ES256"))
    assert (identity.application, identity.user) == ("a", "u")
    with pytest.raises(ApiError) as refused:
        verifier.verify(make_token("u", "a", key=ec.generate_private_key(ec.SECP256R1()),
                                   algorithm="ES256"))
    assert refused.value.code == 40164


def test_unsupported_public_key_is_refused_at_start():
    private_key = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(ValueError, match="P-256"):
        JwtVerifier(public_key_pem=public_pem(private_key))


async def test_url_issuer_and_email_subject(server, http):
    """Issuers are often URLs, subjects e-mail addresses: both make valid channels."""
    token = make_token("bob@example.com", "https://auth.example.com")
    stream = await open_stream(http, server.url, token=token)
    report = await server.hub.publish("jwt:https://auth.example.com:bob@example.com", "hi", 1)
    assert report.listeners["sse"] == 1
    assert (await stream.next_event()).data == 1
    url = f"{server.url}/connections/https:%2F%2Fauth.example.com/bob@example.com"
    async with http.get(yarl.URL(url, encoded=True),
                        headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200
        assert list(await response.json()) == [stream.connection_id]
    stream.close()


def test_key_file_mistakes_are_explained(tmp_path, capsys):
    from notification_service.config import settings_from_args

    with pytest.raises(SystemExit):
        settings_from_args(["--jwt-public-key", str(tmp_path / "missing.pem")])
    assert "no such file" in capsys.readouterr().err
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(ValueError, match="garbage.pem: not a PEM public key"):
        JwtVerifier.from_files(secret=None, public_key_file=garbage)


def test_flags_and_environment(monkeypatch):
    from notification_service.config import settings_from_args

    monkeypatch.setenv("NOTIFY_JWT_SECRET", "from-the-environment")
    monkeypatch.setenv("NOTIFY_SSE_PING_INTERVAL", "5")
    settings = settings_from_args(["--sse-queue-size", "8", "--sse-retry", "1000"])
    assert settings.jwt_secret == "from-the-environment"
    assert (settings.sse_ping_interval, settings.sse_queue_size, settings.sse_retry_ms) == (5, 8, 1000)
