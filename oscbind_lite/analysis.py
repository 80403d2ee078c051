"""Measurements on trained models: energy descent, the same-versus-different energy gap, phase locking.

These are the fidelity numbers of the book's energy and dynamics chapters (and of the evidence
appendix): each takes recorded dynamics (``model.KuramotoBinding.trajectory``) and returns numbers.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import NamedTuple

import torch
from torch import Tensor

from .data import IconTasks, sample_same_different, seeded
from .model import Dynamics, SameDifferent


class PairDynamics(NamedTuple):
    """Recorded dynamics of n "same" and n "different" pairs."""

    same: Dynamics
    different: Dynamics


@torch.no_grad()
def pair_dynamics(model: SameDifferent, tasks: IconTasks, split: str, n: int, seed: int,
                  dtype: torch.dtype = torch.float32) -> PairDynamics:
    """Trajectories and energies of n same and n different pairs of the split's icons.

    ``dtype=torch.float64`` integrates in double precision (the encoder still runs in float32), so
    energy differences of 1e-7 are not rounding noise.
    """
    model = model.eval()
    gen = seeded(seed, f"fidelity:{split}")
    icons, same = sample_same_different(tasks.pool(split), 2 * n, gen)
    order = torch.argsort(same, descending=True, stable=True)  # n same pairs first, then n different
    images = tasks.augment.render(tasks.bank, icons[order], gen)
    E = model.encode(images).to(dtype)
    binding = copy.deepcopy(model.binding).to(dtype)
    dyn = binding.trajectory(E, seeded(seed, "fidelity:start"))
    part = lambda sl: Dynamics(dyn.states[:, sl], dyn.energies[:, sl], dyn.c[sl])  # noqa: E731
    return PairDynamics(part(slice(0, n)), part(slice(n, 2 * n)))


def with_step(model: SameDifferent, k: int) -> SameDifferent:
    """A copy of model integrating the same time span with a k times finer Euler step (gamma / k, k T steps)."""
    fine = copy.deepcopy(model)
    cfg = dataclasses.replace(model.cfg, gamma=model.cfg.gamma / k, T=model.cfg.T * k)
    fine.cfg = fine.binding.cfg = cfg
    return fine


class Descent(NamedTuple):
    """How often the energy did not increase from one step to the next."""

    share_non_increasing: float  # share of (pair, step) transitions with E(t+1) <= E(t)
    transitions: int
    largest_increase: float  # max of E(t+1) - E(t) (<= 0 when every step descends)


def descent(energies: Tensor) -> Descent:
    """Energy descent statistics of ``(T+1, B)`` energies."""
    dE = energies[1:] - energies[:-1]
    return Descent((dE <= 0).float().mean().item(), dE.numel(), dE.max().item())


class Gap(NamedTuple):
    """Energy at t = T, same minus different pairs, with a standardised effect size."""

    mean_same: float
    mean_different: float
    difference: float  # mean_same - mean_different (negative: same pairs settle lower)
    cohens_d: float  # difference / pooled standard deviation
    n_same: int
    n_different: int


def energy_gap(e_same: Tensor, e_different: Tensor) -> Gap:
    """Compare final energies ``(n,)`` of same and different pairs."""
    a, b = e_same.double(), e_different.double()
    pooled = math.sqrt(((len(a) - 1) * a.var().item() + (len(b) - 1) * b.var().item()) / (len(a) + len(b) - 2))
    diff = (a.mean() - b.mean()).item()
    return Gap(a.mean().item(), b.mean().item(), diff, diff / pooled if pooled > 0 else float("nan"), len(a), len(b))


def phase_gap(states: Tensor) -> Tensor:
    """Angle in degrees between object 1's and object 2's oscillator of each feature: ``(..., 2, D, N) -> (..., D)``."""
    x1, x2 = states[..., 0, :, :], states[..., 1, :, :]
    cos = (x1 * x2).sum(-1).clamp(-1, 1)
    return torch.rad2deg(torch.arccos(cos))


def locked_share(states: Tensor, max_gap_degrees: float = 30.0) -> float:
    """Share of (pair, feature) oscillator pairs whose phase gap is at most max_gap_degrees: ``states (B, 2, D, N)``."""
    return (phase_gap(states) <= max_gap_degrees).float().mean().item()
