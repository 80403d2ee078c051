"""What of the poster holds: the book's answer in three sentences (``thesis``), each of the poster's claims graded on
one scale (``engine.GRADES``) with the numbers that carry it and the chapter with the evidence, and how our model
differs from the poster's and what each difference is worth.

Each claim is written in the file of the study it reads (``few``, ``mechanism``, ``coupling``, ``energy``); here they
are gathered, and the README's and the intro's generated blocks are written from them. Every verdict is a rule
applied to the committed studies (``results/``), so a rerun that changes the numbers changes the words.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from oscbind_lite.config import RunConfig, with_overrides

from .plotting import DIFFERENT_COLOUR, SAME_COLOUR, readable
from .studies import coupling as coupling_study, energy as energy_study, few as few_study, mechanism as mechanism_study
from .studies import markdown as studies_markdown
from .studies.authors import Authors, authors_protocol
from .studies.coupling import FIT, Coupling
from .studies.energy import CLAIMED, DISAGREE, EnergyStudy
from .studies.engine import GRADES, SHORT_GRADES, Claim, mean
from .studies.few import FewIcons
from .studies.mechanism import Mechanism
from .studies.stats import interval95
from .studies.table import PM, TASKS, Link, Table, percent, signed_points


@dataclass
class Findings:
    """The committed studies the claims are read from."""

    mech: Mechanism
    few: FewIcons
    authors: Authors
    energy: EnergyStudy
    coupled: Coupling | None = None  # the coupling study, where results/coupling exists

    @classmethod
    def load(cls, results: str | Path) -> Findings:
        results = Path(results)
        mech = Mechanism.load(results / "mechanism", results / "validation")
        return cls(mech, FewIcons.load(results / "few", mech),
                   Authors.load(results / "authors", results / "ladder",
                                results / "published" / "osc-network.csv", mech),
                   EnergyStudy.load(results / "energy"),
                   Coupling.load(results) if (results / "coupling" / "runs.csv").exists() else None)

    def claims(self) -> list[Claim]:
        """Every claim, in the poster's order, each from the file of the study it reads."""
        return [few_study.generalisation(self, "same-different"), few_study.generalisation(self, "rmts"),
                mechanism_study.baselines(self), coupling_study.binding(self), energy_study.descent(self),
                energy_study.same_lower(self), energy_study.locking(self)]

    # ---- the answer in plain words ----

    def thesis(self) -> list[str]:
        """The book's answer in three sentences, each with its number: what carries generalisation, whether the
        coupling is needed, and what of the energy story holds."""
        acc = {t: list(self.few.ev.by_seed("oscillator", t, 15).values()) for t, _ in TASKS}
        power = {p["task"]: p for p in self.mech.power()}
        concat = next(c for c in self.mech.comparisons() if (c["other"], c["task"], c["m"]) == ("concat", "RMTS", 15))
        uncoupled = [c for c in self.mech.comparisons() if c["other"] in self.mech.ablations]
        first = (f"The model generalises to new icons ({percent(acc['same-different'])} % same/different, "
                 f"{percent(acc['rmts'])} % RMTS from 15 training icons) through its relational bottleneck, not "
                 "through binding: a per-feature comparator with no oscillators is only "
                 f"{signed_points(power['same/different']['differences']).lstrip('+')} points behind it (m = 95, 20 "
                 "folds), a classifier without the bottleneck "
                 f"{signed_points(concat['differences']).lstrip('+')} points behind (RMTS, m = 15).")
        cells = [c for c in self.mech.comparisons() if c["other"] == "J_OUT = 0" and c["m"] == 50]
        sd = next(c for c in cells if c["task"] == "same/different")
        theirs = self.authors.j_out_effect("same-different", 50)
        second = ("Coupling the two objects is not needed under our training (accuracy with J_OUT minus without: "
                  f"{signed_points(sd['differences'])} points at m = 50; "
                  + ("no uncoupled variant is resolved from the full model at any split"
                     if all(c["said"] == "not resolved" for c in uncoupled) else
                     "uncoupled variants are resolved at some splits only")
                  + f"); it helps under the authors' training, in one of two sets of runs ({signed_points(theirs)}).")
        descent, lower, lock = energy_study.descent(self), energy_study.same_lower(self), energy_study.locking(self)
        mono = {g: [r["monotone_share"] for r in self.energy.select("descent", variant=v, gamma=g, dynamics="trained")
                    if r["rtol"] > 0] for v, g in CLAIMED.items()}
        poster = [r for r in self.authors.energies if r["quantity"] == "poster" and r["variant"] != "no J_OUT"]
        rows = [r for r in self.energy.select("lock_by_angle", variant="oscillator") if r["locked"] is not None
                and r["angle_low"] >= DISAGREE]
        apart = sum(r["locked"] * r["features"] for r in rows) / sum(r["features"] for r in rows)
        third = ("Of the energy claims, "
                 + {"holds": "descent holds", "holds in part": "descent holds only for small Euler steps",
                    "not supported": "descent fails"}[descent.grade]
                 + f" ({100 * mean(mono[0.1]):.0f} % of trajectories at gamma 0.1, {100 * mean(mono[0.5]):.0f} % at "
                 "our 0.5), same pairs "
                 + ("do not settle lower" if lower.grade == "not supported" else "settle lower")
                 + f" (higher in {sum(r['difference'] > 0 for r in poster)} of {len(poster)} authors'-protocol runs), "
                 "and locking "
                 + ("follows drive agreement, not sharing alone" if lock.grade != "holds"
                    else "is of shared features only")
                 + f" ({100 * apart:.0f} % of features with drives {DISAGREE:.0f} degrees apart or more lock).")
        return [first, second, third]

    def counts(self) -> dict[str, int]:
        """How many claims have each grade."""
        claims = self.claims()
        return {g: sum(c.grade == g for c in claims) for g in GRADES}

    def scale(self) -> str:
        """The grading scale in one paragraph, with the count of each grade."""
        counts = self.counts()
        return ("**Grades**, from the cells each claim was tested in under our protocol (its row names them; a cell "
                "counts when resolved after the planned correction): "
                + "; ".join(f"**{g}** ({counts[g]} of {sum(counts.values())}), {SHORT_GRADES[g]}" for g in GRADES)
                + ".")

    def table(self, titles: dict[str, str]) -> Table:
        """The claims as a table whose last column links each to its chapter (``titles``: chapter -> link text)."""
        return Table(["the poster's claim", "grade", "where it holds and where not", "the numbers that carry it",
                      "evidence"],
                     [[c.claim, c.grade, c.verdict, c.number,
                       Link(titles.get(c.chapter, c.chapter), f"{c.chapter}.html")] for c in self.claims()],
                     caption=f"Table 1. The poster's claims against our evidence; numbers are mean{PM}95 % half-width "
                             "over seeds (or models), on held-out icons")

    def markdown(self, link: str = "book/notebooks/{}.ipynb") -> str:
        """The scale and the claims as markdown for the README, each claim linked to its chapter (``link`` formats the
        stem)."""
        lines = [self.scale(), "",
                 "| the poster's claim | grade | where it holds and where not | the numbers that carry it |",
                 "|---|---|---|---|"]
        lines += [f"| {c.claim} ([{c.chapter}]({link.format(c.chapter)})) | {c.grade} | {c.verdict} | {c.number} |"
                  for c in self.claims()]
        return "\n".join(lines).replace("\u00a0", " ")

    # ---- how our model differs ----

    DIFFERENCES = (  # (ladder rung, what differs, how a RunConfig shows it, why we changed it)
        (8, "readout", lambda r: r.model.readout,
         "rho is flat at a locked pair, so it gives no gradient there; the chord is not"),
        (6, "start phases", lambda r: r.model.start,
         "the poster's \"random phases\", shared, so identical encodings stay in phase"),
        (4, "Euler step gamma", lambda r: f"{r.model.gamma:g}", "settles within T = 25 steps"),
        (3, "features D", lambda r: r.model.D, "more features to compare"),
        (5, "Omega", lambda r: "fixed" if r.model.fixed_omega else "learned" if r.model.learn_omega else "0",
         "learned, as in the poster's equation"),
        (7, "initialisation", lambda r: r.model.init, "small couplings, unit-scale drives"),
        (10, "CNN", lambda r: r.model.encoder, "faster and more accurate on this CPU"),
        (9, "training", lambda r: (f"{r.stage1.pool:,} fixed pairs" if r.stage1.pool else "fresh pairs") +
         f", lr {r.stage1.lr:g}", "new renderings every batch; lr chosen on validation icons"),
        (1, "rendering", lambda r: f"{'ink-cropped' if r.data.crop else 'framed'}, "
                                   f"scale {r.data.scale_min:g}-{r.data.scale_max:g}",
         "size never gives the answer away"),
        (2, "split", lambda r: "first m" if r.data.split == "first" else "random",
         "results do not hang on one set of test icons"),
        (11, "icons", lambda r: "ESBN" if r.data.glyphs else "Unicode", "nothing to download"),
    )

    def differences_table(self, m: int = 50) -> Table:
        """Each difference: their setting and ours, why, and what it was worth on the ladder (the step to its rung from
        the rung below, paired by seed, at m); a step into or out of a rung where some seed failed to fit is marked."""
        theirs, ours = with_overrides(RunConfig(), **authors_protocol(m, "ESBN")), RunConfig()
        steps = {(t, rung): d for t, mm, rung, d, _ in self.authors.ladder_steps() if mm == m}
        rungs = self.authors.rungs()
        rows = []
        for k, what, show, why in self.DIFFERENCES:
            fails = any(min(self.authors.fitted(r, "same-different", m)) < FIT for r in rungs[k - 1:k + 1])
            worth = " / ".join(signed_points(steps[(t, rungs[k])]) for t, _ in TASKS)
            rows.append([what, f"{show(theirs)} \u2192 {show(ours)}", why, worth + (" *" if fails else "")])
        return Table(["", "authors' \u2192 ours", "why", f"worth at m = {m}, S/D / RMTS (points)"], rows,
                     caption="Table 2. How our model and protocol differ from the authors' released ones. Worth: the "
                             "ladder's step to that rung from the rung below, mean" + PM + "95 % half-width over 5 "
                             "seeds, paired; each rung keeps the changes below it, so the order matters; *: seeds fail "
                             "to fit next to it")


