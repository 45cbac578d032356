"""Reading the deployment files the way Docker does, for tests that cannot run a container.

This machine has a docker client but no engine, so the tests read the
Dockerfile's instructions themselves (continuation lines, JSON-form
arguments) and run its command and health check against a real server.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from notification_service.config import PROJECT_ROOT

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
COMPOSE = PROJECT_ROOT / "compose.yaml"


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, ENV, ...
    arguments: str  # the rest of the line, continuations joined


def instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    found: list[Instruction] = []
    pending = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = (pending + stripped).strip()
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        found.append(Instruction(keyword.upper(), arguments.strip()))
    return found


def command_form(arguments: str) -> list[str]:
    """``["a", "b"]`` (exec form) or ``a b`` (shell form, as the shell would split it)."""
    if arguments.startswith("["):
        return json.loads(arguments)
    return ["/bin/sh", "-c", arguments]


def last(keyword: str) -> Instruction:
    return [found for found in instructions() if found.keyword == keyword][-1]


def image_command() -> list[str]:
    return command_form(last("CMD").arguments)


def image_environment() -> dict[str, str]:
    environment: dict[str, str] = {}
    for found in instructions():
        if found.keyword == "ENV":
            for pair in shlex.split(found.arguments):
                name, _, value = pair.partition("=")
                environment[name] = value
    return environment


def health_check() -> list[str]:
    """The HEALTHCHECK's command (its --interval and other options dropped)."""
    words = last("HEALTHCHECK").arguments
    options, _, command = words.partition("CMD ")
    assert all(option.startswith("--") for option in options.split()), options
    return command_form(command.strip())
