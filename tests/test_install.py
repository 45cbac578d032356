"""The installed package, as a user gets it: a wheel built from this checkout, installed into a
fresh virtual environment, run as ``notification-server`` with no flags.

It must serve the shipped pages (every file of ``web/``, subfolders and odd
types included), keep its log and data in one absolute per-user folder
outside ``site-packages``, print where, and find the same VAPID key whatever
the working directory. The wheel is built without build isolation and
installed with ``--no-deps --no-index``; the fresh environment sees this
interpreter's packages through a ``.pth`` file: offline and a few seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from notification_service.config import (APP_FOLDER, PROJECT_ROOT, default_home, is_source_checkout,
                                         settings_from_args)

from .deployment import health_check, image_command, image_environment
from .support import WAIT

PACKAGE = "notification_service"
# Proves that subfolders and any file type are carried, not only sources/*.html.
NESTED_FILE = Path("web") / "sources" / "media" / "sounds" / "chime.opus"


@dataclass
class Installed:
    wheel: Path
    source: Path
    command: Path
    python: Path
    site_packages: Path


def _run(*command: str | Path) -> str:
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _copy_source(target: Path) -> None:
    """What a clean clone has (never a build/ or egg-info left in the checkout)."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md", "requirements.txt"):
        shutil.copy2(PROJECT_ROOT / name, target / name)
    shutil.copytree(PROJECT_ROOT / PACKAGE, target / PACKAGE,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    nested = target / PACKAGE / NESTED_FILE
    nested.parent.mkdir(parents=True)
    nested.write_bytes(b"OggS fake opus")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    folder = tmp_path_factory.mktemp("install")
    source, dist, venv = folder / "source", folder / "dist", folder / "venv"
    _copy_source(source)
    _run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", dist, source)
    (wheel,) = dist.glob("*.whl")
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    scripts = venv / ("Scripts" if os.name == "nt" else "bin")
    python = scripts / ("python.exe" if os.name == "nt" else "python")
    site_packages = Path(_run(python, "-c", "import sysconfig; "
                                            "print(sysconfig.get_paths()['purelib'])").strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site_packages / "test-dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
         "--no-index", wheel)
    command = scripts / ("notification-server.exe" if os.name == "nt" else "notification-server")
    assert command.exists(), f"pip did not install the console script in {scripts}"
    return Installed(wheel, source, command, python, site_packages)


def test_wheel_carries_every_shipped_file(installed: Installed):
    package = installed.source / PACKAGE
    shipped = {path.relative_to(installed.source).as_posix()
               for folder in ("web", "openapi") for path in (package / folder).rglob("*")
               if path.is_file()}
    assert f"{PACKAGE}/{NESTED_FILE.as_posix()}" in shipped
    assert {f"{PACKAGE}/web/static/favicon.ico",
            f"{PACKAGE}/web/static/socket.io.LICENSE"} <= shipped
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    assert sorted(shipped - names) == []


def _environment(home: Path) -> dict[str, str]:
    """A user whose home is ``home``: the per-user data folder is inside it."""
    return {"HOME": str(home), "USERPROFILE": str(home), "XDG_DATA_HOME": "",
            "LOCALAPPDATA": str(home / "AppData" / "Local"), "PYTHONPATH": ""}


def _user_folder(home: Path) -> Path:
    if sys.platform == "win32":
        return home / "AppData" / "Local" / APP_FOLDER
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / APP_FOLDER
    return home / ".local" / "share" / APP_FOLDER


async def test_installed_command_serves_the_shipped_pages(installed, spawn, tmp_path):
    home, elsewhere = tmp_path / "home", tmp_path / "somewhere"
    elsewhere.mkdir()
    server = await spawn(command=[installed.command], own_locations=False,
                         env=_environment(home), cwd=elsewhere)
    expected = {
        "/sources/alert.html": "text/html",
        "/static/notificationservice.js": "text/javascript",
        "/static/socket.io.min.js": "text/javascript",
        "/static/push-sw.js": "text/javascript",
        "/static/favicon.ico": "image/x-icon",
        "/static/socket.io.LICENSE": "application/octet-stream",
        "/" + NESTED_FILE.relative_to("web").as_posix(): "audio/ogg",
    }
    async with aiohttp.ClientSession() as http:
        for path, content_type in expected.items():
            async with http.get(server.url + path) as response:
                assert response.status == 200, path
                assert response.headers["Content-Type"].startswith(content_type), path
                body = await response.read()
                assert body == (installed.source / PACKAGE / "web" / path.lstrip("/")).read_bytes()
    assert list(elsewhere.iterdir()) == [], "the server wrote into its working directory"


async def test_installed_defaults_are_absolute_outside_site_packages_and_printed(
        installed, spawn, tmp_path):
    home = tmp_path / "home"
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    keys = []
    outputs = []
    for working_dir in (first_dir, second_dir):
        server = await spawn(command=[installed.command], own_locations=False,
                             env=_environment(home), cwd=working_dir)
        async with aiohttp.ClientSession() as http:
            async with http.get(server.url + "/webpush/public-key") as response:
                keys.append((await response.json())["publicKey"])
        await server.stop()
        outputs.append(server.output())
    folder = _user_folder(home)
    data, logfile = folder / "data", folder / "log" / "notification_server.log"
    assert keys[0] == keys[1], "a second working directory made a new VAPID key"
    assert (data / "vapid_private.pem").is_file()
    assert "listening on" in logfile.read_text()
    for output in outputs:
        assert f"data folder {data}" in output and f"log file {logfile}" in output, output
    for name in ("log", "data"):
        assert not (installed.site_packages / name).exists()
        assert not (installed.site_packages / PACKAGE / name).exists()
    assert list(first_dir.iterdir()) == [] and list(second_dir.iterdir()) == []


def test_installed_help_runs_without_the_checkout(installed, tmp_path):
    done = subprocess.run([str(installed.command), "-h"], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, **_environment(tmp_path)},
                          timeout=WAIT * 4)
    assert done.returncode == 0, done.stderr
    assert "--web-root" in done.stdout and "--base-path" in done.stdout
    where = subprocess.run(
        [str(installed.python), "-c",
         f"import {PACKAGE}, sys; print({PACKAGE}.__file__)"],
        capture_output=True, text=True, cwd=tmp_path, timeout=WAIT * 4,
        env={**os.environ, "PYTHONPATH": ""}).stdout.strip()
    assert Path(where).is_relative_to(installed.site_packages), where


