"""Networks: the CNN encoder, the Kuramoto binding layer, and the two task models built on them.

    image pair --CNN f--> z_1, z_2 in R^D --c = W z + b--> oscillators x_{1,d}, x_{2,d} on S^{N-1}
               --T Kuramoto steps--> coherence rho_d = ||x_{1,d}(T) + x_{2,d}(T)|| --MLP--> same?

The poster writes the encodings E_i; here they are ``z`` so that ``E`` always means the energy.
The RMTS model reuses a trained same/different model frozen, and reads only the three
coherence vectors (source pair, target 0, target 1).
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import Tensor, nn

from . import core
from .bottlenecks import BASELINES, readout
from .config import ModelConfig

class Encoder(nn.Module):
    """CNN f: ``(B, 1, H, W) -> (B, D)``: conv-maxpool-BN-ReLU blocks, global average pool, linear map.

    Max pooling and the global average make the features largely blind to where the glyph sits;
    invariance to its scale is learned. Pooling before BatchNorm and ReLU runs them on a quarter of
    the values: 1.3x faster forward+backward than conv-BN-ReLU-pool here, with the same held-out
    accuracy at m = 50 (96.6 % vs 96.4 %, one seed). Strided convolutions instead of pooling were
    faster still but learned same/different much more slowly.
    """

    def __init__(self, channels: tuple[int, ...], D: int):
        super().__init__()
        layers, c_in = [], 1
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(c), nn.ReLU()]
            c_in = c
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out = nn.Linear(c_in, D)
        self.to(memory_format=torch.channels_last)  # NHWC convolutions: about 1.6x faster on CPU here

    def forward(self, images: Tensor) -> Tensor:
        return self.out(self.features(images.contiguous(memory_format=torch.channels_last)))


class StridedEncoder(nn.Module):
    """The authors' CNN f: ``(B, 1, 32, 32) -> (B, D)``: two 5x5 stride-2 convolutions (16 and 32 channels) with
    ReLU, no pooling and no normalisation, then a linear map of the flattened 32 x 8 x 8 features (Kaiming init)."""

    def __init__(self, D: int, image_size: int = 32):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 5, stride=2, padding=2), nn.ReLU(),
                                      nn.Conv2d(16, 32, 5, stride=2, padding=2), nn.ReLU(), nn.Flatten())
        self.out = nn.Linear(32 * math.ceil(image_size / 4) ** 2, D)
        for conv in (self.features[0], self.features[2]):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        nn.init.kaiming_uniform_(self.out.weight, nonlinearity="relu")
        nn.init.zeros_(self.out.bias)

    def forward(self, images: Tensor) -> Tensor:
        return self.out(self.features(images))


class Dynamics(NamedTuple):
    """A recorded run of the oscillators, for figures and measurements."""

    states: Tensor  # (T+1, B, 2, D, N): x(0), ..., x(T)
    energies: Tensor  # (T+1, B): E at each state
    c: Tensor  # (B, 2, D, N): the drives
    terms: Tensor  # (T+1, 3, B): E split into drive, within-object (J_IN) and between-object (J_OUT) terms


class KuramotoBinding(nn.Module):
    """Learnable parameters of the oscillators (W, b, Omega, J_IN, J_OUT) and the T-step run."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        D, N = cfg.D, cfg.N
        self.cfg = cfg
        if cfg.init == "xavier":  # the authors' code: Xavier-uniform W and J (fans of a D x D x N x N tensor), b = 0
            bound = math.sqrt(6 / (2 * D * N * N))
            coupling = lambda: (2 * torch.rand(D, N, D, N) - 1) * bound  # noqa: E731
            self.W = nn.Parameter((2 * torch.rand(D, N) - 1) * math.sqrt(6 / (D + N)))
            self.b = nn.Parameter(torch.zeros(D, N))
        else:
            scale = 0.1 / math.sqrt(D * N)
            coupling = lambda: scale * torch.randn(D, N, D, N)  # noqa: E731
            self.W = nn.Parameter(torch.randn(D, N))
            self.b = nn.Parameter(torch.randn(D, N))
        self.J_in_raw = nn.Parameter(coupling()) if cfg.learn_j_in else None
        self.J_out_raw = nn.Parameter(coupling()) if cfg.learn_j_out else None
        self.omega_raw = nn.Parameter(0.1 * torch.randn(D, N, N)) if cfg.learn_omega else None
        if cfg.fixed_omega:  # a buffer: saved with the weights, never trained
            w = torch.distributions.VonMises(torch.tensor(0.0), torch.tensor(2.0)).sample((D,))
            rotation = torch.zeros(D, N, N)
            rotation[:, 0, 1], rotation[:, 1, 0] = w, -w  # rotation in the plane of the first two components
            self.register_buffer("omega_fixed", rotation)
        else:
            self.omega_fixed = None

    def couplings(self) -> tuple[Tensor, Tensor, Tensor]:
        """(Omega, J_IN, J_OUT) as the core functions take them, constraints applied."""
        D, N = self.cfg.D, self.cfg.N

        def sym(J):
            if not self.cfg.symmetric:
                return J
            flat = J.reshape(D * N, D * N)
            return (0.5 * (flat + flat.t())).view(D, N, D, N)

        zero = self.W.new_zeros(D, N, D, N)
        J_in = sym(self.J_in_raw) if self.J_in_raw is not None else zero
        J_out = sym(self.J_out_raw) if self.J_out_raw is not None else zero
        if self.omega_raw is not None:
            omega = self.omega_raw - self.omega_raw.transpose(1, 2)
        elif self.omega_fixed is not None:
            omega = self.omega_fixed
        else:
            omega = self.W.new_zeros(D, N, N)
        return omega, J_in, J_out

    def drive(self, z: Tensor) -> Tensor:
        """c_{i,d} = W_d z_i[d] + b_d: encodings ``(B, 2, D) -> (B, 2, D, N)``."""
        return z[..., None] * self.W + self.b

    def initial_state(self, batch: int, gen: torch.Generator | None = None, device=None,
                      c: Tensor | None = None) -> Tensor:
        """Uniform random points on S^{N-1}, ``(B, 2, D, N)``; shared across the two objects if cfg.start == "shared";
        with cfg.start == "drive", each oscillator's own drive c (given) plus Gaussian noise of SD 0.01, normalised.

        Drawn on the CPU from ``gen`` so a seed gives the same start on every device.
        """
        D, N = self.cfg.D, self.cfg.N
        if self.cfg.start == "drive":
            if c is None:
                raise ValueError("start: drive needs the drives c to start from")
            noise = torch.randn(c.shape, generator=gen).to(c)
            return core.normalize(c + 0.01 * noise)
        objects = 1 if self.cfg.start == "shared" else 2
        x0 = core.normalize(torch.randn(batch, objects, D, N, generator=gen))
        return x0.expand(batch, 2, D, N).to(device=device or self.W.device, dtype=self.W.dtype)

    @property
    def steps(self) -> int:
        """Steps of a run: T in training, T_eval (when set) in eval mode."""
        return self.cfg.T_eval if self.cfg.T_eval and not self.training else self.cfg.T

    def forward(self, z: Tensor, gen: torch.Generator | None = None) -> Tensor:
        """Final states x(steps), ``(B, 2, D, N)``, from encodings z ``(B, 2, D)``."""
        return self.last_states(z, gen, 1)[0]

    def last_states(self, z: Tensor, gen: torch.Generator | None = None, k: int = 1) -> Tensor:
        """The last k states x(steps - k + 1), ..., x(steps), ``(k, B, 2, D, N)``, from encodings z ``(B, 2, D)``."""
        omega, J_in, J_out = self.couplings()
        c = self.drive(z)
        x0 = self.initial_state(len(z), gen, z.device, c)
        return core.integrate_last(x0, c, omega, J_in, J_out, self.cfg.gamma, self.steps, k)

    @torch.no_grad()
    def trajectory(self, z: Tensor, gen: torch.Generator | None = None, x0: Tensor | None = None) -> Dynamics:
        """Every state x(0..T) and the energy at each, for figures and checks (x0: a given start, else drawn)."""
        omega, J_in, J_out = self.couplings()
        c = self.drive(z)
        start = self.initial_state(len(z), gen, z.device, c) if x0 is None else x0.to(c)
        states = torch.stack(core.integrate(start, c, omega, J_in, J_out, self.cfg.gamma, self.cfg.T))
        terms = torch.stack([torch.stack(core.energy_terms(x, c, J_in, J_out)) for x in states])
        return Dynamics(states, terms.sum(1), c, terms)


