"""The poster's equations: hand-computed steps, invariants, energy descent, and safe normalisation."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from oscbind_lite import coherence, energy, kuramoto_step
from oscbind_lite.core import couple, fused_coupling, integrate, integrate_final, normalize
from oscbind_lite.model import KuramotoBinding, ModelConfig



@pytest.fixture(autouse=True)
def float64():
    """Exact-arithmetic checks run in double precision (restored afterwards for the other test files)."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def random_state(B, D, N, gen):
    return normalize(torch.randn(B, 2, D, N, generator=gen))


def symmetric(J):
    D, N = J.shape[:2]
    flat = J.reshape(D * N, D * N)
    return (0.5 * (flat + flat.T)).view(D, N, D, N)


def test_kuramoto_step_matches_hand_computation():
    # D = 1, N = 2: x1 = (1, 0), x2 = (0, 1); c1 = (0, 2), c2 = 0; Omega = [[0, -w], [w, 0]];
    # J_IN = [[.3, .7], [-.4, .1]] and J_OUT = [[.2, -.6], [.5, .9]] (asymmetric, so a transposed block
    # or a swapped object gives other numbers). By hand:
    #   object 1: Omega x1 = (0, w); field = c1 + J_IN x1 + J_OUT x2 = (.3 - .6, 2 - .4 + .9);
    #             Proj_x1 keeps (0, 2.5): x1' = normalize((1, gamma (w + 2.5)))
    #   object 2: Omega x2 = (-w, 0); field = J_IN x2 + J_OUT x1 = (.7 + .2, .1 + .5);
    #             Proj_x2 keeps (0.9, 0): x2' = normalize((gamma (0.9 - w), 1))
    w, gamma = 0.5, 0.1
    x = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])
    c = torch.tensor([[[[0.0, 2.0]], [[0.0, 0.0]]]])
    omega = torch.tensor([[[0.0, -w], [w, 0.0]]])
    J_in = torch.tensor([[0.3, 0.7], [-0.4, 0.1]]).view(1, 2, 1, 2)
    J_out = torch.tensor([[0.2, -0.6], [0.5, 0.9]]).view(1, 2, 1, 2)
    out = kuramoto_step(x, c, omega, J_in, J_out, gamma)
    v1 = torch.tensor([1.0, gamma * (w + 2.5)])
    v2 = torch.tensor([gamma * (0.9 - w), 1.0])
    torch.testing.assert_close(out[0, 0, 0], v1 / v1.norm())
    torch.testing.assert_close(out[0, 1, 0], v2 / v2.norm())
    assert math.isclose(out[0, 0, 0, 1].item(), 0.3 / math.sqrt(1 + 0.3**2), rel_tol=1e-12)


def test_coupling_layout_feature_e_drives_feature_d():
    # J[d, a, e, b] couples component b of feature e into component a of feature d,
    # i.e. entry [d*N + a, e*N + b] of the flattened matrix.
    D, N = 3, 2
    J = torch.zeros(D, N, D, N)
    J[0, 1, 2, 0] = 1.0
    x = torch.zeros(1, 2, D, N)
    x[0, 0, 2, 0] = 5.0
    out = couple(J, x)
    assert out[0, 0, 0, 1] == 5.0 and out.abs().sum() == 5.0
    assert J.reshape(D * N, D * N)[0 * N + 1, 2 * N + 0] == 1.0


def test_between_object_coupling_reads_the_other_object():
    D, N = 2, 2
    J_out = torch.eye(D * N).view(D, N, D, N)
    x = torch.zeros(1, 2, D, N)
    x[0, 1] = torch.tensor([[0.0, 1.0], [1.0, 0.0]])  # object 2 only
    field_1 = couple(J_out, x.flip(1))[0, 0]  # what object 1 feels through J_OUT
    torch.testing.assert_close(field_1, x[0, 1])


