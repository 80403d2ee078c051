"""Files that must never be half-written or silently wrong: checkpoints, JSON and CSV results.

``atomic_write`` is the one writer every file of the project goes through (here, the book's sweep
and the evidence engine alike).

A checkpoint is one dict of plain values and tensors (loadable with ``weights_only=True``)::

    {"format": 2, "key": <hash of config + package version + training code>, "version": ..., "config": {...},
     "digest": <sha256 of the weights>, "meta_digest": <sha256 of key, config, history and metrics>,
     "state_dict": {...}, "history": {...}, "metrics": {...}}

The key covers the config, the icons, the package version, the training code and compilation, not the device or
the thread count (they change float rounding only: either model serves its config); an RMTS head's key also
covers the digest of the stage-1 weights it was trained on (``train._stage2_key``).

It is written to a temporary file in the same folder and renamed into place, so a reader sees
either the old file or the new one. On load, a file that does not unpickle, was made for another
config, or whose weights or stored metrics do not hash to their digests raises ``CheckpointError``.
"""

from __future__ import annotations

import csv
import errno
import functools
import hashlib
import io
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable

import torch

from . import __version__, core

FORMAT = 2
STALE_TEMPORARY_S = 3600  # a temporary file this old was left by a killed writer: removed by the next write


class CheckpointError(RuntimeError):
    """A checkpoint that is corrupt, truncated, or made for another configuration."""


# The modules whose code decides what a configuration trains; an edit to any of them is a new cache key.
TRAINING_CODE = ("bottlenecks", "config", "core", "data", "glyphs", "model", "train")


@functools.lru_cache(maxsize=None)
def source_fingerprint(modules: tuple[str, ...] | None = TRAINING_CODE, folder: str | None = None) -> str:
    """sha256 of the source of the given modules of a package folder (default this one; None: every module)."""
    here = Path(folder) if folder else Path(__file__).resolve().parent
    files = sorted(here.glob("*.py")) if modules is None else [here / f"{m}.py" for m in modules]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def config_key(config: dict) -> str:
    """The cache key: sha256 of the config's canonical JSON, the package version, the training code, and
    whether the step kernels are compiled (same arithmetic, other rounding, so another trained model)."""
    blob = json.dumps({"config": config, "version": __version__, "code": source_fingerprint(),
                       "compile": core.compile_enabled()}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def cache_dir() -> Path:
    """Where trained models are kept: $OSCBIND_CACHE, else $XDG_CACHE_HOME/oscbind_lite, else ~/.cache/oscbind_lite.

    ``~`` is expanded and a relative path resolved against the current folder, once, here.
    """
    if os.environ.get("OSCBIND_CACHE"):
        return Path(os.environ["OSCBIND_CACHE"]).expanduser().resolve()
    return (Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "oscbind_lite").expanduser().resolve()


def readable_folder(path: str | Path, name: str) -> Path:
    """path as a folder to read from (a cache that holds a model needs no write); created when it does not exist.
    Raises ValueError with one line naming the parameter otherwise; writing is checked where a write is due."""
    path = Path(path).expanduser()
    if path.is_dir():
        if not os.access(path, os.R_OK | os.X_OK):
            raise ValueError(f"{name}: cannot read {path} (permission denied)")
        return path
    return writable_folder(path, name)


def writable_folder(path: str | Path, name: str) -> Path:
    """path as a folder that exists and takes new files (created if needed), checked before any work.

    Raises ValueError with one line naming the parameter ``name`` (``out``, ``cache``, ...) otherwise.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name}: {path} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise ValueError(f"{name}: cannot write to {path} ({err.strerror or type(err).__name__})") from None
    return path


CLAIM = ".oscbind-claim"  # in an output folder: its lock, held by the run writing there
_claims: dict[str, int | None] = {}  # output folder -> the open file holding its lock, in this process


def claim_folder(path: str | Path, name: str, overwrite: bool = False, how: str = "--overwrite") -> Path:
    """path as this process's output folder, checked before any work: writable (``writable_folder``), written by no
    other run at the same time, and holding no earlier run's metrics.json unless ``overwrite``.

    The claim is an exclusive lock (flock) on FOLDER/.oscbind-claim, taken atomically and held until
    ``release_folder`` or the end of the process (a killed run holds nothing); a second claim in this process (a
    chapter rerun in its kernel) holds it already. Raises ValueError with one line naming the parameter ``name``
    and, for an earlier run, ``how`` to replace it.
    """
    import socket

    try:
        import fcntl  # POSIX only: elsewhere the metrics check alone holds
    except ImportError:
        fcntl = None
    folder = writable_folder(path, name)
    key = str(folder.resolve())
    if key not in _claims:
        try:
            fd = os.open(folder / CLAIM, os.O_RDWR | os.O_CREAT, 0o644) if fcntl else None
        except OSError:  # no room for even an empty file: the write of the metrics will say so, after training
            fd = None
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise ValueError(f"{name}: {folder} is being written by another run ({holder}) now; give another folder, "
                             "or wait for it to finish") from None
        except OSError:  # a file system without locks: the metrics check below still holds
            pass
        try:  # who holds it, for the message of a run refused here (a full disk keeps the lock without the words)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}".encode(), 0)
        except (OSError, TypeError):
            pass
        _claims[key] = fd
    if (folder / "metrics.json").exists() and not overwrite:
        release_folder(folder)
        raise ValueError(f"{name}: {folder} already holds a run's metrics.json{describe_run(folder / 'metrics.json')}; "
                         f"give another folder, or {how} to replace it")
    return folder


def release_folder(path: str | Path) -> None:
    """Give up this process's claim on an output folder (``claim_folder``), once its files are written."""
    fd = _claims.pop(str(Path(path).expanduser().resolve()), None)
    if fd is not None:
        os.close(fd)  # closing the file releases its lock


def describe_run(metrics: Path) -> str:
    """" (same-different, m = 95, seed 0)" for an earlier run's metrics.json, "" when it cannot be read."""
    try:
        m = json.loads(metrics.read_text())
        return f" ({m['task']}, m = {m['m']}, seed {m['seed']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], object]) -> Path:
    """Call write(binary file) on a temporary file beside path, then rename it onto path; returns path.

    A reader sees the old file or the new one, never half of one; an error leaves no temporary behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer that was killed mid-write
        try:
            if time.time() - old.stat().st_mtime > STALE_TEMPORARY_S:
                old.unlink()
        except OSError:
            pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the permissions open() would
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def finite(obj):
    """obj with every NaN or infinite float replaced by None, so the JSON it becomes is valid JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def write_json(path: str | Path, obj) -> Path:
    """Write obj as indented, valid JSON (non-finite numbers become null), atomically."""
    text = json.dumps(finite(obj), indent=2, sort_keys=True, allow_nan=False) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode()))


