"""The README's commands, as written, for the tests that run them.

A command is a line of a ```bash block (continuation lines joined, comments dropped) or an inline code
span that starts with `.venv/bin/`. A test takes the exact text with `command(prefix)` and runs it with
`run(...)` through bash, so a README that changes a command changes what the test runs, and a README
command no test takes fails `tests/test_readme.py`. Spans with a placeholder (`…`, `[`, `/path/to/`)
are patterns, not commands.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"…|\[|/path/to/")


@lru_cache(maxsize=1)
def commands() -> tuple[str, ...]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in re.sub(r"\\\n\s*", "", block).splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                found.append(line)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    found += [span for span in re.findall(r"`([^`\n]+)`", prose) if span.startswith(".venv/bin/")]
    unique = dict.fromkeys(c for c in found if not PLACEHOLDER.search(c))
    return tuple(unique)


def command(prefix: str) -> str:
    """The README command that is `prefix`, else the one that starts with it (whole words), exactly as the
    README writes it."""
    if prefix in commands():
        return prefix
    matches = [c for c in commands() if c.startswith(prefix + " ")]
    assert len(matches) == 1, f"the README has {len(matches)} commands starting {prefix!r}: {matches}"
    return matches[0]


def venv_in(folder: Path) -> None:
    """`.venv/bin/…` resolves in `folder`: a link to the interpreter's environment unless one is there."""
    link = folder / ".venv"
    if not link.exists():
        link.symlink_to(Path(sys.executable).parent.parent, target_is_directory=True)


def run(script: str, cwd: Path, env: dict | None = None, input: str | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    """`script` (one README command, or several lines a user would type in one shell) through bash, in the
    environment `env` (default: this process's)."""
    venv_in(cwd)
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env or dict(os.environ),
                          input=input,
                          capture_output=True, text=True, timeout=timeout)
