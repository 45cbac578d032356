"""One table of errors and one of settings: unique, complete, and what the README shows."""

from __future__ import annotations

import argparse

import pytest

from notification_service import config, errors

from .readme_tables import README, TABLES, current


def test_error_codes_are_unique_and_follow_their_status():
    codes = [kind.code for kind in errors.ERRORS]
    assert len(codes) == len(set(codes))
    for kind in errors.ERRORS:
        assert str(kind.code).startswith(str(kind.http)), kind
        assert kind.meaning and not kind.meaning.endswith("."), kind


def test_every_error_kind_in_the_package_is_in_the_table():
    """No module declares a kind of its own: every ErrorKind is a row of errors.ERRORS."""
    import importlib
    import pkgutil

    import notification_service

    declared = {id(kind) for kind in errors.ERRORS}
    for module_info in pkgutil.walk_packages(notification_service.__path__, "notification_service."):
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if isinstance(value, errors.ErrorKind):
                assert id(value) in declared, f"{module_info.name}.{name} is not in errors.ERRORS"


@pytest.mark.parametrize("name", sorted(TABLES))
def test_readme_table_matches_the_declarations(name):
    made = TABLES[name]() + "\n"
    assert current(README.read_text(encoding="utf-8"), name) == made, (
        f"README.md's {name} is out of date: run `python -m tests.readme_tables`")


def test_every_setting_has_a_flag_an_environment_variable_and_help():
    rows = config.declared_settings()
    fields = {field.name for field in config.dataclasses.fields(config.Settings)}
    assert {row.name for row in rows} == fields
    flags = [row.option.flag for row in rows]
    assert len(flags) == len(set(flags))
    text = config.build_parser().format_help()
    for row in rows:
        assert row.option.flag in text and row.option.env in text
        assert row.option.help.endswith("."), row.name


def test_environment_values_are_parsed_and_checked_like_flags(monkeypatch, capsys):
    monkeypatch.setenv("NOTIFY_PORT", "99999")
    with pytest.raises(SystemExit) as exit_info:
        config.settings_from_args([])
    assert exit_info.value.code == 2
    assert "NOTIFY_PORT='99999': 99999 is above the largest allowed value, 65535" in (
        capsys.readouterr().err)
    monkeypatch.setenv("NOTIFY_PORT", "9000")
    monkeypatch.setenv("NOTIFY_CORS_ORIGIN", "https://a.example, https://b.example")
    monkeypatch.setenv("NOTIFY_WEBPUSH_ALLOW_HTTP", "yes")
    settings = config.settings_from_args([])
    assert settings.port == 9000
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.webpush_allow_http is True
    # On the command line a repeatable flag replaces the variable's list, and a switch can be undone.
    settings = config.settings_from_args(["--cors-origin", "https://c.example",
                                          "--no-webpush-allow-http"])
    assert settings.cors_origins == ["https://c.example"]
    assert settings.webpush_allow_http is False


@pytest.mark.parametrize("argv, message", [
    (["-p", "99999"], "99999 is above the largest allowed value, 65535"),
    (["-p", "http"], "'http' is not a whole number"),
    (["--history-size", "-1"], "-1 is below the smallest allowed value, 0"),
    (["--loglevel", "loud"], "'LOUD' is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
    (["--vapid-subject", "me@example.com"], "is not valid: use 'mailto:"),
])
def test_bad_flags_stop_with_a_sentence(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        config.settings_from_args(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_settings_declared_once_build_the_same_defaults_as_the_dataclass():
    parsed = config.settings_from_args([])
    assert parsed == config.Settings()
    assert isinstance(config.build_parser(), argparse.ArgumentParser)
