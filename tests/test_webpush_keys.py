"""VAPID keys: made once in the data dir (owner-only), reused, never invented for a missing path."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys

import pytest

from notification_service.cli import main
from notification_service.config import PROJECT_ROOT, settings_from_args
from notification_service.webpush import keys


def test_key_is_generated_once_owner_only_and_reused(tmp_path):
    first = keys.load_or_create(tmp_path, None)
    path = tmp_path / keys.PRIVATE_KEY_FILE
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (tmp_path / keys.PUBLIC_KEY_FILE).read_bytes().startswith(b"-----BEGIN PUBLIC KEY")
    again = keys.load_or_create(tmp_path, None)
    assert keys.application_server_key(again) == keys.application_server_key(first)
    assert len(keys.application_server_key(first)) == 87  # 65 bytes, URL-safe base64, unpadded


def test_configured_key_that_does_not_exist_is_an_error_not_a_new_key(tmp_path):
    missing = tmp_path / "elsewhere" / "key.pem"
    with pytest.raises(keys.VapidKeyError, match="does not exist"):
        keys.load_or_create(tmp_path, missing)
    assert not missing.exists()
    assert not (tmp_path / keys.PRIVATE_KEY_FILE).exists()


def test_configured_key_file_is_used(tmp_path):
    made = keys.generate_key(tmp_path / "mine.pem")
    loaded = keys.load_or_create(tmp_path / "data", tmp_path / "mine.pem")
    assert keys.application_server_key(loaded) == keys.application_server_key(made)
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(keys.VapidKeyError, match="not a PEM"):
        keys.load_key(tmp_path / "junk.pem")


async def test_server_refuses_to_start_with_a_missing_key(serve, tmp_path):
    with pytest.raises(keys.VapidKeyError):
        await serve(vapid_key=tmp_path / "nope.pem")


@pytest.mark.parametrize("subject", [
    "mailto:ops@example.com", "mailto:first.last+push@mail.example.co.uk",
    "https://example.com", "https://push.example.org/contact",
])
def test_good_subjects(subject):
    assert keys.validate_subject(subject) == subject


@pytest.mark.parametrize("subject", [
    "ops@example.com", "mailto: ops@example.com", "mailto:<ops@example.com>", "mailto:ops",
    "mailto:ops@localhost", "http://example.com", "https://localhost", "https://",
    "https://user@example.com", "https://exa mple.com", "mailto:a@b.c d", "",
])
def test_bad_subjects_are_refused(subject):
    with pytest.raises(ValueError, match="mailto:"):
        keys.validate_subject(subject)


def test_subject_flag_is_checked_at_start():
    with pytest.raises(SystemExit):
        settings_from_args(["--vapid-subject", "mailto: me@example.com"])
    assert settings_from_args(["--vapid-subject", "mailto:me@example.com",
                               "--webpush-allow", "a.example", "--webpush-allow", "b.example",
                               "--webpush-allow-http"]).webpush_allow == ["a.example", "b.example"]


def vapid_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run ``notification_server.py vapid ...`` in this process (the import alone takes ~1 s)."""
    code = main(["vapid", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_vapid_command_prints_generates_and_rotates(tmp_path, capsys):
    data = str(tmp_path)
    code, _out, err = vapid_cli(capsys, "--data-dir", data)
    assert code == 1 and "--generate" in err
    code, out, _err = vapid_cli(capsys, "--data-dir", data, "--generate")
    assert code == 0
    key = out.strip()
    assert vapid_cli(capsys, "--data-dir", data)[1].strip() == key
    assert vapid_cli(capsys, "--data-dir", data, "--generate")[1].strip() == key  # no overwrite
    code, out, err = vapid_cli(capsys, "--data-dir", data, "--rotate")
    assert code == 0 and out.strip() != key and "subscribe again" in err
    assert len(list(tmp_path.glob("vapid_private.pem.*.bak"))) == 1
    assert vapid_cli(capsys, "--vapid-key", str(tmp_path / "none.pem"))[0] == 1


def test_vapid_command_runs_from_the_entry_script(tmp_path):
    done = subprocess.run([sys.executable, str(PROJECT_ROOT / "notification_server.py"), "vapid",
                           "--data-dir", str(tmp_path), "--generate"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and len(done.stdout.strip()) == 87


# -- start-up reads the key without OpenSSL --------------------------------------------
def pem(key, private_format) -> bytes:
    from cryptography.hazmat.primitives import serialization
    return key.private_bytes(serialization.Encoding.PEM, private_format,
                             serialization.NoEncryption())


def test_start_up_reads_the_public_key_the_way_openssl_does():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    for _ in range(20):
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key().public_bytes(serialization.Encoding.X962,
                                               serialization.PublicFormat.UncompressedPoint)
        for form in (serialization.PrivateFormat.PKCS8,  # what we write
                     serialization.PrivateFormat.TraditionalOpenSSL):  # openssl ecparam -genkey
            assert keys.public_point_in_pem(pem(key, form)) == public


def test_start_up_refuses_what_is_not_a_p256_private_key():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    pkcs8 = serialization.PrivateFormat.PKCS8
    good = pem(ec.generate_private_key(ec.SECP256R1()), pkcs8)
    lines = good.splitlines()
    der = bytearray(base64.b64decode(b"".join(lines[1:-1])))
    der[-1] ^= 1  # the last byte of the public point's y
    moved = b"\n".join([lines[0], base64.encodebytes(bytes(der)).strip(), lines[-1]])
    for data, reason in [
            (pem(ec.generate_private_key(ec.SECP384R1()), pkcs8), "not on the P-256 curve"),
            (pem(rsa.generate_private_key(65537, 2048), pkcs8), "not an elliptic-curve key"),
            (moved, "not a point on P-256"),
            (b"-----BEGIN PRIVATE KEY-----\ngarbage\n", "END PRIVATE KEY"),
            (good.replace(b"BEGIN", b"BEGIN ENCRYPTED"), "BEGIN PRIVATE KEY"),
            (bytes(range(256)), "not text")]:
        with pytest.raises(ValueError, match=reason):
            keys.public_point_in_pem(data)


def test_a_key_without_its_public_half_is_read_by_openssl(tmp_path):
    """``openssl ec -no_public`` writes such files: the public point must be derived."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from py_vapid import Vapid02
    vapid = Vapid02(ec.generate_private_key(ec.SECP256R1()))
    no_public = bytes.fromhex("3031020101")  # ECPrivateKey, version 1, then the bare scalar
    no_public += b"\x04\x20" + vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
    no_public += bytes.fromhex("a00a06082a8648ce3d030107")  # [0] prime256v1
    path = tmp_path / "no-public.pem"
    path.write_bytes(b"-----BEGIN EC PRIVATE KEY-----\n" + base64.encodebytes(no_public)
                     + b"-----END EC PRIVATE KEY-----\n")
    assert keys.public_point_in_pem(path.read_bytes()) is None
    assert keys.server_key(tmp_path, path).public_key == keys.application_server_key(vapid)


def test_a_server_process_makes_and_reads_its_key_without_loading_openssl(tmp_path):
    """The key is made by a child process, in the format and mode the key commands use."""
    script = ("import sys; from pathlib import Path; "
              "from notification_service.webpush import keys; "
              "made = keys.server_key(Path(sys.argv[1]), None); "
              "read = keys.server_key(Path(sys.argv[1]), None); "
              "print(made.public_key, read == made, 'cryptography' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=PROJECT_ROOT,
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    loaded = keys.load_key(tmp_path / keys.PRIVATE_KEY_FILE)
    assert out == [keys.application_server_key(loaded), "True", "False"]
    if os.name == "posix":
        assert stat.S_IMODE((tmp_path / keys.PRIVATE_KEY_FILE).stat().st_mode) == 0o600


def test_the_first_push_refuses_a_key_file_replaced_since_start(tmp_path):
    started = keys.server_key(tmp_path, None)
    assert keys.application_server_key(started.load()) == started.public_key
    keys.rotate_key(started.path)
    with pytest.raises(keys.VapidKeyError, match="restart the server"):
        started.load()
