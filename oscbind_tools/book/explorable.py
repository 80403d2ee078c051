"""The explorable: what the book's in-browser page needs from the trained models, and the answer it must give.

    files = export({95: model95, 50: model50, 15: model15}, {95: tasks95, ...}, "out/explorable", seed=0)
    html = page_html([95, 50, 15])                      # the page's markup; the chapter displays it
    ref = reference(model, images, start)               # the package's own forward pass, to check the page by

The page (``oscbind_tools/static/explorable/explorable.js``, plain JavaScript) runs the model of a
split in the reader's browser: the CNN with BatchNorm in eval form, the drive c = W z + b, T Euler
steps of the projected Kuramoto update with one fused (2DN x 2DN) matrix, the coherence, the readout
and the classifier. ``export`` writes what it needs as JavaScript files that hand one JSON object
each to the page (``oscbindExplorableData.push({...})``): a ``<script>`` loads them, so the page
also works opened from disk (``file://``), where a browser refuses to ``fetch`` JSON. Tensors are
little-endian float32 in base64; the icons are 8-bit (the bank is stored at that precision).

* ``icons.js``: the K icon images (32 x 32) and their names.
* ``m<M>.js``, one per split: the weights, the split's training and held-out icons, a fixed start
  state (object 1's and object 2's rows; the shared start uses row 1 for both) drawn from
  ``seeded(seed, "explorable:start")``, and the model's own held-out accuracy.

The couplings are exported as their parts (Omega as skew-symmetric (D, N, N), J_IN and J_OUT as
(DN, DN) after the model's constraints): the page fuses them into ``core.fused_coupling``'s matrix
itself, so its J_OUT and Omega switches only leave a block out. ``reference`` computes what the page
must show with the model's own functions (``SameDifferent.encode``, ``KuramotoBinding.trajectory``,
``core.coherence``, ``model.readout``, the head), switches included, so a test can hold the page to it.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import html
import json
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from oscbind_lite import core
from oscbind_lite.analysis import with_dynamics
from oscbind_lite.cache import atomic_write
from oscbind_lite.config import RunConfig, with_overrides
from oscbind_lite.data import DEFAULT_CODEPOINTS, IconTasks, seeded
from oscbind_lite.model import SameDifferent, readout
from oscbind_lite.train import train_same_different

from .chapter import ParameterError
from ..studies.table import Table

FORMAT = 1
ICONS = "icons.js"
STATIC = "explorable"  # the page's code: oscbind_tools/static/explorable/, served as _static/explorable/
DATA = "explorable-data"  # the exported files, served as _static/explorable-data/ (see sphinx_ext)
PAGE_ID = "oscbind-explorable"
STATIC_FOLDER = Path(__file__).resolve().parent / "static" / STATIC


def split_file(m: int) -> str:
    """The name of a split's file: ``m95.js``."""
    return f"m{m}.js"


def _b64(array: np.ndarray, dtype) -> str:
    """An array's bytes, little-endian, in base64."""
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()).decode()


def _tensor(t: Tensor | np.ndarray) -> dict:
    """A float32 tensor as ``{"shape": [...], "data": base64}``."""
    a = t.detach().cpu().float().contiguous().numpy() if isinstance(t, Tensor) else np.asarray(t, np.float32)
    return {"shape": list(a.shape), "data": _b64(a, "<f4")}


def check_exportable(model: SameDifferent) -> None:
    """Raise ValueError unless the page can run this model: the oscillator bottleneck on the pooled CNN, read at x(T)
    (the page computes neither a trajectory readout nor context normalisation)."""
    cfg = model.cfg
    if cfg.bottleneck != "oscillator" or cfg.encoder != "pooled":
        raise ValueError(f"model: the explorable runs the oscillator model on the pooled CNN, got bottleneck "
                         f"{cfg.bottleneck!r} with encoder {cfg.encoder!r}")
    if cfg.readout_steps != 1 or cfg.context_norm:
        raise ValueError(f"model: the explorable reads the coherence of x(T) of encodings as the CNN gives them, got "
                         f"readout_steps {cfg.readout_steps} and context_norm {cfg.context_norm}")