def write_csv(path: str | Path, columns: Iterable[str], rows: Iterable[dict]) -> Path:
    """Write rows (dicts; keys beyond columns ignored) as CSV with a header, atomically."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write(path, lambda f: f.write(buffer.getvalue().encode()))


def weights_digest(state_dict: dict) -> str:
    """sha256 over the names, shapes, dtypes and bytes of every tensor in a state dict."""
    h = hashlib.sha256()
    for name in sorted(state_dict):
        t = state_dict[name].detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def meta_digest(key: str, config: dict, history: dict, metrics: dict) -> str:
    """sha256 of everything stored beside the weights, so an edited metric is caught like a flipped weight."""
    blob = json.dumps(finite({"key": key, "config": config, "history": history, "metrics": metrics}), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def save_checkpoint(path: str | Path, key: str, config: dict, state_dict: dict, history: dict, metrics: dict) -> None:
    """Write a checkpoint atomically (see the module docstring for its layout). A write that fails, a full disk
    included, raises OSError: torch.save reports a short write as a RuntimeError of its own, turned into one here."""
    state = {k: v.detach().cpu() for k, v in state_dict.items()}
    payload = {"format": FORMAT, "key": key, "version": __version__, "config": config,
               "digest": weights_digest(state), "meta_digest": meta_digest(key, config, history, metrics),
               "state_dict": state, "history": history, "metrics": metrics}
    try:
        atomic_write(path, lambda f: torch.save(payload, f))
    except RuntimeError as err:  # PytorchStreamWriter's "file write failed": the disk is full or gone
        raise OSError(errno.EIO, f"the write failed ({str(err).splitlines()[0][:120]})") from None


def load_checkpoint(path: str | Path, key: str | None = None) -> dict:
    """Load and verify a checkpoint; raise CheckpointError if it is corrupt or not for ``key``."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # torch raises several types for truncated or garbled files
        raise CheckpointError(f"checkpoint: {path} is corrupt or unreadable ({type(err).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or "state_dict" not in payload:
        raise CheckpointError(f"checkpoint: {path} is not an oscbind_lite checkpoint of format {FORMAT}")
    if key is not None and payload.get("key") != key:
        raise CheckpointError(f"checkpoint: {path} was made for another config or package version")
    if weights_digest(payload["state_dict"]) != payload.get("digest"):
        raise CheckpointError(f"checkpoint: {path} is corrupt (its weights do not match their stored digest)")
    if meta_digest(payload["key"], payload["config"], payload["history"],
                   payload["metrics"]) != payload.get("meta_digest"):
        raise CheckpointError(f"checkpoint: {path} is corrupt (its stored metrics or history do not match "
                              "their digest)")
    return payload
