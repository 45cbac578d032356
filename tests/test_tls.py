"""HTTPS and WSS served directly: --tls-cert and --tls-key with a self-signed certificate."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from notification_service import tls
from notification_service.errors import StartupError

from .support import WAIT, connect_page, test_settings


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


@pytest.fixture
async def trusting(certificate):
    """An HTTP client that trusts the test certificate (and verifies it: no verify=False)."""
    context = ssl.create_default_context(cafile=str(certificate[0]))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        yield session


async def test_https_page_and_a_trigger_over_wss(serve, certificate, trusting):
    server = await serve(tls_cert=certificate[0], tls_key=certificate[1])
    assert server.url.startswith("https://")
    async with trusting.get(server.url + "/sources/alert.html") as response:
        assert response.status == 200
        assert "notificationservice.js" in await response.text()
    page = await connect_page(server.url, query="code=tls1234", http_session=trusting)
    try:
        assert page.client.transport() == "websocket"
        assert page.client.eio.base_url.startswith("wss://")
        async with trusting.get(server.url + "/notify",
                                params={"code": "tls1234", "event": "follow",
                                        "user": "bob"}) as response:
            assert (await response.json())["count"] == 1
        (data,) = await page.wait_for("FOLLOW")
        assert data["user"] == "bob"
    finally:
        await page.close()


async def test_plain_http_to_the_tls_port_gets_no_page(serve, certificate):
    server = await serve(tls_cert=certificate[0], tls_key=certificate[1])
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            async with http.get(server.url.replace("https://", "http://") + "/heartbeat",
                                timeout=aiohttp.ClientTimeout(total=WAIT)) as response:
                await response.read()


def test_certificate_without_key_is_a_sentence(tmp_path, certificate):
    with pytest.raises(StartupError, match="--tls-cert was given without --tls-key"):
        tls.server_context(test_settings(tmp_path, tls_cert=certificate[0]))
    with pytest.raises(StartupError, match="--tls-key was given without --tls-cert"):
        tls.server_context(test_settings(tmp_path, tls_key=certificate[1]))


def test_files_that_are_not_a_certificate_and_its_key_are_a_sentence(tmp_path, certificate):
    other = tmp_path / "other"
    other.mkdir()
    other_cert, _other_key = self_signed(other)
    for cert, key in ((other_cert, certificate[1]), (certificate[0], certificate[0])):
        with pytest.raises(StartupError, match="not a PEM certificate and its private key"):
            tls.server_context(test_settings(tmp_path, tls_cert=cert, tls_key=key))
    assert tls.server_context(test_settings(tmp_path)) is None
