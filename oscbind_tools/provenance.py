"""One staleness rule for everything the tooling runs (the book's sweep and the evidence study).

A result is current when the stamp saved beside it equals the stamp the same job would write now::

    stamp(**inputs) = {"version": oscbind_lite's version, "code": sha256 of the source of oscbind_lite
                       and oscbind_tools, **inputs (the job's own: parameters, config, notebook hash, ...)}

The code fingerprint is deliberately coarse: any edit of either package makes every result stale,
so nothing computed by older code survives silently. (The checkpoint cache keys models on the
training code alone, so a rerun after an edit of the tooling loads its models instead of retraining.)
"""

from __future__ import annotations

import functools
import json
import platform
import subprocess
from pathlib import Path

import oscbind_lite
from oscbind_lite.cache import source_fingerprint

PACKAGES = (Path(oscbind_lite.__file__).resolve().parent, Path(__file__).resolve().parent)


@functools.lru_cache(maxsize=None)
def code_fingerprint() -> str:
    """sha256 over the sources of both packages."""
    return source_fingerprint(None, str(PACKAGES[0]))[:32] + source_fingerprint(None, str(PACKAGES[1]))[:32]


def stamp(**inputs) -> dict:
    """What a result depends on, as plain JSON values (compare with ``is_current``)."""
    return json.loads(json.dumps({"version": oscbind_lite.__version__, "code": code_fingerprint(), **inputs}))


def is_current(saved: dict | None, expected: dict) -> bool:
    """True when a saved stamp equals the expected one (a missing or malformed stamp is stale)."""
    return isinstance(saved, dict) and saved == expected


def git_commit() -> str:
    """The commit the code comes from ("+dirty" if the packages have uncommitted changes), or "unknown"."""
    here = PACKAGES[1]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *map(str, PACKAGES)], cwd=here,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def machine() -> str:
    """One line: the platform and Python, for the pages that say where they were computed."""
    return f"{platform.platform()}, Python {platform.python_version()}"
