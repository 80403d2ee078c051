"""Figures of the studies (``results/``): accuracy over splits, paired comparisons as forests, the energy study's
curves, the ladder, the findings' panels and the coupling study's. Each takes a reader of ``studies`` or ``protocols``
(or its rows) and returns a matplotlib ``Figure``; ``plotting`` holds the figures of one trained model.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .plotting import DIFFERENT_COLOUR, SAME_COLOUR, readable
from .stats import interval95
from .table import TASKS


def evidence_accuracy(evidence, models: list[str]) -> Figure:
    """Held-out accuracy per split for each model, mean and 95 % interval over seeds, one panel per task.

    ``evidence`` is a ``studies.Evidence``.
    """
    splits, seeds = evidence.splits(), evidence.seeds
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    lowest = 40.0  # the axis starts here unless an interval reaches lower (near chance at few training icons)
    for ax, task in zip(axes, ("same-different", "rmts")):
        for k, model in enumerate(models):
            stats = [interval95(evidence.accuracies(model, task, m)) for m in splits]
            lowest = min([lowest] + [100 * (mean - (half if half == half else 0)) - 3 for mean, half, n in stats if n])
            xs = [i + (k - 1) * 0.12 for i in range(len(splits))]
            ax.errorbar(xs, [100 * s[0] for s in stats], yerr=[100 * s[1] for s in stats], fmt="o-", capsize=3,
                        label=model)
        ax.set_xticks(range(len(splits)), [str(m) for m in splits])
        ax.set_xlabel("training icons m (the other 100 - m held out)", fontsize=8)
        ax.set_title(f"{task}: held-out accuracy, mean and 95 % interval over {len(seeds)} seeds", fontsize=9)
        ax.axhline(50, color="grey", lw=0.6, ls=":")
    axes[0].set_ylim(lowest, 101)  # shared by both panels
    axes[0].set_ylabel("held-out accuracy (%)")
    axes[0].legend(fontsize=8, loc="lower left")
    return readable(fig)


def energy_over_time(study, dynamics: str = "converged") -> Figure:
    """The poster's Figure 6 in the partner-swap design: same minus different energy per pair over t, one panel
    per variant; the line is the mean over runs, the band its 95 % interval (below 0: same pairs lower)."""
    variants = study.variants
    fig, axes = plt.subplots(1, len(variants), figsize=(4.2 * len(variants), 3.2), squeeze=False, sharey=True)
    for ax, v in zip(axes[0], variants):
        runs = [c["curves"][dynamics] for c in study.curves.values() if c["variant"] == v]
        t = np.asarray(runs[0]["t"])
        gaps = np.array([np.subtract(r["same"], r["different"]) for r in runs])  # (runs, steps)
        stats = np.array([interval95(step)[:2] for step in gaps.T])
        half = np.nan_to_num(stats[:, 1])
        ax.axhline(0, color="grey", lw=0.6)
        ax.plot(t, stats[:, 0], color=SAME_COLOUR, label="mean over runs")
        ax.fill_between(t, stats[:, 0] - half, stats[:, 0] + half, color=SAME_COLOUR, alpha=0.25, lw=0,
                        label="95 % interval")
        ax.set_title(f"{v} ({len(runs)} runs)", fontsize=9)
        ax.set_xlabel("time gamma t")
    axes[0, 0].set_ylabel("E(same) - E(swapped), per pair")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"partner-swap energy gap over time, {dynamics} dynamics, held-out icons (below 0: same pairs lower)",
                 fontsize=10)
    return readable(fig)


def lock_by_angle(study) -> Figure:
    """P(a feature of a different pair ends locked | the angle between its two drives), per variant, over runs."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for v in study.variants:
        rows = [r for r in study.lock_by_angle if r["variant"] == v]
        bins = list(dict.fromkeys((r["angle_low"], r["angle_high"]) for r in rows))
        centre, mean, half = [], [], []
        for lo, hi in bins:
            values = [r["locked"] for r in rows
                      if (r["angle_low"], r["angle_high"]) == (lo, hi) and r["locked"] is not None]
            if values:
                m, h, _ = interval95(values)
                centre.append((lo + hi) / 2), mean.append(100 * m), half.append(100 * (h if h == h else 0))
        ax.errorbar(centre, mean, yerr=half, fmt="o-", capsize=3, label=v)
    ax.set_xlabel("angle between the two objects' drives c_1,d and c_2,d (degrees)")
    ax.set_ylabel("features locked at t = T (%)")
    ax.set_ylim(-3, 103)
    ax.set_title("different pairs of held-out icons: locking follows drive agreement (mean, 95 % interval over runs)",
                 fontsize=9)
    ax.legend(fontsize=7)
    return readable(fig)


