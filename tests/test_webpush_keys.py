"""VAPID keys: made once in the data dir (owner-only), reused, never invented for a missing path."""

from __future__ import annotations

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
