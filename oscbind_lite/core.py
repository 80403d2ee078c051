"""The poster's equations as pure functions of tensors (no parameters, no state).

Shapes used throughout:

* ``x``, ``c``: ``(B, 2, D, N)``: batch, object i in {1, 2}, feature d, sphere coordinate.
  Every ``x[b, i, d]`` is a unit vector on S^{N-1}.
* ``omega``: ``(D, N, N)``, one skew-symmetric natural-frequency matrix per feature.
* ``J_in``, ``J_out``: ``(D, N, D, N)``; ``J[d, :, e, :]`` is the N x N block through which
  feature e drives feature d. Flattened to a ``(D*N, D*N)`` matrix, entry
  ``[d*N + a, e*N + b]`` is ``J[d, a, e, b]``.

The dynamics (for object i, feature d; 3 - i is the other object)::

    dx_{i,d}/dt = Omega_d x_{i,d}
                  + Proj_{x_{i,d}}( c_{i,d} + sum_e J_IN[d,e] x_{i,e} + sum_e J_OUT[d,e] x_{3-i,e} )
    Proj_x(y)   = y - <y, x> x
    x          <- normalize(x + gamma * dx/dt)          (explicit Euler, back onto the sphere)

``kuramoto_step`` writes this out term by term. ``integrate`` runs T steps with the same
arithmetic rearranged into one matrix product per step (see ``fused_coupling``); the tests
check that the two agree.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

EPS = 1e-12  # floor under norms: keeps normalize and coherence finite (and their gradients) at 0


def normalize(x: Tensor) -> Tensor:
    """Scale each vector along the last axis to unit length; a zero vector stays zero, never NaN."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(EPS)


def tangent_projection(x: Tensor, y: Tensor) -> Tensor:
    """Proj_x(y) = y - <y, x> x: the part of y tangent to the unit sphere at x."""
    return y - (y * x).sum(-1, keepdim=True) * x


def couple(J: Tensor, x: Tensor) -> Tensor:
    """sum_e J[d, e] x_e for every object: ``(D, N, D, N) x (B, 2, D, N) -> (B, 2, D, N)``."""
    return torch.einsum("daeb,xieb->xida", J, x)


def natural_rotation(omega: Tensor, x: Tensor) -> Tensor:
    """Omega_d x_{i,d} for every object and feature: ``(D, N, N) x (B, 2, D, N) -> (B, 2, D, N)``."""
    return torch.einsum("dab,xidb->xida", omega, x)


def kuramoto_step(x: Tensor, c: Tensor, omega: Tensor, J_in: Tensor, J_out: Tensor, gamma: float) -> Tensor:
    """One Euler step of the coupled oscillators, then back onto the sphere.

    x_{i,d} <- normalize( x_{i,d} + gamma * [ Omega_d x_{i,d}
                 + Proj_{x_{i,d}}( c_{i,d} + sum_e J_IN[d,e] x_{i,e} + sum_e J_OUT[d,e] x_{3-i,e} ) ] )
    """
    within = couple(J_in, x)  # sum_e J_IN[d,e] x_{i,e}
    between = couple(J_out, x.flip(1))  # sum_e J_OUT[d,e] x_{3-i,e}: flip swaps objects 1 and 2
    dx = natural_rotation(omega, x) + tangent_projection(x, c + within + between)
    return normalize(x + gamma * dx)


def energy(x: Tensor, c: Tensor, J_in: Tensor, J_out: Tensor) -> Tensor:
    """E = -1/2 (x1' J_IN x1 + x2' J_IN x2 + x1' J_OUT x2 + x2' J_OUT x1) - (c1' x1 + c2' x2), shape (B,).

    A Lyapunov function of the dynamics when J_IN and J_OUT are symmetric (as (D*N, D*N)
    matrices), Omega = 0 and gamma is small: each step then moves x along the projected
    negative gradient of E.
    """
    return sum(energy_terms(x, c, J_in, J_out))


