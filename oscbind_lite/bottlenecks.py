"""The baselines' relational bottlenecks, registered by name: what the classifier reads of a pair's encodings instead of
the oscillators' coherence.

Each is one class: ``width(D)`` says how many numbers it hands the classifier, ``forward(z)`` maps the pair's encodings
``(B, 2, D)`` to them ``(B, width)``. ``@baseline("name")`` registers it; ``ModelConfig.bottleneck`` accepts
"oscillator" (the poster's model, in ``model.py``) or any registered name, and the help text is the class's docstring.
Adding a baseline is one class here and one entry in the study that runs it.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn

from . import core

BASELINES: dict[str, type[nn.Module]] = {}


def baseline(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Register a baseline bottleneck under ``name`` (its first docstring line is its help text)."""
    def register(cls: type[nn.Module]) -> type[nn.Module]:
        BASELINES[name] = cls
        return cls
    return register


def readout(rho: Tensor, kind: str) -> Tensor:
    """What a classifier reads of the coherence: rho itself, or the chord sqrt(4 - rho^2) = ||x_1 - x_2||.

    Both are functions of rho alone, so the bottleneck is the same. The chord grows linearly with the
    phase gap of a nearly locked pair where rho = 2 cos(gap / 2) is flat (its slope vanishes at gap 0),
    which gives same/different training a usable gradient from the start.
    """
    if kind == "rho":
        return rho
    return (4 - rho * rho).clamp_min(1e-6).sqrt()


@baseline("difference")
class Difference(nn.Module):
    """difference |z1 - z2|: a fixed per-feature similarity."""

    def __init__(self, D: int, N: int, readout: str):
        super().__init__()

    @staticmethod
    def width(D: int) -> int:
        return D

    def forward(self, z: Tensor) -> Tensor:
        return (z[:, 0] - z[:, 1]).abs()


@baseline("concat")
class Concat(nn.Module):
    """concat [z1, z2]: both objects' features side by side, no relational bottleneck at all."""

    def __init__(self, D: int, N: int, readout: str):
        super().__init__()

    @staticmethod
    def width(D: int) -> int:
        return 2 * D

    def forward(self, z: Tensor) -> Tensor:
        return z.flatten(1)


@baseline("comparator")
class Comparator(nn.Module):
    """comparator g_d(z1[d], z2[d]): a learned comparison of each feature on its own, no oscillators.

    g_d is a small per-feature perceptron (2 -> H -> 1, its own weights for each d), symmetrised,
    g_d(a, b) = (h_d(a, b) + h_d(b, a)) / 2, so that like the coherence it does not depend on the
    order of the objects. It is the oscillators' bottleneck with the coupling replaced by any learned
    per-feature function: what the dynamics add beyond a per-feature nonlinear comparison.
    """

    def __init__(self, D: int, N: int, readout: str, hidden: int = 16):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(D, 2, hidden) / math.sqrt(2))
        self.b1 = nn.Parameter(torch.zeros(D, hidden))
        self.w2 = nn.Parameter(torch.randn(D, hidden) / math.sqrt(hidden))
        self.b2 = nn.Parameter(torch.zeros(D))

    @staticmethod
    def width(D: int) -> int:
        return D

    def h(self, a: Tensor, b: Tensor) -> Tensor:
        hidden = torch.relu(a[..., None] * self.w1[:, 0] + b[..., None] * self.w1[:, 1] + self.b1)  # (B, D, H)
        return (hidden * self.w2).sum(-1) + self.b2

    def forward(self, z: Tensor) -> Tensor:
        """Encodings ``(B, 2, D)`` -> ``(B, D)``."""
        return 0.5 * (self.h(z[:, 0], z[:, 1]) + self.h(z[:, 1], z[:, 0]))


@baseline("corelnet")
class CoRelNet(nn.Module):
    """corelnet softmax(Z Z^T): CoRelNet's relation matrix of the two objects (Kerg et al. 2022).

    R = softmax_rows(Z Z^T), Z = [z1; z2], flattened ``(B, 4)``: with two objects each row is (softmax of) the self- and
    the cross-similarity, <z_i, z_i> and <z1, z2>.
    """

    def __init__(self, D: int, N: int, readout: str):
        super().__init__()

    @staticmethod
    def width(D: int) -> int:
        return 4

    def forward(self, z: Tensor) -> Tensor:
        return torch.softmax(z @ z.transpose(1, 2), dim=-1).flatten(1)


@baseline("projection")
class Projection(nn.Module):
    """projection: coherence of normalised linear projections, no dynamics (the authors' baseline).

    Each feature is projected to N numbers, normalised onto the sphere, and read like the oscillators' final states.
    """

    def __init__(self, D: int, N: int, readout: str):
        super().__init__()
        self.D, self.N, self.kind = D, N, readout
        self.linear = nn.Linear(D, D * N)

    @staticmethod
    def width(D: int) -> int:
        return D

    def forward(self, z: Tensor) -> Tensor:
        p = core.normalize(self.linear(z).unflatten(-1, (self.D, self.N)))  # (B, 2, D, N)
        return readout(core.coherence(p), self.kind)