@pytest.mark.parametrize("platform, environ, expected", [
    ("win32", {"LOCALAPPDATA": r"C:\Users\ann\AppData\Local"},
     Path(r"C:\Users\ann\AppData\Local") / APP_FOLDER),
    ("linux", {"XDG_DATA_HOME": "/srv/state"}, Path("/srv/state") / APP_FOLDER),
    ("linux", {"XDG_DATA_HOME": "relative/ignored"},
     Path.home() / ".local" / "share" / APP_FOLDER),
    ("linux", {}, Path.home() / ".local" / "share" / APP_FOLDER),
    ("darwin", {}, Path.home() / "Library" / "Application Support" / APP_FOLDER),
    ("win32", {}, Path.home() / "AppData" / "Local" / APP_FOLDER),
])
def test_installed_home_is_the_platforms_per_user_folder(platform, environ, expected):
    assert default_home(platform, environ, checkout=False) == expected


def test_source_checkout_keeps_log_and_data_in_the_checkout_whatever_the_working_dir(
        tmp_path, monkeypatch):
    assert is_source_checkout()  # these tests run from a checkout
    assert default_home(checkout=True) == PROJECT_ROOT
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOTIFY_DATA_DIR", raising=False)
    monkeypatch.delenv("NOTIFY_LOGFILE", raising=False)
    settings = settings_from_args([])
    assert settings.data_dir == PROJECT_ROOT / "data"
    assert settings.logfile == PROJECT_ROOT / "log" / "notification_server.log"
    relative = settings_from_args(["--data-dir", "here"])
    assert relative.data_dir == tmp_path / "here"  # made absolute once, at start
    assert not is_source_checkout(tmp_path)


async def test_the_images_command_and_health_check_run_from_the_wheel(installed, spawn, tmp_path):
    """The Dockerfile's CMD and ENV, with its absolute folders moved under tmp_path."""
    command = image_command()
    environment = image_environment()
    for name in ("NOTIFY_DATA_DIR", "NOTIFY_LOGFILE"):
        environment[name] = str(tmp_path / "image" / environment[name].lstrip("/"))
    server = await spawn(command=[installed.command.with_name(command[0]), *command[1:]],
                         own_locations=False, env={**_environment(tmp_path), **environment})
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + "/sources/alert.html") as response:
            assert response.status == 200
    check = health_check()
    done = subprocess.run([str(installed.python), *check[1:]], timeout=WAIT * 2,
                          env={"NOTIFY_PORT": str(server.port)})
    assert done.returncode == 0
    assert (Path(environment["NOTIFY_DATA_DIR"]) / "vapid_private.pem").is_file()
