"""Every README example that sends JSON says so: the server answers 415 otherwise.

JSON routes require ``Content-Type: application/json`` (a body of any other
type is what a page of another site could send without a preflight), so a
copied example without it would fail. curl's ``-d`` sends
``application/x-www-form-urlencoded``, PowerShell's ``-Body`` a form too.
"""

from __future__ import annotations

import re

from .readme_tables import README

BLOCK = re.compile(r"```[a-z]*\n(.*?)```", re.S)
COMMANDS = {
    "curl": (re.compile(r"\bcurl\b.*(?:\s-d\s|--data(?:-raw)?\s|--json\s)"),
             re.compile(r"Content-Type: application/json|--json\s")),
    "PowerShell": (re.compile(r"Invoke-(?:RestMethod|WebRequest)\b.*\s-Body\s"),
                   re.compile(r"-ContentType\s+['\"]?application/json")),
    "fetch": (re.compile(r"\bfetch\(.*\bbody:\s*JSON\.stringify"),
              re.compile(r"Content-Type['\"]?\s*:\s*['\"]application/json")),
    "requests": (re.compile(r"\brequests\.(?:post|put|delete)\(.*\bdata="),
                 re.compile(r"Content-Type['\"]?\s*:\s*['\"]application/json")),
}


def commands(text: str) -> list[str]:
    """Each command of every code block, continuation lines (\\ ` and open brackets) joined."""
    found = []
    for block in BLOCK.findall(text):
        current = ""
        depth = 0
        for line in block.splitlines():
            current += " " + line.strip()
            depth += line.count("(") + line.count("{") - line.count(")") - line.count("}")
            if line.rstrip().endswith(("\\", "`", ",")) or depth > 0:
                continue
            found.append(current.strip())
            current, depth = "", 0
        if current.strip():
            found.append(current.strip())
    return found


def test_every_json_example_sends_the_json_content_type():
    missing = []
    for command in commands(README.read_text(encoding="utf-8")):
        for name, (sends_json, says_json) in COMMANDS.items():
            if sends_json.search(command) and "--data-binary" not in command \
                    and not says_json.search(command):
                missing.append(f"{name}: {command[:160]}")
    assert not missing, "\n".join(missing)


def test_the_checker_sees_a_bad_example():
    bad = "```bash\ncurl -X POST http://127.0.0.1:8080/broadcast/news/count \\\n  -d '42'\n```\n"
    assert any(COMMANDS["curl"][0].search(command) for command in commands(bad))
    assert not any(COMMANDS["curl"][1].search(command) for command in commands(bad))