def ladder(authors) -> Figure:
    """Held-out accuracy on each rung of the ladder from the authors' protocol to our defaults, one panel per
    task, one line per split (mean and 95 % interval over seeds) and each seed as a dot (a rung where some seeds
    fail to train shows as two clusters). ``authors`` is a ``protocols.Authors``."""
    rungs = authors.rungs()
    splits = sorted({r["m"] for r in authors.ladder}, reverse=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    for ax, (task, short) in zip(axes, TASKS):
        for k, m in enumerate(splits):
            seeds = [list(authors.scores(authors.ladder, rung, task, m).values()) for rung in rungs]
            stats = [interval95(v) for v in seeds]
            xs = np.arange(len(rungs)) + (k - 0.5) * 0.2
            line = ax.errorbar(xs, [100 * s[0] for s in stats], yerr=[100 * np.nan_to_num(s[1]) for s in stats],
                               fmt="o-", capsize=3, label=f"m = {m}: mean, 95 % interval ({stats[0][2]} seeds)")
            for x, v in zip(xs, seeds):
                ax.plot(np.full(len(v), x + 0.07), [100 * a for a in v], ".", ms=3, alpha=0.5,
                        color=line[0].get_color())
        ax.set_xticks(range(len(rungs)), [r.split(" ", 1)[1] for r in rungs], rotation=60, ha="right", fontsize=8)
        ax.set_title(f"{short}: held-out accuracy, each rung adds one change", fontsize=9)
        ax.grid(axis="y", lw=0.3)
    axes[0].set_ylabel("held-out accuracy (%)")
    axes[0].legend(fontsize=8)
    return readable(fig)


def two_energies(runs: list[dict], title: str, pairs: int) -> Figure:
    """Mean energy over t of same and different held-out pairs, the poster's E beside the released code's
    quantity, on the same trajectories. ``runs``: ``TwoEnergies.curves`` of each run; with several runs the
    line is their mean and the band its 95 % interval."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, (quantity, label) in zip(axes, (("poster", "the poster's E"),
                                            ("released", "the released code's quantity"))):
        for kind, colour in (("same", SAME_COLOUR), ("different", DIFFERENT_COLOUR)):
            curves = np.array([r[quantity][kind] for r in runs])  # (runs, T + 1)
            stats = np.array([interval95(step)[:2] for step in curves.T])
            t = np.arange(curves.shape[1])
            ax.plot(t, stats[:, 0], color=colour, label=f"{kind} pairs")
            if len(runs) > 1:
                ax.fill_between(t, stats[:, 0] - stats[:, 1], stats[:, 0] + stats[:, 1], color=colour, alpha=0.25, lw=0)
        runs_note = f"{len(runs)} runs, " if len(runs) > 1 else ""
        ax.set_title(f"{label} ({runs_note}{pairs} pairs of each kind{' per run' if runs_note else ''})", fontsize=9)
        ax.set_xlabel("Kuramoto step t")
    axes[0].set_ylabel("mean energy over pairs")
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    return readable(fig)


def paired_differences(comparisons: list[dict], label, xlabel: str, title: str) -> Figure:
    """A forest of paired comparisons, one panel per task (``TASKS``): every seed a dot, the mean difference and its
    95 % interval a bar, a star and a colour (green above 0, red below) where Holm's correction resolves it.

    ``comparisons``: ``stats.resolve``'d rows with "task" (the short name), "differences" (fractions) and "said";
    ``label(row)`` names a row on the y axis."""
    tasks = [short for _, short in TASKS if any(c["task"] == short for c in comparisons)]
    rows_per_task = max(sum(c["task"] == short for c in comparisons) for short in tasks)
    height = max(2.4, 0.9 + 0.32 * rows_per_task)  # at least room for the title and the axis
    fig, axes = plt.subplots(1, len(tasks), figsize=(10, height), sharey=True, squeeze=False)
    for ax, short in zip(axes[0], tasks):
        rows = [c for c in comparisons if c["task"] == short]
        for y, c in enumerate(rows):
            diffs = [100 * d for d in c["differences"]]
            mean, half, n = interval95(diffs)
            resolved = c.get("holm", 0.0 if c["said"] != "not resolved" else 1.0) < 0.05
            colour = ("#1b7837" if mean > 0 else "#b2182b") if resolved else "0.3"
            ax.errorbar(mean, y, xerr=np.nan_to_num(half), fmt="o", color=colour, capsize=3)
            ax.plot(diffs, np.full(len(diffs), y + 0.22), ".", ms=4, alpha=0.6, color=colour)
            if resolved:
                ax.annotate("*", (mean, y), xytext=(0, 4), textcoords="offset points", ha="center", color=colour)
        ax.axvline(0, color="grey", lw=0.6)
        ax.set_yticks(range(len(rows)), [label(c) for c in rows], fontsize=8)
        ax.set_xlabel(xlabel, fontsize=8)
        n = max((len(c["differences"]) for c in rows), default=0)
        ax.set_title(f"{short} ({n} seeds)", fontsize=9)
        ax.grid(axis="x", lw=0.3)
    axes[0, 0].invert_yaxis()  # shared: the first row on top
    fig.suptitle(title + "; dots: seeds; bar: mean and 95 % interval; * resolved after Holm", fontsize=9)
    return readable(fig)


def remedies(rem) -> Figure:
    """Each candidate remedy minus the default model on validation icons (``paired_differences``). ``rem``:
    ``studies.Paired``."""
    comparisons = rem.comparisons()
    splits = sorted({c["m"] for c in comparisons}, reverse=True)
    return paired_differences(comparisons, lambda c: c["candidate"] + (f" (m = {c['m']})" if len(splits) > 1 else ""),
                              "candidate minus default, validation accuracy (points)",
                              f"few-icon remedies at m = {', '.join(map(str, splits))} on validation icons: candidate "
                              "minus default, paired by seed")


def findings(f) -> Figure:
    """The findings page's four panels (``findings.Findings``): held-out accuracy against the number of training icons
    beside the authors' released runs; J_OUT's effect under their protocol and under ours; energy descent against
    the Euler step; locking of different pairs' features against the angle between their two drives."""
    fig, axes = plt.subplots(2, 2, figsize=(9, 5.4))
    ax = axes[0, 0]
    splits = f.few.splits()
    for (task, short), colour in zip(TASKS, (SAME_COLOUR, DIFFERENT_COLOUR)):
        stats = [interval95(list(f.few.ev.by_seed("oscillator", task, m).values())) for m in splits]
        ax.errorbar(range(len(splits)), [100 * s[0] for s in stats], yerr=[100 * np.nan_to_num(s[1]) for s in stats],
                    fmt="o-", color=colour, capsize=3, label=f"ours, {short}")
        theirs = [(i, f.authors.theirs("default", task, m)) for i, m in enumerate(splits) if m in f.authors.splits()]
        ax.errorbar([i + 0.12 for i, _ in theirs], [v[0] for _, v in theirs], yerr=[v[1] for _, v in theirs], fmt="s--",
                    color=colour, alpha=0.5, capsize=2, ms=4, label=f"authors' runs, {short}")
    ax.axhline(100 * 0.5, color="grey", lw=0.6, ls=":")
    ax.set_xticks(range(len(splits)), [str(m) for m in splits])
    ax.set_xlabel("training icons m (the rest held out)", fontsize=8)
    ax.set_ylabel("held-out accuracy (%)", fontsize=8)
    ax.set_title("(a) generalisation and transfer, 5 seeds", fontsize=9)
    ax.legend(fontsize=6.5, loc="lower left")

    ax = axes[0, 1]
    width = 0.2
    for j, ((task, short), colour) in enumerate(zip(TASKS, (SAME_COLOUR, DIFFERENT_COLOUR))):
        for k, (label, effect, hatch) in enumerate((
                ("authors' protocol", lambda m: f.authors.j_out_effect(task, m), ""),
                ("ours", lambda m: f.mech.paired("oscillator", "J_OUT = 0", task, m), "//"))):
            stats = [interval95([100 * d for d in effect(m)]) for m in f.authors.splits()]
            xs = np.arange(len(stats)) + (2 * j + k - 1.5) * width
            ax.bar(xs, [s[0] for s in stats], width, yerr=[s[1] for s in stats], color=colour,
                   alpha=0.45 if k else 0.85, hatch=hatch, capsize=2, label=f"{short}, {label}", edgecolor=colour,
                   error_kw={"ecolor": "0.35"})
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xticks(range(len(f.authors.splits())), [f"m = {m}" for m in f.authors.splits()], fontsize=8)
    ax.set_ylabel("accuracy with J_OUT minus without (points)", fontsize=8)
    ax.set_title("(b) J_OUT's effect, paired by seed, 5 seeds", fontsize=9)
    ax.legend(fontsize=6.5, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)  # off the bars

    ax = axes[1, 0]
    for variant, colour in (("symmetric J, Omega = 0", SAME_COLOUR), ("oscillator", DIFFERENT_COLOUR)):
        rows = [r for r in f.energy.select("descent", variant=variant, dynamics="curve") if r["rtol"] > 0]
        gammas = sorted({r["gamma"] for r in rows})
        stats = [interval95([100 * r["monotone_share"] for r in rows if r["gamma"] == g]) for g in gammas]
        ax.errorbar(gammas, [s[0] for s in stats], yerr=[np.nan_to_num(s[1]) for s in stats], fmt="o-", color=colour,
                    capsize=3, label="symmetric J, Omega = 0" if variant != "oscillator" else "learned J, Omega")
    ax.set_xscale("log")
    ax.set_xticks(gammas, [f"{g:g}" for g in gammas])
    ax.minorticks_off()
    ax.set_xlabel("Euler step gamma (time span gamma T = 50)", fontsize=8)
    ax.set_ylabel("trajectories that never rise (%)", fontsize=8)
    ax.set_title("(c) energy descent, 15 models each", fontsize=9)
    ax.legend(fontsize=6.5)

    ax = axes[1, 1]
    rows = f.energy.select("lock_by_angle", variant="oscillator")
    bins = list(dict.fromkeys((r["angle_low"], r["angle_high"]) for r in rows))
    shares = []
    for lo, hi in bins:
        here = [r for r in rows if (r["angle_low"], r["angle_high"]) == (lo, hi) and r["locked"] is not None]
        shares.append(100 * sum(r["locked"] * r["features"] for r in here) / max(1, sum(r["features"] for r in here)))
    ax.bar([(lo + hi) / 2 for lo, hi in bins], shares, [hi - lo for lo, hi in bins], color=DIFFERENT_COLOUR, alpha=0.6,
           edgecolor="white")
    ax.set_xlabel("angle between the two objects' drives (degrees)", fontsize=8)
    ax.set_ylabel("features that lock (%)", fontsize=8)
    ax.set_title("(d) different pairs: locking follows the drives", fontsize=9)
    ax.set_ylim(0, 100)
    for a in axes.flat:
        a.tick_params(labelsize=7)
    return readable(fig)


def coupling_factorial(c) -> Figure:
    """The factorial (``protocols.Coupling``): J_OUT's effect with the chosen change off and on, one panel per split,
    one line per task; mean and 95 % interval over the seeds whose four runs fit. Lines that fall from left to right:
    the change takes J_OUT's effect away."""
    rows = c.interaction()
    splits = sorted({r["m"] for r in rows}, reverse=True)
    fig, axes = plt.subplots(1, len(splits), figsize=(4.6 * len(splits), 3.4), sharey=True, squeeze=False)
    for ax, m in zip(axes[0], splits):
        for r, colour in zip([r for r in rows if r["m"] == m], (SAME_COLOUR, DIFFERENT_COLOUR)):
            stats = [interval95([100 * d for d in r[side]]) for side in ("off", "on")]
            ax.errorbar([0, 1], [s[0] for s in stats], yerr=[np.nan_to_num(s[1]) for s in stats], fmt="o-",
                        color=colour, capsize=3, label=f"{r['task']} ({len(r['seeds'])} seeds)")
        ax.axhline(0, color="grey", lw=0.6)
        ax.set_xticks([0, 1], [c.choice["off_rung"].split(" ", 1)[1], c.choice["on_rung"].split(" ", 1)[1]], fontsize=8)
        ax.set_xlim(-0.4, 1.4)
        ax.set_title(f"m = {m}", fontsize=9)
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("J_OUT learned minus J_OUT = 0 (points)", fontsize=8)
    fig.suptitle("J_OUT's effect without and with the change, paired by seed: mean and 95 % interval", fontsize=9)
    return readable(fig)


def coupling_dose(c) -> Figure:
    """The dose (``protocols.Coupling``): J_OUT's effect against our CNN's width at our defaults (left), beside the
    held-out accuracy of the model with J_OUT learned at each width (right); mean and 95 % interval over seeds."""
    effects, widths = c.dose_effects(), c.widths()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    xs = np.log2([w[0] for w in widths])
    labels = ["-".join(map(str, w)) for w in widths]
    for (task, short), colour in zip(TASKS, (SAME_COLOUR, DIFFERENT_COLOUR)):
        stats = [interval95([100 * v for v in effects[w].get(task, {}).values()]) for w in widths]
        axes[0].errorbar(xs, [s[0] for s in stats], yerr=[np.nan_to_num(s[1]) for s in stats], fmt="o-", color=colour,
                         capsize=3, label=short)
        acc = c.dose_accuracy(task)
        stats = [interval95([100 * v for v in acc[w]]) for w in widths]
        axes[1].errorbar(xs, [s[0] for s in stats], yerr=[np.nan_to_num(s[1]) for s in stats], fmt="o-", color=colour,
                         capsize=3, label=short)
    axes[0].axhline(0, color="grey", lw=0.6)
    axes[0].set_ylabel("J_OUT learned minus J_OUT = 0 (points)", fontsize=8)
    axes[1].set_ylabel("held-out accuracy, J_OUT learned (%)", fontsize=8)
    for ax in axes:
        ax.set_xticks(xs, labels, fontsize=8)
        ax.set_xlabel("CNN channels per block", fontsize=8)
        ax.legend(fontsize=7)
    return readable(fig)


def coupling_inside(inside: dict[str, list[dict]], backgrounds: list[tuple[str, str]]) -> Figure:
    """What J_OUT does to the dynamics (the coupling studies' ``displacement`` and ``lock_by_angle`` tables) in each of
    ``backgrounds`` ((variant, label) pairs): left, how far J_OUT moves each oscillator's final state (degrees, same and
    different pairs); right, P(a different pair's feature locks | the angle between its two drives) with the learned
    J_OUT and with J_OUT = 0 at test time."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    width = 0.76 / len(backgrounds)
    for k, ((background, label), colour) in enumerate(zip(backgrounds, (DIFFERENT_COLOUR, SAME_COLOUR, "0.45"))):
        rows = [r for r in inside["displacement"] if r["variant"] == background]
        for j, kind in enumerate(("same", "different")):
            mean, half, n = interval95([r["moved_by_j_out"] for r in rows if r["pairs"] == kind])
            axes[0].bar(j + (k - (len(backgrounds) - 1) / 2) * width, mean, width * 0.95, yerr=np.nan_to_num(half),
                        color=colour, alpha=0.75, capsize=3, label=f"{label} ({n} models)" if j == 0 else None)
        bins = [r for r in inside["lock_by_angle"] if r["variant"] == background]
        for way, style in (("learned", "-"), ("J_OUT = 0", ":")):
            edges = list(dict.fromkeys((r["angle_low"], r["angle_high"]) for r in bins))
            stats = [interval95([100 * r["locked"] for r in bins if r["coupling"] == way and r["locked"] is not None
                                 and (r["angle_low"], r["angle_high"]) == e]) for e in edges]
            axes[1].errorbar([(lo + hi) / 2 for lo, hi in edges], [s[0] for s in stats],
                             yerr=[np.nan_to_num(s[1]) for s in stats], fmt="o" + style, color=colour, capsize=2, ms=3,
                             label=f"{label}, J_OUT {'learned' if way == 'learned' else '= 0'}")
    axes[0].set_xticks([0, 1], ["same pairs", "different pairs"])
    axes[0].set_ylabel("angle J_OUT moves x(T) (degrees)", fontsize=8)
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel("angle between the two objects' drives (degrees)", fontsize=8)
    axes[1].set_ylabel("features that lock (%)", fontsize=8)
    axes[1].set_ylim(-3, 103)
    axes[1].legend(fontsize=6.5)
    return readable(fig)
