"""The machine's processes as the tests look for them: each one's command line and environment, from /proc."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def processes(match: Callable[[str, str], bool]) -> list[str]:
    """"pid: command line" of every process whose command line and environment (NUL-separated) match."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (proc / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if cmdline and match(cmdline, environ):
            found.append(f"{proc.name}: {cmdline.strip()}")
    return found
