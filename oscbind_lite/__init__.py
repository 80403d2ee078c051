"""oscbind_lite: binding by oscillatory dynamics for relational reasoning (Veliz, Altabaa, Lafferty).

The science, in the order data flows::

    config  ->  data (glyphs), core, bottlenecks  ->  model  ->  train  ->  analysis
    (limits, sizes: what a run may use and costs; cache: checkpoints and files; cli: python -m oscbind_lite train)

``config`` holds every setting as typed dataclasses; ``core`` the poster's equations as pure functions
(``kuramoto_step``, ``energy``, ``coherence``); ``glyphs`` reads a user's icon files and ``data`` makes the icons and
trials; ``bottlenecks`` registers the baselines by name; ``model`` the networks; ``train`` the two training stages with
train-or-load; ``analysis`` the measurements on trained models; ``limits`` and ``sizes`` check a run against what this
process may use before anything is allocated. The book's and the studies' tooling is the separate package
``oscbind_tools``; nothing here imports it.
"""

__version__ = "0.2.0"

from .config import SMOKE, DataConfig, ModelConfig, RunConfig, TrainConfig, settings, smoke, with_overrides  # noqa: E402
from .core import coherence, energy, kuramoto_step  # noqa: E402
from .model import RMTS, KuramotoBinding, SameDifferent  # noqa: E402
from .train import load_same_different, train_rmts, train_same_different  # noqa: E402

__all__ = ["__version__", "DataConfig", "ModelConfig", "TrainConfig", "RunConfig", "SMOKE", "smoke", "settings",
           "with_overrides", "kuramoto_step", "energy", "coherence", "KuramotoBinding", "SameDifferent", "RMTS",
           "train_same_different", "train_rmts", "load_same_different"]
