"""What the book's notebooks share: checking papermill parameters, and the run each chapter asks for.

Every chapter's first code cell is tagged ``parameters`` and starts with the line
``# Chapter parameters``, then one parameter per line as ``name: type = value  # help`` (the form
``papermill --help-notebook`` reads). The next cell calls ``setup(globals(), ...)``, which

* refuses a parameter the chapter does not declare (papermill itself only warns),
* checks each value's type and range (m for the task, device, sizes),
* returns the ``RunConfig`` the chapter should train or load, and the device.

A bad value stops the notebook with one line naming the parameter and what it accepts.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import NamedTuple

import torch

from .train import RunConfig, resolve_device, with_overrides

MARKER = "# Chapter parameters"
_LINE = re.compile(r"^(?P<name>[A-Za-z_]\w*)\s*:\s*(?P<type>[^=]+?)\s*=\s*(?P<value>.+?)\s*(#\s*(?P<help>.*))?$")
_TYPES = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}

# The smoke setting: every training shrinks to seconds, for CI and quick checks of the book.
SMOKE = dict(D=8, channels=(8, 8), hidden=16, steps=40, batch_size=16, eval_every=20, eval_size=128,
             rmts_steps=30, rmts_batch_size=16, rmts_eval_every=15, rmts_eval_size=64)


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


class Chapter(NamedTuple):
    """What a chapter needs after its parameters are checked."""

    run: RunConfig
    device: torch.device
    smoke: bool


def setup(namespace: dict, task: str = "same-different", **fixed) -> Chapter:
    """Check the chapter's parameters (names, types, values) and build its run configuration.

    Reads ``m``, ``seed``, ``device`` and ``smoke`` from the namespace (the notebook's globals);
    ``fixed`` are chapter-specific config fields (e.g. ``symmetric=True``). Raises ParameterError.
    """
    check_names_and_types(namespace)
    smoke = bool(namespace.get("smoke", False))
    overrides = {**(SMOKE if smoke else {}), **fixed}
    for name in ("m", "seed"):
        if name in namespace:
            overrides[name] = namespace[name]
    if overrides.get("seed", 0) < 0:
        raise ParameterError(f"seed: must be an integer >= 0, got {overrides['seed']}")
    try:
        run = with_overrides(RunConfig(), **overrides).validate(task)
        device = resolve_device(namespace.get("device", "auto"))
    except ValueError as err:
        raise ParameterError(str(err)) from None
    return Chapter(run, device, smoke)
