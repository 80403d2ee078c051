"""oscbind_lite: binding by oscillatory dynamics for relational reasoning (Veliz, Altabaa, Lafferty).

The poster's equations are the pure functions ``kuramoto_step``, ``energy`` and ``coherence``
(module ``core``); ``data`` makes icons and trials, ``model`` the networks, ``train`` the two
training stages with a checkpoint cache, ``cache`` the atomic files, ``cli`` the command line.
"""

__version__ = "0.1.0"

from .core import coherence, energy, kuramoto_step  # noqa: E402
from .model import ModelConfig, SameDifferent, RMTS, KuramotoBinding  # noqa: E402
from .train import DataConfig, RunConfig, TrainConfig, train_rmts, train_same_different  # noqa: E402

__all__ = ["kuramoto_step", "energy", "coherence", "ModelConfig", "SameDifferent", "RMTS", "KuramotoBinding",
           "DataConfig", "RunConfig", "TrainConfig", "train_same_different", "train_rmts", "__version__"]
