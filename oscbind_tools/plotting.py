"""Figures for the book: icons and trials, training curves, energy bands, phase circles, scrubbers.

Every function takes plain arrays or tensors (what the other modules return) and returns a figure
(matplotlib ``Figure``, plotly ``Figure`` or an ipywidgets box); none trains or samples anything.
Icons are drawn as black ink on white.
"""

from __future__ import annotations

import math
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text

SAME_COLOUR, DIFFERENT_COLOUR = "#1b9e77", "#d95f02"
OBJECT_COLOURS = ("#1f77b4", "#d62728")  # object 1, object 2


# The book shows a figure at its natural size (dpi 100) or, when wider, scaled to the article's column: 672 CSS px in a
# 1280 px window. No text of a figure may then be smaller than MIN_TEXT_PX (about 9 px is the least a reader reads
# without zooming); ``readable`` raises what is smaller.
COLUMN_PX = 672
MIN_TEXT_PX = 9.5


def readable(fig: Figure, pad: float = 1.08) -> Figure:
    """Raise every text of ``fig`` (tick labels, axis labels, titles, legends, annotations) that the book would show
    smaller than ``MIN_TEXT_PX`` to that size, then lay the figure out again (``tight_layout`` with ``pad``).

    A text that has grown wider than its room goes onto more lines: a panel's title or x label wider than the panel
    (it would run into the next panel's), any text wider than the figure. The page shows the figure cropped to what
    is drawn (a notebook saves it with ``bbox_inches="tight"``, 0.1 inch around it), so its width is measured again
    after each layout.
    """
    width = fig.get_figwidth()
    renderer = fig.canvas.get_renderer()
    for _ in range(3):
        shown = min(1.0, COLUMN_PX / (width * fig.dpi))  # the page's scale for this figure
        floor = MIN_TEXT_PX * 72 / (fig.dpi * shown)  # in points
        for ax in fig.axes:
            for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
                labels = axis.get_ticklabels(which="both")
                if labels and min(t.get_fontsize() for t in labels) < floor:
                    ax.tick_params(axis=name, which="both", labelsize=floor)
        for text in fig.findobj(Text):
            if text.get_text() and text.get_fontsize() < floor:
                text.set_fontsize(floor)
            _wrap(text, 0.98 * fig.get_figwidth() * fig.dpi, renderer)
        fig.tight_layout(pad=pad)
        panels = [_wrap(t, ax.get_window_extent(renderer).width, renderer)
                  for ax in fig.axes if ax.get_visible() for t in (ax.title, ax.xaxis.label)]
        if any(panels):
            fig.tight_layout(pad=pad)
        drawn = fig.get_tightbbox(renderer).width + 0.2
        if drawn <= width + 0.01:
            break
        width = drawn
    return fig


def _wrap(text: Text, room: float, renderer) -> bool:
    """Put a one-line text wider than ``room`` pixels onto as many lines as it needs; whether it did."""
    words = text.get_text()
    across = text.get_window_extent(renderer).width / room if words and room > 0 else 0
    if across <= 1 or "\n" in words:
        return False
    text.set_text("\n".join(textwrap.wrap(words, max(12, int(len(words) / across)))))
    return True


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _icon(ax, image, title: str | None = None, frame: str | None = None) -> None:
    ax.imshow(_np(image).squeeze(), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    for spine in ax.spines.values():
        spine.set_edgecolor(frame or "#bbbbbb")
        spine.set_linewidth(2 if frame else 0.5)


def icon_sheet(bank, labels=None, cols: int = 20, highlight=None, title: str = "") -> Figure:
    """All K icons in a grid; ``highlight`` (indices) get a coloured frame (e.g. the test icons of a split)."""
    bank = _np(bank)
    K = len(bank)
    rows = math.ceil(K / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.55, rows * 0.62), squeeze=False)
    marked = set(_np(highlight).tolist()) if highlight is not None else set()
    for k, ax in enumerate(axes.flat):
        if k >= K:
            ax.axis("off")
            continue
        _icon(ax, bank[k], None if labels is None else labels[k], DIFFERENT_COLOUR if k in marked else None)
    fig.suptitle(title, fontsize=10)
    return readable(fig, pad=0.2)


