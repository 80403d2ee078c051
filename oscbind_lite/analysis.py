"""Measurements on trained models: accuracy by kind of trial, energy descent, the same-versus-different
energy gap and its terms, phase locking.

These are the fidelity numbers of the book's energy and dynamics chapters (and of the evidence
study): each takes a trained model or recorded dynamics (``model.KuramotoBinding.trajectory``) and
returns numbers; none trains anything.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import NamedTuple

import torch
from torch import Tensor

from . import core
from .data import IconTasks, Trials, sample_same_different, seeded
from .model import Dynamics, KuramotoBinding, SameDifferent
from .train import predictions


def accuracy_by_kind(model: torch.nn.Module, task: str, trials: Trials, seed: int) -> dict[str, tuple[float, int]]:
    """Accuracy and count per kind of trial of a fixed evaluation set (e.g. ``train.eval_sets(...)["test"]``).

    Same/different: "same" and "different" pairs. RMTS: "same source" (AA; BB vs CD) and
    "different source" (AB; CD vs EE) trials. Their count-weighted mean is the headline accuracy.
    """
    correct = (predictions(model, trials.images, seed) == trials.labels.long()).cpu()
    if task == "same-different":
        kinds = {"same": trials.labels.cpu() == 1, "different": trials.labels.cpu() == 0}
    else:
        same_source = trials.icons[:, 0, 0] == trials.icons[:, 0, 1]
        kinds = {"same source": same_source, "different source": ~same_source}
    return {k: (correct[mask].float().mean().item(), int(mask.sum())) for k, mask in kinds.items()}


class PairDynamics(NamedTuple):
    """Recorded dynamics of n "same" and n "different" pairs."""

    same: Dynamics
    different: Dynamics

    def together(self) -> Dynamics:
        """Both kinds as one Dynamics of 2n pairs (same first)."""
        s, d = self.same, self.different
        return Dynamics(torch.cat([s.states, d.states], 1), torch.cat([s.energies, d.energies], 1),
                        torch.cat([s.c, d.c], 0), torch.cat([s.terms, d.terms], 2))


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
    z = model.encode(tasks.render(icons[order], gen)).to(dtype)
    binding = copy.deepcopy(model.binding).to(dtype)
    dyn = binding.trajectory(z, seeded(seed, "fidelity:start"))
    part = lambda sl: Dynamics(dyn.states[:, sl], dyn.energies[:, sl], dyn.c[sl], dyn.terms[:, :, sl])  # noqa: E731
    return PairDynamics(part(slice(0, n)), part(slice(n, 2 * n)))


def with_dynamics(model: SameDifferent, **changes) -> SameDifferent:
    """A copy of model, same weights, whose oscillators run with other settings (``gamma``, ``T``, ``start``); a
    given T is what the copy runs in eval mode too (its T_eval is cleared)."""
    if model.binding is None:
        raise ValueError(f"bottleneck: the dynamics need the oscillator model, got {model.cfg.bottleneck!r}")
    other = copy.deepcopy(model)
    changes = {"T_eval": 0, **changes} if "T" in changes else changes
    other.cfg = other.binding.cfg = dataclasses.replace(model.cfg, **changes)
    return other


def with_step(model: SameDifferent, k: int) -> SameDifferent:
    """A copy of model integrating the same time span with a k times finer Euler step (gamma / k, k T steps)."""
    return with_dynamics(model, gamma=model.cfg.gamma / k, T=model.cfg.T * k)


class Descent(NamedTuple):
    """How often the energy did not increase from one step to the next (within a stated tolerance)."""

    share_non_increasing: float  # share of (pair, step) transitions with E(t+1) - E(t) <= rtol |E(t)|
    transitions: int
    largest_increase: float  # max of E(t+1) - E(t) (<= 0 when every step descends)
    monotone_share: float  # share of trajectories with no increase beyond the tolerance at any step
    final_motion: float  # median |E(t+1) - E(t)| over the last 5 steps: near 0 once the state has settled
    rtol: float  # the relative tolerance that counts as rounding


def descent(energies: Tensor, rtol: float = 0.0) -> Descent:
    """Energy descent statistics of ``(T+1, B)`` energies.

    ``rtol = 0`` is the strict count, which mistakes float rounding for increases once the state has
    converged; in double precision, ``rtol = 1e-9`` separates rounding (~1e-14 relative) from any real
    increase.
    """
    dE = energies[1:] - energies[:-1]
    ok = dE <= rtol * energies[:-1].abs()
    return Descent(ok.double().mean().item(), dE.numel(), dE.max().item(), ok.all(0).double().mean().item(),
                   dE[-5:].abs().median().item(), rtol)


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
    if len(a) + len(b) < 3:
        raise ValueError(f"pairs: the energy gap needs at least 3 pairs in all, got {len(a)} + {len(b)}")
    pooled = math.sqrt(((len(a) - 1) * a.var().item() + (len(b) - 1) * b.var().item()) / (len(a) + len(b) - 2))
    diff = (a.mean() - b.mean()).item()
    return Gap(a.mean().item(), b.mean().item(), diff, diff / pooled if pooled > 0 else float("nan"), len(a), len(b))


def released_energies(binding: KuramotoBinding, dynamics: Dynamics) -> Tensor:
    """``core.released_energy`` (the authors' plotted quantity) at every recorded state, ``(T+1, B)``."""
    _, J_in, J_out = binding.couplings()
    J_in, J_out = J_in.to(dynamics.states), J_out.to(dynamics.states)
    return torch.stack([core.released_energy(x, dynamics.c, J_in, J_out) for x in dynamics.states])


class TwoEnergies(NamedTuple):
    """The poster's E and the released code's quantity on the same trajectories of same and different pairs."""

    poster: Gap  # E at t = T, same minus different
    released: Gap
    curves: dict  # {"poster"|"released": {"same"|"different": mean over pairs at each t}}


@torch.no_grad()
def two_energies(model: SameDifferent, tasks: IconTasks, split: str, n: int, seed: int) -> TwoEnergies:
    """Both energies along the recorded dynamics of n same and n different held-out pairs, double precision."""
    dyn = pair_dynamics(model, tasks, split, n, seed, dtype=torch.float64)
    binding = copy.deepcopy(model.binding).double()
    released = {kind: released_energies(binding, getattr(dyn, kind)) for kind in ("same", "different")}
    poster = {kind: getattr(dyn, kind).energies for kind in ("same", "different")}
    curves = {name: {kind: e.mean(1).tolist() for kind, e in by.items()}
              for name, by in (("poster", poster), ("released", released))}
    return TwoEnergies(energy_gap(poster["same"][-1], poster["different"][-1]),
                       energy_gap(released["same"][-1], released["different"][-1]), curves)


def phase_gap(states: Tensor) -> Tensor:
    """Angle in degrees between object 1's and object 2's oscillator of each feature: ``(..., 2, D, N) -> (..., D)``."""
    x1, x2 = states[..., 0, :, :], states[..., 1, :, :]
    cos = (x1 * x2).sum(-1).clamp(-1, 1)
    return torch.rad2deg(torch.arccos(cos))


def locked_share(states: Tensor, max_gap_degrees: float = 30.0) -> float:
    """Share of (pair, feature) oscillator pairs whose phase gap is at most max_gap_degrees: ``states (B, 2, D, N)``."""
    return (phase_gap(states) <= max_gap_degrees).float().mean().item()


class EnergyParts(NamedTuple):
    """Mean and standard deviation over pairs of each term of E at one step."""

    drive: tuple[float, float]  # -(c1'x1 + c2'x2): each object alone
    within: tuple[float, float]  # -1/2 (x1'J_IN x1 + x2'J_IN x2)
    between: tuple[float, float]  # -1/2 (x1'J_OUT x2 + x2'J_OUT x1)


def energy_parts(dynamics: Dynamics, t: int = -1) -> EnergyParts:
    """The terms of E at step t (default T) over the recorded pairs, as (mean, sd)."""
    terms = dynamics.terms[t].double()  # (3, B)
    return EnergyParts(*[(row.mean().item(), row.std().item()) for row in terms])


class PartnerSwap(NamedTuple):
    """Same minus different energy in the paired partner-swap design, per group of two held-out icons.

    For icons A != B each drawn twice (a, a', b, b'), a group compares the same pairs (a, a') and
    (b, b') with the swapped pairs (a, b') and (b, a'): every rendering appears once on each side, in
    the same slot, and all four pairs start from one shared start state, so how strongly each image
    drives its oscillators cancels out of the difference.
    """

    difference: Tensor  # (T+1, n) [E(a,a') + E(b,b')] - [E(a,b') + E(b,a')], per group and step
    terms: Tensor  # (T+1, 3, n) the same difference split into drive, within (J_IN), between (J_OUT)
    same: Tensor  # (T+1, n) E(a,a') + E(b,b')
    different: Tensor  # (T+1, n) E(a,b') + E(b,a')


@torch.no_grad()
def partner_swap(model: SameDifferent, tasks: IconTasks, split: str, n: int, seed: int,
                 dtype: torch.dtype = torch.float64) -> PartnerSwap:
    """The partner-swap energies of n groups of held-out icon pairs (see ``PartnerSwap``)."""
    if model.cfg.context_norm:  # each encoding depends on its partner: a swapped pair must be encoded anew
        raise ValueError("context_norm: the partner-swap design reuses each image's encoding in two pairs, which a "
                         "model that normalises over the pair does not have")
    model = model.eval()
    gen = seeded(seed, f"partner-swap:{split}")
    pool = tasks.pool(split)
    if len(pool) < 2:
        raise ValueError(f"m: the partner-swap design needs 2 icons in the {split} split, got {len(pool)}")
    icons, _ = sample_same_different(pool, 2 * n, gen)  # take the "different" pairs: A != B
    A, B = icons[icons[:, 0] != icons[:, 1]][:n].unbind(1)
    n = len(A)
    # Each icon drawn twice: a = (a, a'), b = (b, b') as encodings (n, 2, D); the swapped pairs reuse them.
    a = model.encode(tasks.render(torch.stack([A, A], 1), gen)).to(dtype)
    b = model.encode(tasks.render(torch.stack([B, B], 1), gen)).to(dtype)
    ab2 = torch.stack([a[:, 0], b[:, 1]], 1)  # (a, b')
    ba2 = torch.stack([b[:, 0], a[:, 1]], 1)  # (b, a')
    binding = copy.deepcopy(model.binding).to(dtype)
    x0 = binding.initial_state(n, seeded(seed, "partner-swap:start"), a.device).to(dtype)
    runs = [binding.trajectory(z, x0=x0) for z in (a, b, ab2, ba2)]  # one shared start for the four pairs
    same_terms, diff_terms = runs[0].terms + runs[1].terms, runs[2].terms + runs[3].terms
    return PartnerSwap(same_terms.sum(1) - diff_terms.sum(1), same_terms - diff_terms, same_terms.sum(1),
                       diff_terms.sum(1))


def drive_agreement(c: Tensor) -> Tensor:
    """Angle in degrees between the two objects' drives c_{1,d} and c_{2,d}: ``(B, 2, D, N) -> (B, D)``."""
    return phase_gap(c / c.norm(dim=-1, keepdim=True).clamp_min(1e-12))


def lock_by_drive_angle(dynamics: Dynamics, edges=(0, 15, 30, 45, 60, 90, 120, 180),
                        max_gap_degrees: float = 30.0) -> list[tuple[float, float, float, int]]:
    """P(a feature ends locked | the angle between its two drives), binned: (low, high, share locked, count)."""
    angle = drive_agreement(dynamics.c).flatten()
    locked = (phase_gap(dynamics.states[-1]) <= max_gap_degrees).flatten().double()
    out = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (angle >= low) & ((angle < high) if high < edges[-1] else (angle <= high))
        count = int(inside.sum())
        out.append((float(low), float(high), locked[inside].mean().item() if count else float("nan"), count))
    return out


def without_j_out(model: SameDifferent) -> SameDifferent:
    """A copy of model, same weights, whose oscillators run with J_OUT = 0: the between-object coupling lesioned at
    test time, everything the model learned with it kept."""
    if model.binding is None:
        raise ValueError(f"bottleneck: J_OUT needs the oscillator model, got {model.cfg.bottleneck!r}")
    other = copy.deepcopy(model)
    other.binding.J_out_raw = None
    return other


def angle(a: Tensor, b: Tensor) -> Tensor:
    """Angle in degrees between unit vectors along the last dimension, ``(..., N), (..., N) -> (...)``, as
    2 atan2(|a - b|, |a + b|): exact near 0 and 180 degrees, where arccos of the dot product loses half the digits."""
    return torch.rad2deg(2 * torch.atan2((a - b).norm(dim=-1), (a + b).norm(dim=-1)))


def coupling_inside(model: SameDifferent, tasks: IconTasks, split: str, n: int, seed: int) -> dict[str, list[dict]]:
    """What J_OUT does to the dynamics of one trained model: the same n same and n different pairs of the split, the
    same drives and start, integrated in double precision with the learned J_OUT and with J_OUT = 0 (``without_j_out``).

    * ``displacement``: per kind of pair, the mean angle (degrees) between each oscillator's x(T) with and without
      J_OUT; beside it the mean angle between x(T) and its own drive c/|c| (where an oscillator settles with no
      coupling and Omega = 0) each way, and the share of features that lock each way;
    * ``lock_by_angle``: P(a different pair's feature locks | the angle between its two drives), each way: where the
      two curves coincide, locking follows drive agreement alone.
    """
    runs = {"learned": pair_dynamics(model, tasks, split, n, seed, dtype=torch.float64),
            "J_OUT = 0": pair_dynamics(without_j_out(model), tasks, split, n, seed, dtype=torch.float64)}
    displacement = []
    for kind in ("same", "different"):
        dyn = {way: getattr(pairs, kind) for way, pairs in runs.items()}
        row = {"pairs": kind,
               "moved_by_j_out": angle(dyn["learned"].states[-1], dyn["J_OUT = 0"].states[-1]).mean().item()}
        for way, key in (("learned", "learned"), ("J_OUT = 0", "without")):
            drive = dyn[way].c / dyn[way].c.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            row[f"from_drive_{key}"] = angle(dyn[way].states[-1], drive).mean().item()
            row[f"locked_{key}"] = locked_share(dyn[way].states[-1])
        displacement.append(row)
    by_angle = [{"coupling": way, "angle_low": lo, "angle_high": hi, "locked": p, "features": count}
                for way, pairs in runs.items() for lo, hi, p, count in lock_by_drive_angle(pairs.different)]
    return {"displacement": displacement, "lock_by_angle": by_angle}