def energy_terms(x: Tensor, c: Tensor, J_in: Tensor, J_out: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The three parts of E, each ``(B,)``: drive -(c1'x1 + c2'x2), within -1/2 (x1'J_IN x1 + x2'J_IN x2),
    between -1/2 (x1'J_OUT x2 + x2'J_OUT x1). The drive term depends on each object alone; only the
    coupling terms see both objects together."""
    drive = -(c * x).sum((1, 2, 3))
    within = -0.5 * (x * couple(J_in, x)).sum((1, 2, 3))
    between = -0.5 * (x * couple(J_out, x.flip(1))).sum((1, 2, 3))  # flip: object i meets object 3 - i
    return drive, within, between


def released_energy(x: Tensor, c: Tensor, J_in: Tensor, J_out: Tensor) -> Tensor:
    """The quantity the authors' released code plots as the energy, shape (B,); not E.

    ``calculate_energy`` in ``models/kuramoto.py`` of ``Elder453/osc-network`` computes each coupling term
    as ``einsum('bdn,ijkl,bjl->b', x, J, y)``. The indices of x occur in no other operand, so x is summed
    on its own and the term factorises into S(x) S(J y), S = the sum of all D x N components, not x'J y:

        -1/2 [S(x1) S(J_IN x1) + S(x2) S(J_IN x2) + S(x1) S(J_OUT x2) + S(x2) S(J_OUT x1)] - (c1'x1 + c2'x2).

    The drive term is E's. Written here only to measure what that code's energy figures show.
    """
    total = lambda t: t.sum((-2, -1))  # noqa: E731  S: every component of one object's state, (B,)
    within, between = couple(J_in, x), couple(J_out, x.flip(1))
    quadratic = sum(total(x[:, i]) * (total(within[:, i]) + total(between[:, i])) for i in (0, 1))
    return -0.5 * quadratic - (c * x).sum((1, 2, 3))


def coherence(x: Tensor) -> Tensor:
    """rho_d = || x_{1,d} + x_{2,d} ||_2 in [0, 2], shape (B, D): 2 when the pair is in phase, 0 when antipodal.
    Leading axes pass through: states ``(k, B, 2, D, N)`` give ``(k, B, D)``."""
    s = x[..., 0, :, :] + x[..., 1, :, :]
    return (s * s).sum(-1).clamp_min(EPS * EPS).sqrt()


def fused_coupling(omega: Tensor, J_in: Tensor, J_out: Tensor) -> Tensor:
    """One ``(2DN, 2DN)`` matrix M with ``x.flatten(1) @ M.T`` = Omega x + J_IN x_i + J_OUT x_{3-i}.

    Because Omega_d is skew-symmetric, <Omega_d x, x> = 0, so Proj_x(Omega_d x) = Omega_d x and the
    natural rotation can ride inside the projected field: dx = Proj_x(c + (Omega + J) x).
    Layout: M = [[Omega + J_IN, J_OUT], [J_OUT, Omega + J_IN]], with Omega block-diagonal. omega must be
    skew-symmetric (KuramotoBinding builds it as A - A', which is exactly skew in floating point); any
    other omega would make the fused path differ from ``kuramoto_step``, so it is refused.
    """
    if not torch.equal(omega, -omega.transpose(1, 2)):
        raise ValueError("omega: must be skew-symmetric (omega[d] = -omega[d].T) for the fused update")
    D, N = omega.shape[:2]
    own = J_in.reshape(D * N, D * N) + torch.block_diag(*omega)
    other = J_out.reshape(D * N, D * N)
    return torch.cat([torch.cat([own, other], 1), torch.cat([other, own], 1)], 0)


def integrate(x0: Tensor, c: Tensor, omega: Tensor, J_in: Tensor, J_out: Tensor, gamma: float,
              T: int) -> list[Tensor]:
    """Run T applications of ``kuramoto_step`` from x0; returns all T + 1 states x(0), ..., x(T).

    Same arithmetic as repeated ``kuramoto_step`` (up to float rounding), with the three
    couplings fused into one matrix product per step and c flattened once.
    """
    shape = x0.shape
    M_t = fused_coupling(omega, J_in, J_out).t()
    c_flat = c.reshape(shape[0], -1)
    x = x0
    states = [x0]
    for _ in range(T):
        h = (c_flat + x.reshape(shape[0], -1) @ M_t).view(shape)
        x = normalize(x + gamma * tangent_projection(x, h))
        states.append(x)
    return states


def _rowdot(a: Tensor, b: Tensor, ones: Tensor) -> Tensor:
    """<a_k, b_k> over the last axis of ``(B, K, N)`` tensors, as ``(B, K, 1)``.

    In plain PyTorch the products are summed by a matrix-vector product with N ones: the same sum of N
    products as ``(a * b).sum(-1, keepdim=True)`` (bit for bit at N = 2), in a third of its time on a CPU.
    Under torch.compile the reduction is kept, since the compiler fuses it into the step's other
    elementwise work, where a matrix product would be a separate library call."""
    if torch.compiler.is_compiling():
        return (a * b).sum(-1, keepdim=True)
    B, K, N = a.shape
    return torch.mm((a * b).view(B * K, N), ones).view(B, K, 1)


def _forward_loop(x0: Tensor, gc: Tensor, gM_t: Tensor, T: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """T fused steps on ``(B, K, N)`` states (K = 2D oscillators), with gamma folded into c and M:
    gc = gamma c (flattened), gM_t = (gamma M)'. Returns x_0..x_T and each step's g, sigma, |y| (stacked),
    what the backward pass needs."""
    B, K, N = x0.shape
    ones = x0.new_ones(N, 1)
    xs, gs, sigmas, rs = [x0], [], [], []
    for _ in range(T):
        x = xs[-1]
        g = torch.addmm(gc, x.reshape(B, K * N), gM_t).view(B, K, N)  # gamma h = gamma (c + M x)
        sigma = _rowdot(g, x, ones)  # gamma <h, x>
        y = (x + g).addcmul_(sigma, x, value=-1.0)  # x + gamma Proj_x(h)
        r = torch.linalg.vector_norm(y, dim=-1, keepdim=True).clamp_min_(EPS)
        xs.append(y / r), gs.append(g), sigmas.append(sigma), rs.append(r)
    return torch.stack(xs), torch.stack(gs), torch.stack(sigmas), torch.stack(rs)


def _backward_loop(grads: Tensor, xs: Tensor, gs: Tensor, sigmas: Tensor, rs: Tensor,
                   gM: Tensor) -> tuple[Tensor, Tensor]:
    """The steps of ``_forward_loop`` in reverse: (dL/dx_0, dL/dg_t for every step) from dL/dx_t of the last
    k states, ``grads`` ``(k, B, K, N)`` for x_{T-k+1}, ..., x_T (k = 1: from dL/dx_T alone)."""
    T, k = gs.shape[0], grads.shape[0]
    B, K, N = grads.shape[1:]
    ones = grads.new_ones(N, 1)
    grad, ggs = grads[-1], []
    for t in range(T - 1, -1, -1):
        x, x_next, g = xs[t], xs[t + 1], gs[t]
        gy = grad.addcmul(_rowdot(grad, x_next, ones), x_next, value=-1.0).div_(rs[t])  # x' = y / |y|
        a = _rowdot(gy, x, ones)  # <g_y, x> = -dL/dsigma
        gg = gy.addcmul(a, x, value=-1.0)  # dL/dg: directly, and through sigma = <g, x>
        gx = gy.addcmul(sigmas[t], gy, value=-1.0).addcmul_(a, g, value=-1.0)  # (1 - sigma) g_y - <g_y, x> g
        grad = torch.addmm(gx.view(B, K * N), gg.view(B, K * N), gM).view(B, K, N)  # + (gamma M)' dL/dg
        if t > T - k:  # x_t is itself one of the states read: its own gradient joins
            grad = grad + grads[t - (T - k) - 1]
        ggs.append(gg)
    return grad, torch.stack(ggs[::-1])


def compile_enabled() -> bool:
    """Whether training runs the step loops through torch.compile: ``OSCBIND_COMPILE=1`` (read at each call).

    Same arithmetic, other float rounding: the cache key and every run record include this flag.
    Needs a C++ compiler; the first call per batch shape compiles for about a minute (Inductor keeps
    the result in its on-disk cache for later processes).
    """
    return os.environ.get("OSCBIND_COMPILE", "") == "1"


_compiled: dict = {}


def _kernels():
    """The forward and backward loops, compiled whole (T steps unrolled) when ``compile_enabled()``."""
    if not compile_enabled():
        return _forward_loop, _backward_loop
    if not _compiled:
        _compiled["forward"] = torch.compile(_forward_loop, dynamic=False)
        _compiled["backward"] = torch.compile(_backward_loop, dynamic=False)
    return _compiled["forward"], _compiled["backward"]


class _LastStates(torch.autograd.Function):
    """The last k states x(T-k+1), ..., x(T) of ``integrate``, stacked, with a hand-written backward pass
    through the T steps.

    The state is ``(B, K, N)`` with K = 2D oscillators (object 1's D features, then object 2's), and
    M is the ``(KN, KN)`` matrix of ``fused_coupling``. One step, per oscillator k, with gamma folded in::

        g = gamma (c + M x)   (all oscillators, flattened),   sigma_k = <g_k, x_k>,
        y_k = x_k + g_k - sigma_k x_k   (= x_k + gamma Proj_{x_k}(h_k)),   r_k = |y_k|,   x'_k = y_k / r_k.

    Forward runs the T steps without an autograd graph and keeps x_t, g_t, sigma_t and r_t. Backward
    takes G = dL/dx' and walks the steps in reverse with the vector-Jacobian products, term by term
    (adding each read state's own dL/dx_t as the walk reaches it):

        x' = y / r:          g_y = (G - <G, x'> x') / r              (the normalisation's Jacobian)
        y = x + g - sigma x, sigma = <g, x>:
                             dL/dg = g_y - <g_y, x> x,   dL/dx = (1 - sigma) g_y - <g_y, x> g
        g = gamma (c + M x): dL/dx += gamma M' dL/dg,   dL/dc += gamma dL/dg,   dL/dM += gamma dL/dg x'

    ``_backward_loop`` computes dL/dg of every step and dL/dx_0; dL/dc and dL/dM are summed over the
    steps at the end, dL/dM as one matrix product over all steps and the batch.
    """

    @staticmethod
    def forward(ctx, x0: Tensor, c: Tensor, M: Tensor, gamma: float, T: int, k: int) -> Tensor:
        forward_loop, _ = _kernels()
        B, K, N = x0.shape
        gM = gamma * M
        xs, gs, sigmas, rs = forward_loop(x0, gamma * c.reshape(B, K * N), gM.t().contiguous(), T)
        ctx.gamma = gamma
        ctx.save_for_backward(gM, xs, gs, sigmas, rs)
        return xs[T + 1 - k:]

    @staticmethod
    def backward(ctx, grad: Tensor):
        _, backward_loop = _kernels()
        gM, xs, gs, sigmas, rs = ctx.saved_tensors
        K, N = grad.shape[2:]
        grad, ggs = backward_loop(grad.contiguous(), xs, gs, sigmas, rs, gM)
        grad_c = ctx.gamma * ggs.sum(0)
        grad_M = ctx.gamma * (ggs.reshape(-1, K * N).t() @ xs[:-1].reshape(-1, K * N))
        return grad, grad_c, grad_M, None, None, None


def integrate_last(x0: Tensor, c: Tensor, omega: Tensor, J_in: Tensor, J_out: Tensor, gamma: float,
                   T: int, k: int = 1) -> Tensor:
    """``torch.stack(integrate(...)[-k:])``, the last k states x(T-k+1), ..., x(T), ``(k, B, 2, D, N)``, with a
    faster hand-written backward.

    Used for training, where only these states are read (k = 1: x(T), the poster's readout); the tests
    check its value and gradients against autograd through ``integrate``. With ``OSCBIND_COMPILE=1`` its
    step kernels go through torch.compile, whole (same arithmetic; see the benchmarks for the gain).
    Under mixed precision (``torch.autocast``) the oscillators still run in float32: half-precision
    inputs are cast up and autocast is off inside, so only the CNN and the heads run in the lower precision.
    """
    if not 1 <= k <= T:
        raise ValueError(f"k: between 1 and T = {T} (got {k})")
    up = lambda t: t.float() if t.dtype in (torch.float16, torch.bfloat16) else t  # noqa: E731
    with torch.autocast(x0.device.type, enabled=False):
        x0, c = up(x0), up(c)
        if not torch.is_grad_enabled():  # evaluation: nothing to keep for a backward pass
            return torch.stack(integrate(x0, c, omega, J_in, J_out, gamma, T)[T + 1 - k:])
        B, _, D, N = x0.shape
        M = fused_coupling(omega, J_in, J_out)
        xs = _LastStates.apply(x0.reshape(B, 2 * D, N).contiguous(), c.reshape(B, 2 * D, N).contiguous(),
                               M, gamma, T, k)
        return xs.view(k, B, 2, D, N)