def split_grid(n_icons: int, splits: dict[int, tuple], cols: int = 20) -> Figure:
    """One strip per split m: each cell an icon index, dark if in training, light if held out."""
    fig, axes = plt.subplots(len(splits), 1, figsize=(8, 1.1 * len(splits)), squeeze=False)
    rows = math.ceil(n_icons / cols)
    for ax, (m, (train, test)) in zip(axes[:, 0], splits.items()):
        grid = np.full(rows * cols, np.nan)
        grid[_np(train)] = 1.0
        grid[_np(test)] = 0.0
        ax.imshow(grid.reshape(rows, cols), cmap="Blues", vmin=-0.3, vmax=1.1, aspect="auto")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(f"m = {m}", rotation=0, ha="right", va="center")
        ax.set_title(f"{len(_np(train))} training icons (dark), {len(_np(test))} held out (light)", fontsize=8)
    return readable(fig)


def pair_gallery(images, labels, n: int = 8, title: str = "") -> Figure:
    """Same/different pairs side by side: images ``(B, 2, 1, H, W)``, labels ``(B,)`` with 1 = same."""
    images, labels = _np(images), _np(labels)
    n = min(n, len(images))
    fig, axes = plt.subplots(2, n, figsize=(1.1 * n, 2.5), squeeze=False)
    for k in range(n):
        same = bool(labels[k])
        colour = SAME_COLOUR if same else DIFFERENT_COLOUR
        _icon(axes[0, k], images[k, 0], "same" if same else "different", colour)
        _icon(axes[1, k], images[k, 1], None, colour)
    fig.suptitle(title, fontsize=10)
    return readable(fig)


def rmts_gallery(images, correct, n: int = 4, title: str = "") -> Figure:
    """RMTS trials, one per row: source pair | target 0 | target 1, the matching target framed."""
    images, correct = _np(images), _np(correct)
    n = min(n, len(images))
    fig, axes = plt.subplots(n, 8, figsize=(8, 1.15 * n), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1, 0.35, 1, 1, 0.35, 1, 1]})
    for r in range(n):
        for c in (2, 5):
            axes[r, c].axis("off")
        for pair, col in zip(range(3), (0, 3, 6)):
            frame = None if pair == 0 else (SAME_COLOUR if pair - 1 == correct[r] else "#bbbbbb")
            names = ("source", "target 0", "target 1")
            _icon(axes[r, col], images[r, pair, 0], names[pair] if r == 0 else None, frame)
            _icon(axes[r, col + 1], images[r, pair, 1], None, frame)
    fig.suptitle(title, fontsize=10)
    return readable(fig)


def smooth(values, window: int = 50) -> np.ndarray:
    """Trailing moving average (shorter window at the start)."""
    v = np.asarray(values, dtype=float)
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def training_curves(history: dict, batch_size: int, eval_size: int, title: str = "", window: int = 50) -> Figure:
    """Training accuracy per batch (smoothed) and held-out accuracy at each evaluation; loss beside it."""
    steps = np.arange(1, len(history["accuracy"]) + 1)
    fig, (acc, loss) = plt.subplots(1, 2, figsize=(10, 3.4))
    acc.plot(steps, 100 * np.asarray(history["accuracy"]), color="#cccccc", lw=0.5, label="training batch")
    acc.plot(steps, 100 * smooth(history["accuracy"], window), color="black", lw=1.2,
             label=f"training, {window}-batch mean")
    acc.plot(history["eval_step"], 100 * np.asarray(history["test_accuracy"]), "o-", color=DIFFERENT_COLOUR,
             ms=4, label=f"held-out icons ({eval_size} fixed)")
    acc.set_xlabel(f"optimiser step (batch = {batch_size})")
    acc.set_ylabel("accuracy (%)")
    acc.set_ylim(40, 101)
    acc.axhline(50, color="grey", lw=0.6, ls=":")
    acc.legend(loc="lower right", fontsize=8)
    loss.plot(steps, history["loss"], color="#cccccc", lw=0.5)
    loss.plot(steps, smooth(history["loss"], window), color="black", lw=1.2)
    loss.set_yscale("log")
    loss.set_xlabel("optimiser step")
    loss.set_ylabel("cross-entropy loss (nats)")
    fig.suptitle(title, fontsize=10)
    return readable(fig)


def accuracy_bars(table: dict[str, dict[int, float]], title: str = "", n_label: str = "") -> Figure:
    """Grouped bars: ``table[task][m] = accuracy`` (0-1), one group per m, one bar per task."""
    tasks = list(table)
    ms = sorted({m for t in tasks for m in table[t]}, reverse=True)
    fig, ax = plt.subplots(figsize=(6, 3.4))
    width = 0.8 / max(1, len(tasks))
    for i, task in enumerate(tasks):
        xs = [j + (i - (len(tasks) - 1) / 2) * width for j in range(len(ms))]
        vals = [100 * table[task].get(m, np.nan) for m in ms]
        ax.bar(xs, vals, width, label=task)
        for x, v in zip(xs, vals):
            if not np.isnan(v):
                ax.text(x, v + 0.8, f"{v:.1f}", ha="center", fontsize=7)
    ax.set_xticks(range(len(ms)), [f"m = {m}" for m in ms])
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_ylim(min([40.0] + [100 * v - 5 for t in tasks for v in table[t].values()]), 105)  # below chance at few icons
    ax.axhline(50, color="grey", lw=0.6, ls=":")
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title + (f"\n{n_label}" if n_label else ""), fontsize=9)
    return readable(fig)


