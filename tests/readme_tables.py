"""The README's tables of flags and errors, made from the one declaration of each.

``python -m tests.readme_tables`` rewrites them in README.md; ``tests/test_tables.py``
fails while the README differs from what this makes.
"""

from __future__ import annotations

import re
import sys

from notification_service import config, errors

README = config.PROJECT_ROOT / "README.md"
TABLES = {"settings-table": config.markdown_table, "errors-table": errors.markdown_table}


def section(name: str) -> re.Pattern[str]:
    """The text between ``<!-- name: ... -->`` and ``<!-- end name -->``."""
    return re.compile(rf"(<!-- {name}:[^>]*-->\n)(.*?)(<!-- end {name} -->)", re.S)


def current(text: str, name: str) -> str:
    found = section(name).search(text)
    if found is None:
        raise LookupError(f"README.md has no <!-- {name}: ... --> ... <!-- end {name} --> block")
    return found.group(2)


def rewritten(text: str) -> str:
    for name, make in TABLES.items():
        text = section(name).sub(lambda match, make=make: match.group(1) + make() + "\n"
                                 + match.group(3), text)
    return text


def main() -> int:
    text = README.read_text(encoding="utf-8")
    new = rewritten(text)
    if new != text:
        README.write_text(new, encoding="utf-8")
        print("README.md tables rewritten", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
