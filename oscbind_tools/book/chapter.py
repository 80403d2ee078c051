"""A book chapter's parameters: declared once, checked on entry, turned into the run the chapter asks for.

Every chapter's first code cell is tagged ``parameters`` and starts with the line
``# Chapter parameters``, then one parameter per line as ``name: type = value  # help`` (the form
``papermill --help-notebook`` reads). The next cell calls ``setup(globals(), ...)``, which

* refuses a parameter the chapter does not declare (papermill itself only warns),
* checks each value against its declared type,
* routes every parameter that names a configuration field (``m``, ``seed``, ``T``, ``gamma``,
  ``steps``, ... any of ``oscbind_lite.config.settings()``) into the chapter's ``RunConfig`` and
  validates it exactly as the command line does,
* returns the run, the device, and a one-line description of what the page was built with.

A bad value stops the notebook with one line naming the parameter and what it accepts.
"""

from __future__ import annotations

import ast
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from oscbind_lite.cache import cache_dir, claim_folder, readable_folder, writable_folder
from oscbind_lite.config import RunConfig, settings, smoke, type_name, with_overrides
from oscbind_lite.data import GlyphError
from oscbind_lite.train import prepare, resolve_device

from . import checkpoints

MARKER = "# Chapter parameters"
_LINE = re.compile(r"^(?P<name>[A-Za-z_]\w*)\s*:\s*(?P<type>[^=]+?)\s*=\s*(?P<value>.+?)\s*(#\s*(?P<help>.*))?$")
_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}
# The book's committed models: beside this package in a clone (wherever papermill or Jupyter runs a chapter from), else
# as a chapter in book/notebooks sees them.
BOOK_CHECKPOINTS = (Path(__file__).resolve().parents[2] / "book" / "checkpoints", Path("../checkpoints"))


class ParameterError(ValueError):
    """A bad notebook parameter; IPython shows it as one line, without a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"ParameterError: {self}"]


@dataclass(frozen=True)
class Declared:
    """One line of a parameters cell."""

    name: str
    type: str
    default: str
    help: str


def declared_parameters(source: str) -> dict[str, Declared]:
    """Parse a parameters cell: ``name: type = value  # help`` lines (comments and blanks skipped)."""
    out = {}
    for line in source.splitlines():
        if (match := _LINE.match(line.strip())) and not line.lstrip().startswith("#"):
            out[match["name"]] = Declared(match["name"], match["type"].strip(), match["value"], match["help"] or "")
    return out


def _history() -> list[str]:
    """Sources of the cells run so far in this kernel (empty outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return []
    shell = get_ipython()
    return list(shell.user_ns.get("_ih", [])) if shell is not None else []


def _injected_names(history: list[str], declared_at: int) -> set[str]:
    """Names assigned in papermill's injected cell(s) ("# Parameters" header) after the parameters cell."""
    names: set[str] = set()
    for source in history[declared_at + 1:]:
        if source.lstrip().startswith("# Parameters"):
            for node in ast.parse(source).body:
                if isinstance(node, ast.Assign):
                    names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def check_names_and_types(namespace: dict, history: list[str] | None = None) -> dict[str, Declared]:
    """Refuse unknown parameter names and values of the wrong type; return the declared parameters."""
    history = _history() if history is None else history
    at = max((i for i, src in enumerate(history) if src.lstrip().startswith(MARKER)), default=None)
    if at is None:
        return {}
    declared = declared_parameters(history[at])
    unknown = sorted(_injected_names(history, at) - set(declared))
    if unknown:
        raise ParameterError(f"{unknown[0]}: unknown parameter; this notebook takes {', '.join(declared)}")
    for p in declared.values():
        value = namespace.get(p.name)
        allowed = _TYPES.get(p.type)
        if allowed and (not isinstance(value, allowed) or (p.type != "bool" and isinstance(value, bool))):
            raise ParameterError(f"{p.name}: must be {p.type}, got {value!r}")
    return declared


def config_parameters(declared: dict[str, Declared]) -> list[str]:
    """The declared parameters that are configuration fields, in declaration order."""
    known = settings()
    return [name for name in declared if name in known]


def check(ok: bool, name: str, allowed: str, value) -> None:
    """A chapter's own check of one of its parameters: raise the one-line ParameterError unless ok."""
    if not ok:
        raise ParameterError(f"{name}: must be {allowed}, got {value!r}")


class Chapter(NamedTuple):
    """What a chapter needs after its parameters are checked."""

    run: RunConfig
    device: torch.device
    smoke: bool

    def describe(self) -> str:
        """A line for the page: what this page was built with (split, seed, smoke), in words."""
        d = self.run.data
        held_out = "the held-out icons" if d.glyphs else f"the {100 - d.m} held-out icons"
        note = " Smoke build: every training shrunk to seconds, so the numbers below say nothing." if self.smoke else ""
        return f"This page was built with m = {d.m} training icons and seed {d.seed}; tests use {held_out}.{note}"


def setup(namespace: dict, task: str = "same-different", **fixed) -> Chapter:
    """Check the chapter's parameters (names, types, values) and build its run configuration.

    Every declared parameter that names a configuration field is applied to the run; ``device`` and
    ``smoke`` are read when declared; ``fixed`` are chapter-specific config fields (e.g.
    ``symmetric=True``) applied last. Raises ParameterError.
    """
    declared = check_names_and_types(namespace)
    overrides = {name: namespace[name] for name in config_parameters(declared) if name in namespace}
    overrides.update(fixed)
    is_smoke = bool(namespace.get("smoke", False))
    try:
        run = with_overrides(smoke() if is_smoke else RunConfig(), **overrides)
        run = prepare(run, task)
        device = resolve_device(namespace.get("device", "auto"))
        if namespace.get("out_dir") and "overwrite" in declared:  # a chapter that writes a run's metrics.json:
            # claimed before any training, like the command line's --out (no other run's metrics replaced unasked)
            claim_folder(namespace["out_dir"], "out_dir", bool(namespace.get("overwrite")), "set overwrite = True")
        elif namespace.get("out_dir"):
            writable_folder(namespace["out_dir"], "out_dir")
        if not is_smoke:  # a chapter run by hand loads the models the book committed, and says when it must train
            committed = next((folder for folder in BOOK_CHECKPOINTS if folder.is_dir()), None)
            cache = readable_folder(cache_dir(), "cache")
            if committed is not None and os.access(cache, os.W_OK):  # a read-only cache serves what it holds
                checkpoints.seed(committed, cache)
            announce_training(run, cache)
    except (ValueError, GlyphError) as err:
        raise ParameterError(str(err)) from None
    return Chapter(run, device, is_smoke)


def announce_training(run: RunConfig, cache: Path) -> None:
    """One line when no committed or cached model has the run's settings, so that a chapter that trains one says so
    before its minutes start. It goes to the process's own stderr (a kernel's is the terminal of the papermill that
    started it, which shows nothing of a cell while it runs)."""
    from oscbind_lite.train import _stage1_key

    key, _ = _stage1_key(run)
    if (cache / f"same-different-{key[:20]}.pt").exists():
        return
    changed = run.changed() or "the defaults"
    stream = sys.__stderr__ or sys.stderr
    print(f"training: no committed or cached model has these settings ({changed}); a chapter that trains trains one "
          f"first ({run.stage1.steps:,} steps: minutes on a CPU)", file=stream, flush=True)


def declared_type_matches(p: Declared) -> bool:
    """Whether a declared parameter that names a config field has the field's type (for the tests)."""
    known = settings()
    return p.name not in known or p.type == type_name(known[p.name].type)