@given(seed=st.integers(0, 10_000), D=st.integers(1, 6), N=st.integers(2, 5), gamma=st.floats(0.01, 2.0))
@settings(max_examples=60, deadline=None)
def test_step_keeps_every_oscillator_on_the_sphere(seed, D, N, gamma):
    g = torch.Generator().manual_seed(seed)
    x, c = random_state(3, D, N, g), torch.randn(3, 2, D, N, generator=g)
    A = torch.randn(D, N, N, generator=g)
    out = kuramoto_step(x, c, A - A.transpose(1, 2), torch.randn(D, N, D, N, generator=g),
                        torch.randn(D, N, D, N, generator=g), gamma)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(3, 2, D))


def test_energy_matches_its_formula_written_with_flat_matrices():
    g = torch.Generator().manual_seed(0)
    B, D, N = 4, 3, 2
    x, c = random_state(B, D, N, g), torch.randn(B, 2, D, N, generator=g)
    J_in, J_out = torch.randn(D, N, D, N, generator=g), torch.randn(D, N, D, N, generator=g)
    Ji, Jo = J_in.reshape(D * N, -1), J_out.reshape(D * N, -1)
    x1, x2, c1, c2 = x[:, 0].reshape(B, -1), x[:, 1].reshape(B, -1), c[:, 0].reshape(B, -1), c[:, 1].reshape(B, -1)
    quad = lambda u, M, v: torch.einsum("bi,ij,bj->b", u, M, v)  # noqa: E731
    expected = -0.5 * (quad(x1, Ji, x1) + quad(x2, Ji, x2) + quad(x1, Jo, x2) + quad(x2, Jo, x1)) \
        - ((c1 * x1).sum(1) + (c2 * x2).sum(1))
    torch.testing.assert_close(energy(x, c, J_in, J_out), expected)


@given(seed=st.integers(0, 100_000), D=st.integers(1, 8), N=st.integers(2, 4), B=st.integers(1, 4),
       coupling=st.floats(0.0, 2.0), drive=st.floats(0.0, 3.0))
@settings(max_examples=150, deadline=None)
def test_energy_never_increases_with_symmetric_J_and_no_omega(seed, D, N, B, coupling, drive):
    """Lyapunov: symmetric J_IN, J_OUT, Omega = 0, gamma below 1 / (Lipschitz constant of the field)."""
    g = torch.Generator().manual_seed(seed)
    J_in = symmetric(coupling * torch.randn(D, N, D, N, generator=g) / math.sqrt(D * N))
    J_out = symmetric(coupling * torch.randn(D, N, D, N, generator=g) / math.sqrt(D * N))
    c = drive * torch.randn(B, 2, D, N, generator=g)
    big = torch.linalg.matrix_norm(fused_coupling(torch.zeros(D, N, N), J_in, J_out), ord=2)
    gamma = 0.5 / (big.item() + c.norm(dim=-1).max().item() + 1e-3)
    states = integrate(random_state(B, D, N, g), c, torch.zeros(D, N, N), J_in, J_out, gamma, 60)
    E = torch.stack([energy(s, c, J_in, J_out) for s in states])  # (T+1, B)
    assert (E[1:] - E[:-1]).max() <= 1e-10


@given(seed=st.integers(0, 10_000), D=st.integers(1, 6), N=st.integers(2, 5))
@settings(max_examples=40, deadline=None)
def test_coherence_is_in_0_2(seed, D, N):
    x = random_state(5, D, N, torch.Generator().manual_seed(seed))
    rho = coherence(x)
    assert rho.shape == (5, D) and rho.min() >= 0 and rho.max() <= 2 + 1e-12


def test_coherence_is_2_for_identical_and_0_for_antipodal_states_with_finite_gradients():
    x = random_state(4, 3, 2, torch.Generator().manual_seed(1))
    same = x[:, :1].expand(4, 2, 3, 2).clone()
    torch.testing.assert_close(coherence(same), torch.full((4, 3), 2.0))
    opposite = torch.stack([x[:, 0], -x[:, 0]], 1).requires_grad_(True)
    rho = coherence(opposite)
    assert rho.max() < 1e-6
    rho.sum().backward()
    assert torch.isfinite(opposite.grad).all()