def energy_bands(energies_same, energies_different, title: str = "") -> Figure:
    """Mean energy over steps for same and different pairs, with bands of one standard deviation.

    Inputs ``(T+1, n)``: energy at each step for n pairs of each kind.
    """
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for E, name, colour in ((energies_same, "same", SAME_COLOUR), (energies_different, "different", DIFFERENT_COLOUR)):
        E = _np(E)
        t = np.arange(len(E))
        mean, std = E.mean(1), E.std(1)
        ax.plot(t, mean, color=colour, lw=1.6, label=f"{name} pairs (n = {E.shape[1]})")
        ax.fill_between(t, mean - std, mean + std, color=colour, alpha=0.2)
    ax.set_xlabel("Kuramoto step t")
    ax.set_ylabel("energy E (dimensionless)")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    return readable(fig)


def phase_circles(pairs: dict[str, object], title: str = "") -> Figure:
    """One unit circle per pair: the D oscillators of object 1 and object 2 at one step.

    ``pairs[name]`` is a state ``(2, D, N)``; for N > 2 the first two coordinates are drawn
    (a projection: points then lie inside the circle). Grey chords join the two objects' oscillators
    of the same feature: short chords mean phase-locked features (high coherence).
    """
    fig, axes = plt.subplots(1, len(pairs), figsize=(3.3 * len(pairs), 3.5), squeeze=False)
    for ax, (name, state) in zip(axes[0], pairs.items()):
        s = _np(state)
        circle = np.linspace(0, 2 * np.pi, 200)
        ax.plot(np.cos(circle), np.sin(circle), color="#dddddd", lw=1)
        for d in range(s.shape[1]):
            ax.plot([s[0, d, 0], s[1, d, 0]], [s[0, d, 1], s[1, d, 1]], color="#999999", lw=0.6)
        for i in (0, 1):
            ax.scatter(s[i, :, 0], s[i, :, 1], s=22, color=OBJECT_COLOURS[i], alpha=0.8, label=f"object {i + 1}",
                       zorder=3, marker="o" if i == 0 else "x")
        ax.set_aspect("equal")
        ax.set_xlim(-1.15, 1.15)
        ax.set_ylim(-1.15, 1.15)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{name} ({s.shape[1]} features)", fontsize=9)
    axes[0, 0].legend(fontsize=7, loc="lower left")
    fig.suptitle(title, fontsize=10)
    return readable(fig)