class ContextNorm(nn.Module):
    """Temporal context normalisation (TCN; Webb, Sinha and Cohen 2021) over the two objects of a pair, per feature d:

        z_i[d] <- g_d (z_i[d] - mu_d) / sqrt(s_d^2 + eps) + b_d,   mu_d = (z_1[d] + z_2[d]) / 2,
        s_d^2 = ((z_1[d] - z_2[d]) / 2)^2

    with a learned gain g and bias b. A same pair with identical encodings gets identical normalised ones (b); swapping
    the objects swaps them; each feature then says only how the two objects differ in it, relative to EPS. Renderings
    of one icon never encode identically, so eps is not tiny: with eps near 0 every difference, however small, would
    become +-1 and a same pair would look as different as any other.
    """

    EPS = 1e-2

    def __init__(self, D: int):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(D))
        self.bias = nn.Parameter(torch.zeros(D))

    def forward(self, z: Tensor) -> Tensor:
        """``(B, 2, D) -> (B, 2, D)``."""
        mu = z.mean(1, keepdim=True)
        var = (z - mu).pow(2).mean(1, keepdim=True)
        return (z - mu) / (var + self.EPS).sqrt() * self.gain + self.bias


def vote(logits: Callable[[], Tensor], draws: int) -> Tensor:
    """logits() itself for one draw; else the mean of ``draws`` calls, each with its own random start (a soft vote)."""
    if draws == 1:
        return logits()
    return torch.stack([logits() for _ in range(draws)]).mean(0)


def mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    """Two-layer perceptron."""
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))


class SameDifferent(nn.Module):
    """Stage 1: encoder, a relational bottleneck, and a classifier that sees only the bottleneck.

    The bottleneck is the oscillators' coherence (the poster's model) or a baseline registered in ``bottlenecks``
    (the elementwise difference, a learned per-feature comparator, CoRelNet's similarity matrix, the authors'
    projection, or the concatenation [z1, z2], no relational bottleneck at all).
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg.validate()
        self.encoder = StridedEncoder(cfg.D) if cfg.encoder == "strided" else Encoder(cfg.channels, cfg.D)
        oscillator = cfg.bottleneck == "oscillator"
        self.binding = KuramotoBinding(cfg) if oscillator else None
        self.baseline = None if oscillator else BASELINES[cfg.bottleneck](cfg.D, cfg.N, cfg.readout)
        self.context_norm = ContextNorm(cfg.D) if cfg.context_norm else None
        self.head = mlp(self.relation_size, cfg.hidden, 1)

    @property
    def relation_size(self) -> int:
        """Width of what the classifier reads: D for the coherence, the baseline's own width otherwise."""
        return self.cfg.D if self.baseline is None else self.baseline.width(self.cfg.D)

    def encode(self, images: Tensor, gen: torch.Generator | None = None) -> Tensor:
        """``(B, 2, 1, H, W) -> (B, 2, D)``: both objects through one CNN call, normalised over the pair when
        cfg.context_norm (``ContextNorm``); feature dropout in training."""
        B = images.shape[0]
        z = self.encoder(images.flatten(0, 1)).view(B, 2, -1)
        if self.context_norm is not None:
            z = self.context_norm(z)
        return self.drop_features(z, gen) if self.training and self.cfg.dropout else z

    def drop_features(self, z: Tensor, gen: torch.Generator | None) -> Tensor:
        """Dropout of z ``(B, 2, D)`` with one mask per pair: feature d of both objects zeroed with probability
        p = cfg.dropout, the rest scaled by 1 / (1 - p); the mask comes from gen (on the CPU), not global state."""
        keep = (torch.rand(len(z), 1, z.shape[-1], generator=gen) >= self.cfg.dropout).to(z)  # (B, 1, D)
        return z * keep / (1 - self.cfg.dropout)

    def coherence(self, images: Tensor, gen: torch.Generator | None = None) -> Tensor:
        """The oscillators' coherence rho, ``(B, D)`` (oscillator bottleneck only): of x(T), or its mean over the
        last cfg.readout_steps states."""
        rho = core.coherence(self.binding.last_states(self.encode(images, gen), gen, self.cfg.readout_steps))
        return rho[0] if len(rho) == 1 else rho.mean(0)

    def relation(self, images: Tensor, gen: torch.Generator | None = None) -> Tensor:
        """What the classifier reads of a pair, ``(B, relation_size)``."""
        if self.baseline is None:
            return readout(self.coherence(images, gen), self.cfg.readout)
        return self.baseline(self.encode(images, gen))

    def forward(self, images: Tensor, gen: torch.Generator | None = None) -> Tensor:
        """Logit of "same", ``(B,)``; in eval mode the mean over cfg.votes draws of the start (``vote``)."""
        return vote(lambda: self.head(self.relation(images, gen)).squeeze(-1), 1 if self.training else self.cfg.votes)


class RMTS(nn.Module):
    """Stage 2: a new MLP on the frozen relations (coherence vectors) of the source pair and both target pairs."""

    def __init__(self, same_different: SameDifferent):
        super().__init__()
        self.same_different = same_different.requires_grad_(False).eval()
        self.head = mlp(3 * same_different.relation_size, same_different.cfg.hidden, 2)

    def train(self, mode: bool = True):
        """Only the head trains; the frozen stage-1 model stays in eval mode (BatchNorm statistics fixed)."""
        super().train(mode)
        self.same_different.eval()
        return self

    def forward(self, images: Tensor, gen: torch.Generator | None = None) -> Tensor:
        """Images ``(B, 3, 2, 1, H, W)`` -> logits over which target matches ``(B, 2)``; in eval mode the mean over
        the stage-1 model's cfg.votes draws of the start."""
        return vote(lambda: self.head(self.relations(images, gen)),
                    1 if self.training else self.same_different.cfg.votes)

    def relations(self, images: Tensor, gen: torch.Generator | None = None) -> Tensor:
        """The frozen relations of the three pairs side by side, ``(B, 3 * relation_size)``."""
        with torch.no_grad():
            return self.same_different.relation(images.flatten(0, 1), gen).view(images.shape[0], -1)
