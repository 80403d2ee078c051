"""One staleness rule for everything the tooling runs (the book's sweep and the evidence study).

A result is current when the stamp saved beside it equals the stamp the same job would write now::

    stamp(code, **inputs) = {"version": oscbind_lite's version, "code": sha256 of the source the job runs,
                             **inputs (the job's own: parameters, config, notebook hash, ...)}

The code is everything a job's numbers can depend on: all of ``oscbind_lite`` always, and of the
tooling what the runner itself executes (all of it for a chapter, which draws and reads every study;
the ``studies`` package and this module for an evidence job). Any edit there makes the result stale,
so nothing computed by older code survives silently. (The checkpoint cache keys models on the
training code alone, so a rerun after such an edit loads its models instead of retraining.)
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
from pathlib import Path

import oscbind_lite
from oscbind_lite.cache import source_fingerprint

PACKAGES = (Path(oscbind_lite.__file__).resolve().parent, Path(__file__).resolve().parent)


@functools.lru_cache(maxsize=None)
def code_fingerprint(tools: tuple[str, ...] | None = None) -> str:
    """sha256 over the sources of oscbind_lite and of the given parts of oscbind_tools: a module ("provenance") or a
    folder of them ("studies", every module under it); None: the whole of oscbind_tools."""
    root = PACKAGES[1]
    files = sorted(root.rglob("*.py")) if tools is None else sorted(
        f for part in tools for f in ([root / f"{part}.py"] if (root / f"{part}.py").is_file()
                                      else (root / part).rglob("*.py")))
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
    return source_fingerprint(None, str(PACKAGES[0]))[:32] + h.hexdigest()[:32]


def stamp(code: tuple[str, ...] | None = None, **inputs) -> dict:
    """What a result depends on, as plain JSON values (compare with ``is_current``); ``code``: the tooling
    modules the job runs (None: all)."""
    return json.loads(json.dumps({"version": oscbind_lite.__version__, "code": code_fingerprint(code), **inputs}))


def is_current(saved: dict | None, expected: dict) -> bool:
    """True when a saved stamp equals the expected one (a missing or malformed stamp is stale)."""
    return isinstance(saved, dict) and saved == expected


def why_stale(saved: dict | None, expected: dict) -> str:
    """Why a saved stamp is not current, in words ("" when it is): made by other code, another package version, or
    other settings (the stamp's inputs), or carrying no stamp at all."""
    if is_current(saved, expected):
        return ""
    if not isinstance(saved, dict):
        return "no stamp"
    if saved.get("version") != expected["version"]:
        return f"package version {saved.get('version')}"
    if saved.get("code") != expected["code"]:
        return "other code"
    return "other settings (" + ", ".join(k for k in expected if saved.get(k) != expected[k]) + ")"


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
