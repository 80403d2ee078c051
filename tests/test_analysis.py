"""Measurements on models: accuracy by kind, energy descent, the energy gap, phase locking, finer steps."""

import dataclasses
import math

import pytest
import torch
from torch import nn

from oscbind_lite import analysis, core
from oscbind_lite.analysis import (accuracy_by_kind, descent, energy_gap, energy_parts, locked_share, pair_dynamics,
                                   phase_gap, with_step)
from oscbind_lite.config import smoke, with_overrides
from oscbind_lite.data import IconTasks, Renderer, glyph_bank
from oscbind_lite.model import RMTS, Dynamics, SameDifferent
from oscbind_lite.train import accuracy


class AlwaysSame(nn.Module):
    """A stand-in classifier that answers "same" to every pair."""

    def forward(self, images, gen=None):
        return torch.ones(len(images))


def small_model(seed: int = 0) -> SameDifferent:
    torch.manual_seed(seed)
    return SameDifferent(smoke().model).eval()


@pytest.fixture(scope="module")
def tasks():
    return IconTasks(glyph_bank(None), 50, 0)


def test_accuracy_by_kind_names_the_kinds_right(tasks):
    """A model that always says "same" is right on every same pair and wrong on every different one."""
    trials = tasks.same_different("test", 40, torch.Generator().manual_seed(0))
    kinds = accuracy_by_kind(AlwaysSame(), "same-different", trials, seed=0)
    assert kinds == {"same": (1.0, 20), "different": (0.0, 20)}


@pytest.mark.parametrize("task", ["same-different", "rmts"])
def test_accuracy_by_kind_weighted_by_count_is_the_accuracy(task, tasks):
    model = small_model() if task == "same-different" else RMTS(small_model()).eval()
    trials = tasks.trials(task, "test", 60, torch.Generator().manual_seed(1))
    kinds = accuracy_by_kind(model, task, trials, seed=3)
    assert sum(n for _, n in kinds.values()) == 60
    weighted = sum(acc * n for acc, n in kinds.values()) / 60
    assert weighted == pytest.approx(accuracy(model, trials, seed=3), abs=1e-6)
    if task == "rmts":
        same_source = int((trials.icons[:, 0, 0] == trials.icons[:, 0, 1]).sum())
        assert kinds["same source"][1] == same_source == 30 and kinds["different source"][1] == 30


def test_descent_counts_non_increasing_steps_and_the_largest_increase():
    # pair 0: 3, 2, 2, 1 (steps -1, 0, -1: all non-increasing); pair 1: 0, .5, .25, .75 (steps +.5, -.25, +.5)
    energies = torch.tensor([[3.0, 0.0], [2.0, 0.5], [2.0, 0.25], [1.0, 0.75]])
    d = descent(energies)
    assert d.transitions == 6 and d.share_non_increasing == pytest.approx(4 / 6) and d.largest_increase == 0.5
    falling = descent(torch.tensor([[1.0], [0.5], [0.25]]))
    assert falling.share_non_increasing == 1.0 and falling.largest_increase == -0.25


def test_energy_gap_is_the_mean_difference_and_cohens_d_by_hand():
    # same: 1, 2, 3, 4 (mean 2.5, variance 5/3); different: 2, 4, 6 (mean 4, variance 4)
    # pooled sd = sqrt((3 * 5/3 + 2 * 4) / 5) = sqrt(2.6); d = (2.5 - 4) / sqrt(2.6) = -0.93026
    gap = energy_gap(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([2.0, 4.0, 6.0]))
    assert (gap.mean_same, gap.mean_different, gap.difference) == (2.5, 4.0, -1.5)
    assert gap.cohens_d == pytest.approx(-1.5 / math.sqrt(2.6)) and round(gap.cohens_d, 5) == -0.93026
    assert (gap.n_same, gap.n_different) == (4, 3)
    assert math.isnan(energy_gap(torch.ones(3), torch.ones(4)).cohens_d)  # no spread: no standardised size