# The generated blocks of the front pages, between "<!-- NAME: python -m oscbind_tools findings --write -->" and
# "<!-- /NAME -->": the thesis opens the README and the book's intro; the claims table follows it in the README.
BLOCKS = {"README.md": ("thesis", "findings", "studies"), "book/intro.md": ("thesis",)}


def marker(name: str) -> tuple[str, str]:
    return f"<!-- {name}: python -m oscbind_tools findings --write -->\n", f"<!-- /{name} -->"


def blocks(findings: Findings) -> dict[str, str]:
    """The generated blocks of the front pages: the thesis, the graded claims, the table of studies."""
    return {"thesis": " ".join(findings.thesis()).replace("\u00a0", " "), "findings": findings.markdown(),
            "studies": studies_markdown()}


def block(text: str, name: str) -> str | None:
    """The generated block NAME of a page's text (None: the page has no such block)."""
    start, end = marker(name)
    if start not in text or end not in text:
        return None
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def write(findings: Findings, root: Path) -> list[Path]:
    """Rewrite the generated blocks of the README and the intro under root from the results; returns the pages
    changed. A page without its markers is refused: the blocks are placed by hand once."""
    made, changed = blocks(findings), []
    for page, names in BLOCKS.items():
        path = root / page
        text = new = path.read_text()
        for name in names:
            start, end = marker(name)
            if block(new, name) is None:
                raise ValueError(f"{page} has no {start.strip()} ... {end} block")
            head, rest = new.split(start, 1)
            new = head + start + made[name] + "\n" + end + rest.split(end, 1)[1]
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def figure(f: Findings) -> Figure:
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
