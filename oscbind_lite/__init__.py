"""oscbind_lite: binding by oscillatory dynamics for relational reasoning (Veliz, Altabaa, Lafferty).

The science, in the order data flows::

    config  ->  data, core  ->  model  ->  train  ->  analysis        (cache: checkpoints and files; cli: train)

``config`` holds every setting as typed dataclasses; ``core`` the poster's equations as pure
functions (``kuramoto_step``, ``energy``, ``coherence``); ``data`` the icons and trials; ``model``
the networks; ``train`` the two training stages with train-or-load; ``analysis`` the measurements
on trained models. The book's and the studies' tooling (notebook plumbing, sweeps, figures, tables,
the multi-seed evidence) is the separate package ``oscbind_tools``; nothing here imports it.
"""

__version__ = "0.2.0"

from .config import SMOKE, DataConfig, ModelConfig, RunConfig, TrainConfig, settings, smoke, with_overrides  # noqa: E402
from .core import coherence, energy, kuramoto_step  # noqa: E402
from .model import RMTS, KuramotoBinding, SameDifferent  # noqa: E402
from .train import load_same_different, train_rmts, train_same_different  # noqa: E402

__all__ = ["__version__", "DataConfig", "ModelConfig", "TrainConfig", "RunConfig", "SMOKE", "smoke", "settings",
           "with_overrides", "kuramoto_step", "energy", "coherence", "KuramotoBinding", "SameDifferent", "RMTS",
           "train_same_different", "train_rmts", "load_same_different"]
