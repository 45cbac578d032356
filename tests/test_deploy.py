"""Deployment files: the Dockerfile, compose.yaml with its nginx, and the systemd unit.

No container engine here: the Dockerfile and compose file are read as Docker
reads them, their health check runs against a real server, their nginx file
passes ``nginx -t``, and the systemd unit passes ``systemd-analyze verify``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tomllib

import yaml

from notification_service.config import PROJECT_ROOT, declared_settings

from .deployment import COMPOSE, health_check, image_command, image_environment, instructions
from .services import NginxServer
from .support import WAIT, require

VARIABLES = {row.option.env: row for row in declared_settings()}
UNIT = PROJECT_ROOT / "contrib" / "systemd" / "notification-server.service"
ENVIRONMENT_FILE = PROJECT_ROOT / "contrib" / "systemd" / "notification-server.env"


def test_image_is_slim_runs_as_its_own_user_and_keeps_data_and_logs_in_volumes():
    found = instructions()
    assert found[0].keyword == "FROM" and found[0].arguments.startswith("python:3")
    assert found[0].arguments.endswith("-slim")
    users = [item.arguments for item in found if item.keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    keywords = [item.keyword for item in found]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    environment = image_environment()
    volumes = [volume for item in found if item.keyword == "VOLUME"
               for volume in json.loads(item.arguments)]
    logfile = environment["NOTIFY_LOGFILE"]
    assert sorted(volumes) == sorted([environment["NOTIFY_DATA_DIR"],
                                      logfile.rpartition("/")[0]])
    exposed = [item.arguments for item in found if item.keyword == "EXPOSE"]
    assert exposed == [environment["NOTIFY_PORT"]]


def test_image_command_is_the_installed_console_script_and_its_settings_parse():
    scripts = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"notification-server": "notification_service.cli:main"}
    assert image_command() == ["notification-server"]  # tests/test_install.py runs it
    for name, value in image_environment().items():
        if name.startswith("NOTIFY_"):
            row = VARIABLES[name]  # a KeyError is a variable the server does not read
            row.finish(row.parse(value))


async def _health_check_passes(port: int, base_path: str = "") -> bool:
    command = health_check()
    assert command[0] == "python"  # the image's interpreter; here, this one
    process = await asyncio.create_subprocess_exec(
        sys.executable, *command[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={"NOTIFY_PORT": str(port), "NOTIFY_BASE_PATH": base_path})
    return await asyncio.wait_for(process.wait(), WAIT * 2) == 0


async def test_health_check_asks_health_and_fails_when_nothing_answers(serve):
    server = await serve()
    assert await _health_check_passes(server.port)
    under = await serve(base_path="/notify")
    assert await _health_check_passes(under.port, "/notify/")
    await server.stop()
    assert not await _health_check_passes(server.port)


def test_compose_runs_two_nodes_on_redis_and_postgres_behind_nginx():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {"redis", "postgres", "node1", "node2", "nginx"} <= set(services)
    for name in ("node1", "node2"):
        node = services[name]
        assert node["build"] == "." and "command" not in node  # the image's command
        environment = node["environment"]
        assert environment["NOTIFY_NODE_NAME"] == name
        for variable, host in (("NOTIFY_REDIS_URL", "redis"), ("NOTIFY_DATABASE_URL", "postgres")):
            row = VARIABLES[variable]
            url = row.finish(row.parse(environment[variable]))
            assert f"@{host}:" in url or f"//{host}:" in url
        for variable in environment:
            assert variable in VARIABLES, variable
        assert {"redis", "postgres"} <= set(node["depends_on"])
        mounts = {volume.split(":")[1] for volume in node["volumes"]}
        image = image_environment()
        assert {image["NOTIFY_DATA_DIR"], image["NOTIFY_LOGFILE"].rpartition("/")[0]} == mounts
    assert services["node1"]["volumes"][1] != services["node2"]["volumes"][1]  # own logs
    key_maker = services["vapid-key"]
    assert key_maker["command"] == ["notification-server", "vapid", "--generate"]
    assert services["node1"]["depends_on"]["vapid-key"] == {
        "condition": "service_completed_successfully"}
    for name in ("redis", "postgres"):
        assert "healthcheck" in services[name]
    (mount,) = services["nginx"]["volumes"]
    assert (PROJECT_ROOT / mount.split(":")[0]).is_file()


async def test_compose_nginx_configuration_is_valid_nginx(tmp_path):
    compose = yaml.safe_load(COMPOSE.read_text())
    source = PROJECT_ROOT / compose["services"]["nginx"]["volumes"][0].split(":")[0]
    text = source.read_text()
    for needed in ("ip_hash;", "server node1:8080;", "server node2:8080;",
                   "proxy_set_header Host $http_host;", "proxy_set_header Upgrade",
                   "proxy_buffering off;"):
        assert needed in text, needed
    nginx = NginxServer(tmp_path / "nginx")
    # node1/node2 resolve inside compose only; the rest is checked as written.
    checked = text.replace("node1:8080", "127.0.0.1:1").replace("node2:8080", "127.0.0.2:1")
    checked = checked.replace("listen 80;", f"listen 127.0.0.1:{nginx.port};")
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx.configuration(checked))
    for name in NginxServer.TEMP_FOLDERS:
        (nginx.folder / name).mkdir(exist_ok=True)
    done = subprocess.run([nginx.executable, "-t", "-p", str(nginx.folder), "-c", str(conf),
                           "-e", str(nginx.error_log)], capture_output=True, text=True,
                          timeout=WAIT * 2)
    assert done.returncode == 0, done.stderr


def test_systemd_unit_passes_systemd_analyze(tmp_path):
    analyze = shutil.which("systemd-analyze")
    require(analyze is not None, "systemd-analyze is not installed (apt-get install -y systemd)")
    text = UNIT.read_text()
    for needed in ("User=notification-server", "EnvironmentFile=/etc/default/notification-server",
                   "Restart=on-failure", "ProtectSystem=strict", "NoNewPrivileges=yes",
                   "StateDirectory=notification-server", "LogsDirectory=notification-server",
                   "ExecStart=/opt/notification-server/.venv/bin/notification-server\n"):
        assert needed in text, needed
    # verify insists the command exists: run the one the tests run instead.
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace(
        "ExecStart=/opt/notification-server/.venv/bin/notification-server",
        f"ExecStart={sys.executable} {PROJECT_ROOT / 'notification_server.py'}"))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=WAIT * 6)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
    security = subprocess.run([analyze, "security", "--offline=yes", str(unit)],
                              capture_output=True, text=True, timeout=WAIT * 6)
    level = security.stdout.rpartition("Overall exposure level for")[2]
    assert float(level.split(":")[1].split()[0]) < 2.5, security.stdout[-400:]


def test_environment_file_names_only_settings_that_exist():
    for line in ENVIRONMENT_FILE.read_text().splitlines():
        assignment = line.removeprefix("#")
        if not assignment.startswith("NOTIFY_"):
            continue
        name, _, value = assignment.partition("=")
        row = VARIABLES[name]
        if not line.startswith("#"):
            row.finish(row.parse(value))


def _bash_blocks(text: str) -> list[str]:
    return [block.split("```", 1)[0].strip() for block in text.split("```bash\n")[1:]]


def test_ci_runs_the_readmes_test_command_word_for_word():
    readme = (PROJECT_ROOT / "README.md").read_text()
    start, test = _bash_blocks(readme)[:2]
    assert start.startswith("python3 -m venv .venv && ") and "notification_server.py" in start
    assert test.startswith("python3 -m venv .venv && ") and test.endswith("-m pytest")
    ci = (PROJECT_ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == test


def test_readme_shows_the_nginx_configuration_the_tests_run():
    readme = (PROJECT_ROOT / "README.md").read_text()
    conf = (PROJECT_ROOT / "contrib" / "nginx" / "notification-server.conf").read_text()
    assert f"```nginx\n{conf}```" in readme