def weights(model: SameDifferent) -> dict[str, dict]:
    """Every tensor the page's forward pass reads, by name (see the module docstring).

    BatchNorm goes out as its running statistics and affine weights; the page folds them into its eval
    form, alpha = w / sqrt(var + eps) and beta = b - mean alpha, as torch's CPU kernel does.
    """
    check_exportable(model)
    layers = list(model.encoder.features)
    out = {}
    for k in range(len(model.cfg.channels)):  # conv (no bias), max-pool 2, BatchNorm, ReLU
        conv, bn = layers[4 * k], layers[4 * k + 2]
        out[f"conv{k}"] = _tensor(conv.weight)  # (C_out, C_in, 3, 3)
        for name in ("running_mean", "running_var", "weight", "bias"):
            out[f"bn{k}.{name.removeprefix('running_')}"] = _tensor(getattr(bn, name))
    out["out.weight"], out["out.bias"] = _tensor(model.encoder.out.weight), _tensor(model.encoder.out.bias)
    D, N = model.cfg.D, model.cfg.N
    with torch.no_grad():
        omega, J_in, J_out = model.binding.couplings()
        out["W"], out["b"] = _tensor(model.binding.W), _tensor(model.binding.b)  # (D, N)
        out["omega"] = _tensor(omega)  # (D, N, N), skew-symmetric
        out["J_in"], out["J_out"] = _tensor(J_in.reshape(D * N, D * N)), _tensor(J_out.reshape(D * N, D * N))
    out["head0.weight"], out["head0.bias"] = _tensor(model.head[0].weight), _tensor(model.head[0].bias)
    out["head2.weight"], out["head2.bias"] = _tensor(model.head[2].weight), _tensor(model.head[2].bias)
    return out


def fixed_start(D: int, N: int, seed: int) -> Tensor:
    """The page's default start state ``(2, D, N)``: uniform on the sphere, object 1's row then object 2's."""
    return core.normalize(torch.randn(2, D, N, generator=seeded(seed, "explorable:start")))


def _js(payload: dict) -> bytes:
    """A data file: one statement that hands the JSON object to the page, whichever script loads first."""
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    return f"(window.oscbindExplorableData = window.oscbindExplorableData || []).push({text});\n".encode()


def icon_payload(bank: np.ndarray) -> dict:
    """The icons ``(K, H, W)`` in [0, 1]: 8-bit when that is exact (the default icons), else float32."""
    bank = np.asarray(bank, np.float32)
    as_bytes = np.rint(bank * 255).astype(np.uint8)
    exact = np.array_equal(as_bytes.astype(np.float32) / np.float32(255), bank)
    names = [f"U+{cp:04X}" for cp in DEFAULT_CODEPOINTS] if len(bank) == len(DEFAULT_CODEPOINTS) else []
    return {"kind": "icons", "format": FORMAT, "shape": list(bank.shape), "names": names,
            "dtype": "uint8" if exact else "float32",
            "data": _b64(as_bytes if exact else bank, "u1" if exact else "<f4")}


def split_payload(m: int, model: SameDifferent, tasks: IconTasks, seed: int, accuracy: float | None) -> dict:
    """Everything the page needs of one split's trained model."""
    cfg = model.cfg
    return {"kind": "split", "format": FORMAT, "m": m, "seed": seed, "test_accuracy": accuracy,
            "config": {"D": cfg.D, "N": cfg.N, "T": cfg.T, "gamma": cfg.gamma, "start": cfg.start,
                       "readout": cfg.readout, "channels": list(cfg.channels), "hidden": cfg.hidden,
                       "learn_omega": cfg.learn_omega, "learn_j_out": cfg.learn_j_out},
            "bn_eps": [bn.eps for bn in model.encoder.features if isinstance(bn, torch.nn.BatchNorm2d)],
            "render": dataclasses.asdict(tasks.renderer),
            "train_icons": tasks.train_icons.tolist(), "test_icons": tasks.test_icons.tolist(),
            "start": _tensor(fixed_start(cfg.D, cfg.N, seed)), "tensors": weights(model)}