def test_no_nan_when_drive_is_zero_or_states_are_antipodal():
    D, N = 4, 2
    x = random_state(2, D, N, torch.Generator().manual_seed(2))
    x = torch.stack([x[:, 0], -x[:, 0]], 1).requires_grad_(True)  # antipodal pair
    c = torch.zeros(2, 2, D, N, requires_grad=True)
    J = torch.eye(D * N).view(D, N, D, N)
    out = kuramoto_step(x, c, torch.zeros(D, N, N), J, J, 0.5)
    (coherence(out).sum() + energy(out, c, J, J).sum()).backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all() and torch.isfinite(c.grad).all()
    assert torch.equal(normalize(torch.zeros(3, 2)), torch.zeros(3, 2))


@pytest.mark.parametrize("N", [2, 3])
def test_fused_integration_equals_repeated_kuramoto_step(N):
    g = torch.Generator().manual_seed(3)
    D, B = 5, 4
    x0, c = random_state(B, D, N, g), torch.randn(B, 2, D, N, generator=g)
    A = torch.randn(D, N, N, generator=g)
    omega, J_in, J_out = A - A.transpose(1, 2), torch.randn(D, N, D, N, generator=g), torch.randn(D, N, D, N, generator=g)
    states = integrate(x0, c, omega, J_in, J_out, 0.3, 25)
    x = x0
    for t in range(25):
        x = kuramoto_step(x, c, omega, J_in, J_out, 0.3)
        torch.testing.assert_close(states[t + 1], x, rtol=1e-10, atol=1e-10)


def test_module_records_trajectory_and_energy_and_same_inputs_stay_in_phase():
    torch.manual_seed(0)
    layer = KuramotoBinding(ModelConfig(D=6, N=2, T=25, start="shared")).double()
    E = torch.randn(3, 1, 6).expand(3, 2, 6)  # identical encodings for both objects
    run = layer.trajectory(E, torch.Generator().manual_seed(0))
    assert run.states.shape == (26, 3, 2, 6, 2) and run.energies.shape == (26, 3)
    torch.testing.assert_close(coherence(run.states[-1]), torch.full((3, 6), 2.0))
    torch.testing.assert_close(layer(E, torch.Generator().manual_seed(0)), run.states[-1])


def test_symmetric_module_without_omega_descends_in_energy():
    torch.manual_seed(1)
    layer = KuramotoBinding(ModelConfig(D=8, N=2, T=25, gamma=0.05, symmetric=True, omega=False)).double()
    run = layer.trajectory(torch.randn(16, 2, 8), torch.Generator().manual_seed(1))
    assert (run.energies[1:] - run.energies[:-1]).max() <= 1e-10


def test_independent_start_draws_separate_points_for_the_two_objects():
    layer = KuramotoBinding(ModelConfig(D=4, start="independent"))
    x0 = layer.initial_state(8, torch.Generator().manual_seed(0))
    assert not torch.allclose(x0[:, 0], x0[:, 1])
    shared = KuramotoBinding(ModelConfig(D=4, start="shared")).initial_state(8, torch.Generator().manual_seed(0))
    assert torch.equal(shared[:, 0], shared[:, 1])


def test_hand_written_backward_matches_autograd_through_the_steps():
    """integrate_final (used for training) has the value and every gradient of autograd through integrate."""
    g = torch.Generator().manual_seed(4)
    B, D, N, T = 3, 4, 3, 7
    x0 = normalize(torch.randn(B, 2, D, N, generator=g)).requires_grad_(True)
    c = torch.randn(B, 2, D, N, generator=g, requires_grad=True)
    A = torch.randn(D, N, N, generator=g)
    omega = (A - A.transpose(1, 2)).requires_grad_(True)
    J_in = torch.randn(D, N, D, N, generator=g, requires_grad=True)
    J_out = torch.randn(D, N, D, N, generator=g, requires_grad=True)
    inputs = (x0, c, omega, J_in, J_out)
    assert torch.autograd.gradcheck(lambda *a: integrate_final(*a, 0.3, T), inputs)
    weights = torch.randn(B, 2, D, N, generator=g)
    ref = torch.autograd.grad((integrate(*inputs, 0.3, T)[-1] * weights).sum(), inputs)
    fast = torch.autograd.grad((integrate_final(*inputs, 0.3, T) * weights).sum(), inputs)
    for a, b in zip(ref, fast):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
