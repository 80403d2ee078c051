"""The book's trained models, committed (``book/checkpoints/``), so that ``make book`` trains nothing it has.

    seed(book/checkpoints, cache)   # before the sweep: every current committed model the cache lacks, copied in
    freeze(cache, book/checkpoints) # after a sweep that trained everything afresh (make checkpoints)

A committed file is an ordinary cache checkpoint (``oscbind_lite.cache``): it loads with ``weights_only=True``
and carries the sha256 digests of its weights and of its metadata and the cache key it was trained under
(the config, the package version, the training code, compiled or not). It is *current* when those digests
verify and the key recomputed from its stored config by the code of this checkout is the key it carries.
Only current files are copied: after an edit of the training code every committed model is stale, the
sweep trains what the chapters need (as it would with no committed models at all), and
``make checkpoints`` retrains and replaces them; ``tests/test_checkpoints.py`` fails until it has.
"""

from __future__ import annotations

from pathlib import Path

from oscbind_lite.cache import CheckpointError, atomic_write, config_key, load_checkpoint

FOLDER = Path("book/checkpoints")  # relative to the repository root


def check(path: Path) -> str:
    """Why a committed checkpoint file is not current ("" when it is): corrupt, or trained by other code."""
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as err:
        return str(err)
    if config_key(ckpt["config"]) != ckpt["key"]:
        return f"checkpoint: {path.name} was trained by other code (the training code or package version changed)"
    if ckpt["key"][:20] not in path.name:
        return f"checkpoint: {path.name} is named for another key than the one it carries ({ckpt['key'][:20]})"
    return ""


def seed(folder: Path, cache: Path) -> tuple[int, int, list[str]]:
    """Copy every current checkpoint of folder that cache lacks into cache (atomically, verified first).

    Returns (copied, already in the cache, one reason per file not used)."""
    copied, present, unused = 0, 0, []
    for path in sorted(folder.glob("*.pt")):
        target = cache / path.name
        if target.exists():
            present += 1
            continue
        reason = check(path)
        if reason:
            unused.append(reason)
            continue
        _copy(path, target)
        copied += 1
    return copied, present, unused


def freeze(cache: Path, folder: Path) -> list[Path]:
    """Replace the committed checkpoints by every checkpoint of cache (the book's models, trained afresh)."""
    files = sorted(cache.glob("*.pt"))
    if not files:
        raise ValueError(f"checkpoints: no trained models in {cache} to commit")
    for path in files:
        reason = check(path)
        if reason:
            raise ValueError(reason)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.pt"):
        old.unlink()
    for path in files:
        _copy(path, folder / path.name)
    return [folder / p.name for p in files]


def _copy(source: Path, target: Path) -> None:
    data = source.read_bytes()
    atomic_write(target, lambda f: f.write(data))