def plotly_scrubber(trajectories: dict[str, object], title: str = ""):
    """A plotly figure with one circle per pair and a step slider (and play button) over t = 0..T.

    ``trajectories[name]`` is ``(T+1, 2, D, N)``; works without a kernel once saved.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = list(trajectories)
    trajs = {k: _np(v) for k, v in trajectories.items()}
    T = len(next(iter(trajs.values()))) - 1
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names)
    circle = np.linspace(0, 2 * np.pi, 120)

    def traces(t):
        out = []
        for col, name in enumerate(names, 1):
            s = trajs[name][t]
            for i in (0, 1):
                out.append(go.Scatter(x=s[i, :, 0], y=s[i, :, 1], mode="markers", name=f"object {i + 1}",
                                      marker=dict(color=OBJECT_COLOURS[i], size=8, symbol="circle" if i == 0 else "x"),
                                      showlegend=col == 1, legendgroup=f"o{i}"))
        return out

    for col in range(1, len(names) + 1):
        fig.add_trace(go.Scatter(x=np.cos(circle), y=np.sin(circle), mode="lines", line=dict(color="#dddddd"),
                                 hoverinfo="skip", showlegend=False), row=1, col=col)
    n_static = len(names)
    for k, tr in enumerate(traces(T)):
        fig.add_trace(tr, row=1, col=k // 2 + 1)
    moving = list(range(n_static, n_static + 2 * len(names)))
    fig.frames = [go.Frame(data=traces(t), traces=moving, name=str(t)) for t in range(T + 1)]
    steps = [dict(method="animate", label=str(t),
                  args=[[str(t)], dict(mode="immediate", frame=dict(duration=0, redraw=False),
                                       transition=dict(duration=0))]) for t in range(T + 1)]
    # The play and pause buttons sit left of the slider, the "step t = k of T" readout above its right end, so
    # neither hides the other.
    fig.update_layout(
        title=title, height=440, margin=dict(t=70, b=80, l=10, r=10),
        sliders=[dict(active=T, steps=steps, x=0.2, len=0.8, y=0, yanchor="top", pad=dict(t=30),
                      currentvalue=dict(prefix="step t = ", suffix=f" of {T}", xanchor="right", font=dict(size=14)))],
        updatemenus=[dict(type="buttons", direction="right", showactive=False, x=0, y=0, xanchor="left", yanchor="top",
                          pad=dict(t=38), buttons=[
            dict(label="play", method="animate", args=[None, dict(frame=dict(duration=150, redraw=False),
                                                                   fromcurrent=False, transition=dict(duration=0))]),
            dict(label="pause", method="animate",
                 args=[[None], dict(mode="immediate", frame=dict(duration=0, redraw=False))]),
        ])])
    for col in range(1, len(names) + 1):  # constrain="domain": a panel shrinks to a square, its range stays +-1.2
        fig.update_xaxes(range=[-1.2, 1.2], visible=False, constrain="domain", row=1, col=col)
        fig.update_yaxes(range=[-1.2, 1.2], visible=False, constrain="domain",
                         scaleanchor=f"x{'' if col == 1 else col}", row=1, col=col)
    fig.update_layout(meta=stacked_on_narrow(fig, title, len(names)))
    return fig


def stacked_on_narrow(fig, title: str, n: int, below: int = 600) -> dict:
    """The ``layout.meta`` with which the page stacks a row of n panels on a phone (``sphinx_ext.STACK_ON_NARROW``).

    ``narrow`` holds the stacked layout as ``Plotly.relayout`` settings: the panels one above the other, each about
    as tall as the phone is wide, the title on two lines, the legend above the panels, the slider the full width
    and the buttons under it. ``wide`` holds the same settings as the figure has them (unset ones as None, which
    restores plotly's default), so turning the phone back restores the row.
    """
    narrow = {"height": 330 * n + 230, "title.text": "<br>".join(textwrap.wrap(title, 40)), "margin.t": 110,
              "margin.b": 150, "legend.orientation": "h", "legend.x": 0, "legend.xanchor": "left", "legend.y": 1.0,
              "legend.yanchor": "bottom", "sliders[0].x": 0, "sliders[0].len": 1, "sliders[0].pad.t": 20,
              "updatemenus[0].pad.t": 100}
    for i in range(n):
        x, y = f"xaxis{i + 1 if i else ''}", f"yaxis{i + 1 if i else ''}"
        top, bottom = 1 - i / n - 0.06, 1 - (i + 1) / n + 0.02  # room above each panel for its title
        narrow |= {f"{x}.domain": [0, 1], f"{y}.domain": [bottom, top], f"annotations[{i}].x": 0.5,
                   f"annotations[{i}].y": top + 0.01}
    wide = {key: fig.layout[key] for key in narrow}
    wide = {key: list(v) if isinstance(v, tuple) else v for key, v in wide.items()}
    return {"stack_below": below, "narrow": narrow, "wide": wide}


def widget_scrubber(trajectories: dict[str, object], title: str = ""):
    """ipywidgets Play + slider that redraws the phase circles at the chosen step (live in JupyterLab)."""
    import ipywidgets as widgets
    from IPython.display import display

    T = len(next(iter(trajectories.values()))) - 1
    play = widgets.Play(value=T, min=0, max=T, step=1, interval=200, description="play")
    slider = widgets.IntSlider(value=T, min=0, max=T, step=1, description="step t", readout=False)
    readout = widgets.Label(f"step t = {T} of {T}")
    widgets.jslink((play, "value"), (slider, "value"))
    slider.observe(lambda change: setattr(readout, "value", f"step t = {change['new']} of {T}"), names="value")
    out = widgets.Output()

    def draw(t: int, replace: bool = True) -> None:
        with out:
            if replace:
                out.clear_output(wait=True)
            fig = phase_circles({k: v[t] for k, v in trajectories.items()}, f"{title} (step t = {t} of {T})")
            display(fig)
            plt.close(fig)

    slider.observe(lambda change: draw(change["new"]), names="value")
    draw(T, replace=False)  # the first frame, also what a saved (kernel-less) copy shows
    return widgets.VBox([widgets.HBox([play, slider, readout]), out])
