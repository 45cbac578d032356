"""VAPID keys: made once in the data dir (owner-only), reused, never invented for a missing path."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from notification_service.config import PROJECT_ROOT, settings_from_args
from notification_service.webpush import keys

from . import support
from .support import start_server


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


async def test_server_refuses_to_start_with_a_missing_key(tmp_path):
    with pytest.raises(keys.VapidKeyError):
        await start_server(support.test_settings(tmp_path, vapid_key=tmp_path / "nope.pem"))


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


def vapid_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "notification_server.py"), "vapid",
                           *args], capture_output=True, text=True, timeout=30)


def test_vapid_command_prints_generates_and_rotates(tmp_path):
    data = str(tmp_path)
    missing = vapid_cli("--data-dir", data)
    assert missing.returncode == 1 and "--generate" in missing.stderr
    made = vapid_cli("--data-dir", data, "--generate")
    assert made.returncode == 0
    key = made.stdout.strip()
    assert vapid_cli("--data-dir", data).stdout.strip() == key
    assert vapid_cli("--data-dir", data, "--generate").stdout.strip() == key  # never overwrites
    rotated = vapid_cli("--data-dir", data, "--rotate")
    assert rotated.returncode == 0 and rotated.stdout.strip() != key
    assert "subscribe again" in rotated.stderr
    assert len(list(tmp_path.glob("vapid_private.pem.*.bak"))) == 1
    assert vapid_cli("--vapid-key", str(tmp_path / "none.pem")).returncode == 1