class Exported(NamedTuple):
    """What ``export`` wrote (or would write): the folder and each data file's size in bytes."""

    folder: Path | None
    sizes: dict[str, int]

    def split_weight(self, m: int) -> int:
        """Bytes a reader downloads to run split m: its file, the icons, the page's script and stylesheet."""
        return self.sizes[split_file(m)] + self.sizes[ICONS] + code_bytes()

    def table(self, opening: int) -> Table:
        """The page weight, file by file, for the chapter; ``opening``: the split the page opens with."""
        kb = lambda n: f"{n / 1000:.0f} kB"  # noqa: E731
        rows = [[f"{STATIC}/{f.name}", "the page's code", kb(f.stat().st_size)]
                for f in sorted(STATIC_FOLDER.iterdir())]
        rows.append([f"{DATA}/{ICONS}", "the icon images", kb(self.sizes[ICONS])])
        rows += [[f"{DATA}/{name}", f"the trained model of m = {name[1:-3]}" + (", loaded when chosen" if name !=
                  split_file(opening) else ", loaded with the page"), kb(size)]
                 for name, size in self.sizes.items() if name != ICONS]
        return Table(["file (under _static/)", "what it holds", "size"], rows,
                     caption=f"What the explorable loads: {kb(self.split_weight(opening))} when it opens (its code, "
                             f"the icons and the model of m = {opening}), each other split's file when it is chosen")


def code_bytes() -> int:
    """Bytes of the page's own script and stylesheet."""
    return sum(f.stat().st_size for f in STATIC_FOLDER.iterdir())


def export(models: dict[int, SameDifferent], tasks: dict[int, IconTasks], folder: str | Path | None, seed: int,
           accuracies: dict[int, float] | None = None) -> Exported:
    """Write the page's data for each split's trained model (``icons.js``, ``m<M>.js``) into folder, atomically
    (folder None: only measure them)."""
    banks = {m: t.bank[:, 0].cpu().numpy() for m, t in tasks.items()}
    first = next(iter(banks.values()))
    if any(not np.array_equal(b, first) for b in banks.values()):
        raise ValueError("tasks: every split must use the same icons")
    files = {ICONS: _js(icon_payload(first))}
    for m, model in models.items():
        files[split_file(m)] = _js(split_payload(m, model.eval(), tasks[m], seed, (accuracies or {}).get(m)))
    if folder is not None:
        for name, blob in files.items():
            atomic_write(Path(folder) / name, lambda f, blob=blob: f.write(blob))
    return Exported(None if folder is None else Path(folder), {name: len(blob) for name, blob in files.items()})


def parse_splits(text: str, m: int) -> list[int]:
    """A chapter's ``splits`` parameter ("95,50,15") as integers; the split the page opens with (m) among them."""
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() for p in parts) or m not in [int(p) for p in parts] or len(set(parts)) != len(parts):
        raise ParameterError(f"splits: must be distinct comma-separated splits that include m = {m}, got {text!r}")
    return [int(p) for p in parts]


def export_trained(run: RunConfig, splits: list[int], device: str | torch.device,
                   folder: str | Path | None) -> Exported:
    """Train-or-load the same/different model of each split (the ones the training chapters left in the cache)
    and export them with ``run``'s seed; folder None only measures the files."""
    models, tasks, accuracies = {}, {}, {}
    for m in splits:
        split_run = with_overrides(run, m=m)
        trained = train_same_different(split_run, str(device), progress=False)
        models[m], tasks[m] = trained.model.cpu(), IconTasks.from_config(split_run.data)
        accuracies[m] = trained.metrics["test_accuracy"]
    return export(models, tasks, folder, run.data.seed, accuracies)