def unit(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


def test_phase_gap_and_locked_share_on_hand_made_states():
    # one pair, four features: object 2 sits 0, 60, 90 and 180 degrees from object 1 (itself at 30 degrees)
    x1 = [unit(30)] * 4
    x2 = [unit(30), unit(90), unit(120), unit(210)]
    states = torch.tensor([[x1, x2]], dtype=torch.float64)  # (1, 2, 4, 2)
    torch.testing.assert_close(phase_gap(states), torch.tensor([[0.0, 60.0, 90.0, 180.0]], dtype=torch.float64),
                               atol=1e-5, rtol=0)
    assert locked_share(states) == 0.25  # only the 0-degree pair is within 30 degrees
    assert locked_share(states, max_gap_degrees=75) == 0.5
    assert locked_share(states, max_gap_degrees=179) == 0.75
    trajectory = states.expand(5, 1, 2, 4, 2)  # any leading shape: (T+1, B, 2, D, N) -> (T+1, B, D)
    assert phase_gap(trajectory).shape == (5, 1, 4)


def test_with_step_integrates_the_same_span_with_k_times_finer_steps():
    model = small_model()
    gamma, T = model.cfg.gamma, model.cfg.T
    fine = with_step(model, 4)
    assert (fine.cfg.gamma, fine.cfg.T) == (gamma / 4, 4 * T) and fine.binding.cfg == fine.cfg
    assert (model.cfg.gamma, model.cfg.T) == (gamma, T) and model.binding.cfg.T == T  # the original is untouched
    z = torch.randn(3, 2, model.cfg.D)
    assert fine.binding.trajectory(z, torch.Generator()).states.shape[0] == 4 * T + 1
    assert model.binding.trajectory(z, torch.Generator()).states.shape[0] == T + 1
    for (name, p), q in zip(model.named_parameters(), fine.parameters()):
        assert torch.equal(p, q) and p is not q, name
    with torch.no_grad():
        next(fine.parameters()).add_(1.0)
    assert not torch.equal(next(model.parameters()), next(fine.parameters()))


def test_finer_euler_steps_converge():
    """Halving the step changes the final state less and less: the Euler scheme approximates one flow."""
    torch.manual_seed(1)
    model = small_model(1).double()
    z = torch.randn(4, 2, model.cfg.D, dtype=torch.float64)
    x0 = model.binding.initial_state(4, torch.Generator().manual_seed(0))
    final = [with_step(model, k).binding.trajectory(z, x0=x0).states[-1] for k in (1, 2, 4, 8)]
    changes = [(b - a).norm().item() for a, b in zip(final, final[1:])]
    assert changes[0] > changes[1] > changes[2]


def test_energy_parts_are_mean_and_sd_over_pairs_of_each_term():
    terms = torch.tensor([[[9.0, 9.0, 9.0], [9.0, 9.0, 9.0], [9.0, 9.0, 9.0]],  # t = 0
                          [[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [-1.0, -1.0, -4.0]]])  # t = T: (3 terms, 3 pairs)
    dyn = Dynamics(torch.zeros(2, 3, 2, 1, 2), terms.sum(1), torch.zeros(3, 2, 1, 2), terms)
    parts = energy_parts(dyn)
    assert parts.drive == pytest.approx((2.0, 1.0))
    assert parts.within == (0.0, 0.0)
    assert parts.between == pytest.approx((-2.0, math.sqrt(3)))
    assert energy_parts(dyn, t=0).drive == (9.0, 0.0)


def test_pair_dynamics_records_n_same_pairs_then_n_different_pairs():
    """With one image per icon (no random scale or position), a same pair is two identical images: both
    objects get the same drive and, from a shared start, stay exactly in phase; different pairs do not."""
    tasks = IconTasks(glyph_bank(None), 50, 0, Renderer(32, 1.0, 1.0, 1 - 2 / 32))
    model = small_model()
    n, T, D = 6, model.cfg.T, model.cfg.D
    dyn = pair_dynamics(model, tasks, "test", n, seed=0, dtype=torch.float64)
    for part in (dyn.same, dyn.different):
        assert part.states.shape == (T + 1, n, 2, D, 2) and part.states.dtype == torch.float64
        assert part.energies.shape == (T + 1, n) and part.c.shape == (n, 2, D, 2) and part.terms.shape == (T + 1, 3, n)
        torch.testing.assert_close(part.terms.sum(1), part.energies)
    torch.testing.assert_close(dyn.same.c[:, 0], dyn.same.c[:, 1])
    torch.testing.assert_close(dyn.same.states[:, :, 0], dyn.same.states[:, :, 1])
    assert (phase_gap(dyn.same.states[-1]) < 1e-3).all()
    assert ((dyn.different.c[:, 0] - dyn.different.c[:, 1]).abs().amax((1, 2)) > 1e-4).all()
    together = dyn.together()
    assert torch.equal(together.states[:, :n], dyn.same.states) and torch.equal(together.energies[:, n:], dyn.different.energies)
    assert torch.equal(together.terms[:, :, n:], dyn.different.terms) and torch.equal(together.c[:n], dyn.same.c)
    again = pair_dynamics(model, tasks, "test", n, seed=0, dtype=torch.float64)
    assert torch.equal(again.different.states, dyn.different.states)  # seeded: the same pairs and starts every call


def test_descent_with_a_tolerance_separates_rounding_from_increases():
    energies = torch.tensor([[1.0, 1.0], [0.5, 0.5 + 1e-15], [0.25, 0.5 + 2e-15]], dtype=torch.float64)
    strict, tolerant = descent(energies), descent(energies, rtol=1e-9)
    assert strict.share_non_increasing == 0.75 and strict.monotone_share == 0.5  # rounding counted as increases
    assert tolerant.share_non_increasing == 1.0 and tolerant.monotone_share == 1.0 and tolerant.rtol == 1e-9
    real = descent(torch.tensor([[1.0], [0.5], [0.6]], dtype=torch.float64), rtol=1e-9)
    assert real.monotone_share == 0.0  # a real increase is not forgiven


def test_partner_swap_cancels_what_each_image_brings_alone(smoke_run):
    """Every rendering appears once on each side in the same slot: with no coupling between the objects'
    oscillators and a shared start, a feature's drive term sees the same images on both sides."""
    from oscbind_lite.analysis import partner_swap, with_dynamics
    from oscbind_lite.data import IconTasks
    from oscbind_lite.train import build_same_different

    model = build_same_different(with_overrides(smoke_run, m=50))
    tasks = IconTasks.from_config(with_overrides(smoke_run, m=50).data)
    swap = partner_swap(model, tasks, "test", 6, seed=0)
    T = model.cfg.T
    assert swap.difference.shape == (T + 1, 6) and swap.terms.shape == (T + 1, 3, 6)
    torch.testing.assert_close(swap.terms.sum(1), swap.difference)
    torch.testing.assert_close(swap.same - swap.different, swap.difference)
    # at t = 0 the four pairs share one start state, so each rendering's drive term -c'x0 appears on both sides
    torch.testing.assert_close(swap.terms[0, 0], torch.zeros(6, dtype=torch.float64), atol=1e-9, rtol=0)
    # the independent-start copy keeps the weights and changes only the start rule
    other = with_dynamics(model, start="independent", T=3)
    assert other.cfg.start == "independent" and other.binding.cfg.T == 3 and model.cfg.start == "shared"


def test_lock_by_drive_angle_bins_features_by_how_much_their_drives_agree():
    from oscbind_lite.analysis import lock_by_drive_angle
    from oscbind_lite.model import Dynamics

    c = torch.tensor([[[[1.0, 0.0]], [[1.0, 0.0]]], [[[1.0, 0.0]], [[-1.0, 0.0]]]])  # (B=2, 2, D=1, N=2): 0 and 180 deg
    states = torch.stack([c, c])  # the oscillators end where their drives point
    dyn = Dynamics(states, torch.zeros(2, 2), c, torch.zeros(2, 3, 2))
    bins = lock_by_drive_angle(dyn, edges=(0, 90, 180))
    assert bins == [(0.0, 90.0, 1.0, 1), (90.0, 180.0, 0.0, 1)]


def test_the_released_energy_is_the_sum_of_x_times_the_sum_of_j_x_not_x_j_x():
    gen = torch.Generator().manual_seed(0)
    D, N = 3, 2
    x = core.normalize(torch.randn(4, 2, D, N, generator=gen))
    c = torch.randn(4, 2, D, N, generator=gen)
    J_in, J_out = torch.randn(D, N, D, N, generator=gen), torch.randn(D, N, D, N, generator=gen)
    want = torch.zeros(4)
    for b in range(4):  # the released code's einsum('bdn,ijkl,bjl->b', x, J, y), written out term by term
        for i, j in ((0, 0), (1, 1), (0, 1), (1, 0)):
            J = J_in if i == j else J_out
            Jy = torch.einsum("daeb,eb->da", J, x[b, j])
            want[b] += -0.5 * x[b, i].sum() * Jy.sum()
        want[b] -= (c[b] * x[b]).sum()
    torch.testing.assert_close(core.released_energy(x, c, J_in, J_out), want)
    assert not torch.allclose(core.released_energy(x, c, J_in, J_out), core.energy(x, c, J_in, J_out))


def test_two_energies_measure_both_quantities_on_the_same_trajectories(tasks):
    torch.manual_seed(0)
    model = SameDifferent(dataclasses.replace(smoke().model, symmetric=True, learn_omega=False)).eval()
    both = analysis.two_energies(model, tasks, "test", 8, seed=0)
    dyn = analysis.pair_dynamics(model, tasks, "test", 8, 0, dtype=torch.float64)
    assert both.poster.mean_same == pytest.approx(dyn.same.energies[-1].mean().item())
    assert len(both.curves["released"]["same"]) == model.cfg.T + 1 and both.released.n_same == 8


def test_angle_is_the_phase_gap_and_exact_at_zero():
    from oscbind_lite.analysis import angle, phase_gap

    gen = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(64, 2, 8, 3, generator=gen), dim=-1)
    assert torch.allclose(angle(x[:, 0], x[:, 1]), phase_gap(x), atol=1e-3)
    assert angle(x, x).abs().max().item() == 0.0
