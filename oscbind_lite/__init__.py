"""oscbind_lite: binding by oscillatory dynamics for relational reasoning (Veliz, Altabaa, Lafferty).

The poster's equations are the pure functions ``kuramoto_step``, ``energy`` and ``coherence``
(module ``core``); ``data`` makes icons and trials, ``model`` the networks, ``train`` the two
training stages with a checkpoint cache, ``cache`` the atomic files, ``analysis`` the measurements
on trained models, ``plotting`` the figures, ``results`` reading runs back, ``book`` and ``sweep``
the notebooks' plumbing, ``cli`` the command line.

The names below are imported on first use, so ``import oscbind_lite.booksupport`` (which the book's
Sphinx build loads) does not pay for importing torch.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "kuramoto_step": "core", "energy": "core", "coherence": "core",
    "ModelConfig": "model", "SameDifferent": "model", "RMTS": "model", "KuramotoBinding": "model",
    "DataConfig": "train", "RunConfig": "train", "TrainConfig": "train",
    "train_same_different": "train", "train_rmts": "train", "with_overrides": "train",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