def place(glyph: Tensor | np.ndarray, scale: float = 1.0, shift: tuple[float, float] = (0.0, 0.0),
          image_size: int = 32, glyph_size: float = 0.6) -> Tensor:
    """One glyph ``(b, b)`` drawn into an image ``(1, H, H)`` at a given scale and centre offset (x, y in [-1, 1]
    image units): the arithmetic of ``data.Renderer.render`` for one sample whose scale and offset are given."""
    g = torch.tensor(np.asarray(glyph, np.float32))[None, None]
    half = glyph_size * torch.tensor([scale], dtype=torch.float32)  # float32, as the renderer's draws are
    theta = torch.zeros(1, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / half
    theta[:, :, 2] = -torch.tensor([shift], dtype=torch.float32) / half[:, None]
    grid = F.affine_grid(theta, [1, 1, image_size, image_size], align_corners=False)
    return F.grid_sample(g, grid, align_corners=False)[0]


def reference(model: SameDifferent, images: Tensor, start: Tensor, T: int | None = None, gamma: float | None = None,
              j_out: bool = True, omega: bool = True, shared: bool = True,
              dtype: torch.dtype = torch.float32) -> dict[str, np.ndarray | float]:
    """The package's answer for one pair with the page's controls: what the page must reproduce.

    images ``(2, 1, H, W)``; start ``(2, D, N)`` (with ``shared`` both objects start at row 0). Returns the
    encodings z ``(2, D)``, drives c ``(2, D, N)``, states ``(T+1, 2, D, N)``, phases ``(T+1, 2, D)``, energies
    ``(T+1,)``, coherence rho ``(T+1, D)``, the readout, the logit and the probability of "same". With
    ``dtype=torch.float64`` the same weights run in double precision, as the page computes.
    """
    model = with_dynamics(model.eval(), T=T or model.cfg.T, gamma=gamma or model.cfg.gamma).to(dtype)
    binding = copy.deepcopy(model.binding)
    if not j_out:  # the coupling left out: KuramotoBinding.couplings then uses zeros
        binding.J_out_raw = None
    if not omega:
        binding.omega_raw, binding.omega_fixed = None, None
    x0 = (start[[0, 0]] if shared else start)[None].to(dtype)
    with torch.no_grad():
        z = model.encode(images[None].to(dtype))  # (1, 2, D)
        dyn = binding.trajectory(z, x0=x0)
        rho = torch.stack([core.coherence(x) for x in dyn.states])[:, 0]  # (T+1, D)
        features = readout(rho[-1:], model.cfg.readout)
        logit = model.head(features).squeeze()
    states = dyn.states[:, 0]
    return {"z": z[0].numpy(), "c": dyn.c[0].numpy(), "states": states.numpy(),
            "phases": torch.atan2(states[..., 1], states[..., 0]).numpy(), "energies": dyn.energies[:, 0].numpy(),
            "rho": rho.numpy(), "readout": features[0].numpy(), "logit": float(logit),
            "probability": float(torch.sigmoid(logit))}


def differences(page: dict, model: SameDifferent) -> dict[str, dict[str, float]]:
    """Largest absolute differences between a run of the page (``window.oscbindExplorable.result()``) and the
    package's ``reference`` for the same images, start state and controls, in float32 and in float64.

    Phases are compared on the circle (a difference of 2 pi is none). ``verdict`` is 1 when the page and the
    float32 model disagree on same/different.
    """
    D, N, size = model.cfg.D, model.cfg.N, int(math.isqrt(len(page["images"][0])))
    images = torch.tensor(page["images"], dtype=torch.float64).view(2, 1, size, size)
    start = torch.tensor(page["states"][0], dtype=torch.float64).view(2, D, N)  # the page's x(0), shared or not
    s = page["state"]
    controls = dict(T=len(page["states"]) - 1, gamma=s["gamma"], j_out=s["jout"], omega=s["omega"], shared=False)
    out = {}
    for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        ref = reference(model, images.to(dtype), start.to(dtype), dtype=dtype, **controls)
        phases = np.asarray(page["phases"]).reshape(ref["phases"].shape)
        out[name] = {"phases": float(np.abs((phases - ref["phases"] + np.pi) % (2 * np.pi) - np.pi).max()),
                     "rho": float(np.abs(np.asarray(page["rho"]) - ref["rho"]).max()),
                     "energy": float(np.abs(np.asarray(page["energies"]) - ref["energies"]).max()),
                     "probability": abs(page["probability"] - ref["probability"])}
        if dtype == torch.float32:
            out["verdict"] = float((page["probability"] >= 0.5) != (ref["probability"] >= 0.5))
    return out


def page_html(splits: list[int], static: str = f"../_static/{STATIC}/", data: str = f"../_static/{DATA}/",
              default_split: int | None = None) -> str:
    """The explorable's markup: a container the page's script fills, its stylesheet and its script.

    Paths are relative to the page (a chapter lives in notebooks/, so ``../_static/``).
    """
    attrs = {"id": PAGE_ID, "class": "oscbind-explorable", "data-data": data,
             "data-splits": ",".join(str(m) for m in splits), "data-default-split": str(default_split or splits[0])}
    opening = " ".join(f'{k}="{html.escape(v)}"' for k, v in attrs.items())
    return (f'<link rel="stylesheet" href="{html.escape(static)}explorable.css">\n'
            f'<div {opening}><p class="ox-status" role="status">Loading the trained models ...</p>'
            '<noscript><p>The explorable runs the trained model in your browser and needs JavaScript.</p></noscript>'
            f'</div>\n<script src="{html.escape(static)}explorable.js"></script>\n')
