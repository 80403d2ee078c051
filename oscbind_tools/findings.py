"""What of the poster holds: each of its claims, our verdict in plain words, the one number that carries it, and the
chapter with the evidence; then how our model differs from the poster's and what each difference is worth.

Every verdict is a rule applied to the committed studies (``results/``), so a rerun that changes the numbers changes
the words; nothing here is typed by hand but the claims and the reasons for our choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from oscbind_lite.config import RunConfig, with_overrides

from .ladder import FIT, LADDER, authors_protocol
from .protocols import Authors, Coupling
from .stats import holm, interval95, paired_p
from .energy_study import EnergyStudy
from .studies import FewIcons, Mechanism
from .table import PM, TASKS, Link, Table, percent, signed, signed_points

CHANCE = 0.5
AGREE, DISAGREE = 30.0, 60.0  # drive angles (degrees) below which two features count as shared, above which as not
MONOTONE = 0.99  # the energy descends in a model when at least this share of its trajectories never rises
LOCKS = 0.8  # shared features lock when at least this share of those whose drives agree lock

# One scale for every claim. A claim is tested in several cells under our protocol (splits, tasks, step sizes, models:
# its row says which); a cell is for the claim when it is resolved in the claimed direction, against it when resolved
# the other way, else neither. What the authors' protocol gives is said in the verdict, beside the grade.
GRADES = {
    "holds": "resolved in the claimed direction in every cell we tested under our protocol",
    "holds in part": "resolved in the claimed direction in some cells, and against it in fewer",
    "not supported": "resolved in the claimed direction in no cell, or against it at least as often as for it",
}


SHORT_GRADES = {"holds": "for the claim in every cell", "holds in part": "for it in some, against it in fewer",
                "not supported": "for it in none, or against it as often as for it"}


def grade(cells_for: int, cells_against: int, cells: int) -> str:
    """The scale of ``GRADES`` on a claim's cells."""
    if cells and cells_for == cells:
        return "holds"
    if cells_for == 0 or cells_against >= cells_for:
        return "not supported"
    return "holds in part"


@dataclass
class Claim:
    """One claim of the poster, read against our evidence: its grade on the scale of ``GRADES``, the verdict in words
    (where it holds and where not, and what the authors' protocol gives), the numbers that carry it, the chapter."""

    claim: str
    grade: str
    verdict: str
    number: str
    chapter: str  # the chapter notebook with the evidence ("mechanism")


def _mean(values) -> float:
    return sum(values) / len(values)


def _above(values, level: float = 0.0) -> bool:
    """Whether the 95 % interval of values lies above level."""
    mean, half, n = interval95(values)
    return n > 1 and mean - half > level


def _below(values, level: float = 0.0) -> bool:
    mean, half, n = interval95(values)
    return n > 1 and mean + half < level


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


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

    # ---- the claims ----

    def generalisation(self, task: str, m: int = 15) -> Claim:
        """Held-out accuracy of the oscillator model at every split (mechanism study and make few) against chance: a
        cell is for the claim when its 95 % interval lies above chance."""
        by_m = {k: list(self.few.ev.by_seed("oscillator", task, k).values()) for k in self.few.splits()}
        above = [k for k in by_m if _above(by_m[k], CHANCE)]
        top, low = max(by_m), min(by_m)
        number = (f"{percent(by_m[m])} % at m = {m} ({len(by_m[m])} seeds); {percent(by_m[top])} at m = {top}, "
                  f"{percent(by_m[low])} at m = {low} (chance 50)")
        verdict = (f"above chance at every split from m = {top} down to m = {low}, falling with fewer icons"
                   if len(above) == len(by_m) else
                   f"above chance at m = {_and([str(k) for k in sorted(above, reverse=True)])} only" if above else
                   "at chance")
        claim = "Generalises to new icons" if task == "same-different" else "Transfers to RMTS from frozen coherence"
        return Claim(claim, grade(len(above), 0, len(by_m)), verdict, number, "mechanism")

    def baselines(self) -> Claim:
        """The oscillator against the baselines of the mechanism study (its planned Holm family within each task), and
        the separately planned 20-fold test at m = 95 against the strongest baseline."""
        cells = [c for c in self.mech.comparisons() if c["other"] not in ("J_OUT = 0", "no coupling")]
        power = self.mech.power()
        won = [c for c in cells if c["said"] == "oscillator higher"]
        lost = [c for c in cells if c["said"] == "oscillator lower"]
        narrowly = [p for p in power if p["holm"] < 0.05 and sum(p["differences"]) > 0]
        against = sorted({c["other"] for c in won})
        where = "; ".join(f"{other} on {_and(sorted({c['task'] for c in won if c['other'] == other}))} at m = "
                          f"{_and([str(c['m']) for c in won if c['other'] == other])}" for other in against)
        verdict = (f"resolved against {where} (no relational bottleneck)" if won else "no comparison resolved")
        if narrowly:
            lead = _and([f"{100 * _mean(p['differences']):.1f} ({p['task']})" for p in narrowly])
            verdict += (f", and by {lead} points against the {self.mech.strongest} over 20 folds at m = 95; not "
                        f"resolved against the other per-feature baselines")
        if lost:
            verdict += f"; resolved the other way against {_and(sorted({c['other'] for c in lost}))}"
        margin = self.authors.margin()
        verdict += (f". Under the authors' protocol their baseline comes within {margin['ours']:.1f} points of their "
                    f"model ({margin['theirs']:.1f} in their own runs)")
        best = max(won, key=lambda c: sum(c["differences"]), default=None)
        number = (f"{best['task']} {signed_points(best['differences'])} points over {best['other']} at m = {best['m']} "
                  f"({len(best['differences'])} seeds)" if best else "no comparison resolved")
        number += "".join(f"; {p['task']} {signed_points(p['differences'])} over the {self.mech.strongest} at m = 95 "
                          f"({len(p['differences'])} folds)" for p in narrowly[:1])
        return Claim("Beats baselines", grade(len(won) + len(narrowly), len(lost), len(cells) + len(power)), verdict,
                     number, "mechanism")

    def coupling(self, m: int = 50) -> Claim:
        """J_OUT's effect under our protocol (the mechanism study's planned comparisons with J_OUT = 0), with what the
        authors' protocol gives in two run sets (the authors study, the coupling study's rerun of its bottom rung) and
        where along the ladder it is resolved."""
        cells = [c for c in self.mech.comparisons() if c["other"] == "J_OUT = 0"]
        won = [c for c in cells if c["said"] == "oscillator higher"]
        lost = [c for c in cells if c["said"] == "oscillator lower"]
        task, short = TASKS[0]
        mine = self.mech.paired("oscillator", "J_OUT = 0", task, m)
        ours_bound = max(100 * (interval95(c["differences"])[0] + interval95(c["differences"])[1]) for c in cells
                         if c["m"] == m)
        resolved = sorted({mm for t, _ in TASKS for mm, d, adj in self._their_j_out(t) if adj < 0.05}, reverse=True)
        theirs = self.authors.j_out_effect(task, m)
        number = (f"accuracy with J_OUT minus without, {short} at m = {m}: {signed_points(mine)} points under ours "
                  f"({len(mine)} seeds); {signed_points(theirs)} under the authors' protocol")
        verdict = ("not resolved at any split under ours" if not won and not lost else
                   f"resolved at {len(won)} of {len(cells)} cells under ours")
        verdict += f" (a benefit above {ours_bound:.1f} points at m = {m} excluded)"
        if resolved:
            verdict += f"; under the authors' protocol it helps at m = {_and([str(x) for x in resolved])}"
        if self.coupled is not None and self.coupled.choice:
            along = {(r["task"], r["rung"]): r for r in self.coupled.along_ladder(m)}
            bottom = along[(short, self.coupled.rungs()[0])]
            number += (f", {signed_points(bottom['differences'])} (p {bottom['p']:.2f}, not resolved) in a second set "
                       "of runs of it" if bottom["said"] == "not resolved" else "")
            verdict += (" in one of two sets of runs" if resolved and bottom["said"] == "not resolved" else "")
            helps = [r for r in along.values() if r["said"] == "J_OUT helps"]
            if helps:
                steps = _and([LADDER[int(r["rung"][:2])][0].removeprefix("+ ") for r in helps])
                verdict += (f"; on the ladder from their protocol to ours it is resolved ("
                            f"{_and(sorted({r['task'] for r in helps}))}) only at the rungs adding {steps}, before any "
                            "change to the oscillators")
        return Claim("Binds through the coupling J_OUT", grade(len(won), len(lost), len(cells)), verdict, number,
                     "coupling" if self.coupled is not None else "authors")

    def _their_j_out(self, task: str) -> list[tuple[int, list[float], float]]:
        rows = [(m, self.authors.j_out_effect(task, m)) for m in self.authors.splits()]
        return [(m, d, adj) for (m, d), adj in zip(rows, holm([paired_p(d) for _, d in rows]))]

    SYMMETRIC = {"symmetric J, Omega = 0, gamma = 0.1": 0.1, "symmetric J, Omega = 0": 0.5}  # the claim's models

    def descent(self) -> Claim:
        """The models the claim is about (J symmetric, Omega = 0), trained at gamma 0.1 and 0.5, each run at its trained
        step and at 0.05 over the same time span: a cell is for the claim when every model has at least MONOTONE of its
        trajectories never rising, against it when none does."""
        cells, shares = [], {}
        for variant, trained in self.SYMMETRIC.items():
            for gamma, kind in ((trained, "trained"), (0.05, "curve")):
                rows = [r for r in self.energy.select("descent", variant=variant, gamma=gamma, dynamics=kind)
                        if r["rtol"] > 0]
                shares[trained, gamma] = [r["monotone_share"] for r in rows]
                cells.append(("for" if min(shares[trained, gamma]) >= MONOTONE else
                              "against" if max(shares[trained, gamma]) < MONOTONE else ""))
        n = len(shares[0.5, 0.5])
        number = (f"trajectories that never rise: {percent(shares[0.1, 0.1])} % when trained and run at gamma = 0.1, "
                  f"{percent(shares[0.5, 0.5])} % at our 0.5 ({n} models each)")
        verdict = ("descends at the authors' step (gamma = 0.1) and below, in every model; rises at least once in "
                   "nearly every trajectory at our trained step 0.5")
        return Claim("Energy descends (symmetric J, Omega = 0)", grade(cells.count("for"), cells.count("against"),
                     len(cells)), verdict, number, "energy")

    def same_lower(self) -> Claim:
        """The partner-swap energy gap (same minus different, per pair; below 0: same lower) at converged dynamics of
        the claim's models, and the poster's E in the authors' protocol's runs."""
        swap = {gamma: [r["mean"] for r in self.energy.select("swap", variant=v, dynamics="converged")]
                for v, gamma in self.SYMMETRIC.items()}
        lower = [g for g, x in swap.items() if _below(x)]
        higher = [g for g, x in swap.items() if _above(x)]
        poster = [r for r in self.authors.energies if r["quantity"] == "poster" and r["variant"] != "no J_OUT"]
        above = sum(r["difference"] > 0 for r in poster)
        number = (f"same minus different: {signed(swap[0.1], 2)} trained at gamma = 0.1, {signed(swap[0.5], 2)} at "
                  f"0.5 ({len(swap[0.1])} models each)")
        side = lambda g: "lower" if g in lower else "higher" if g in higher else "neither lower nor higher"  # noqa: E731
        verdict = (f"same pairs settle {side(0.1)} after training at gamma = 0.1 and {side(0.5)} at 0.5; under the "
                   f"authors' protocol (gamma = 0.1) they end higher in {above} of {len(poster)} runs")
        return Claim("Same pairs settle lower", grade(len(lower), len(higher), len(swap)), verdict, number, "energy")

    def locking(self) -> Claim:
        """Different pairs of the default model: the share of features that lock, by whether their two drives agree
        (angle below AGREE) or not (above DISAGREE), weighted by features, over every run. For the claim: shared
        features lock (LOCKS); against it: features whose drives disagree lock as often."""
        rows = [r for r in self.energy.select("lock_by_angle", variant="oscillator") if r["locked"] is not None]
        share = lambda keep: (sum(r["locked"] * r["features"] for r in rows if keep(r))  # noqa: E731
                              / sum(r["features"] for r in rows if keep(r)))
        agree, disagree = share(lambda r: r["angle_high"] <= AGREE), share(lambda r: r["angle_low"] >= DISAGREE)
        runs = len({r["run"] for r in rows})
        number = (f"different pairs: {100 * agree:.0f} % of features with agreeing drives lock, "
                  f"{100 * disagree:.0f} % of those with drives {DISAGREE:.0f} degrees or more apart ({runs} models)")
        cells_for = int(agree >= LOCKS) + int(disagree < 0.05)
        verdict = ("locking follows how far apart the two drives start: mostly shared features lock, but not only "
                   "they" if 0 < cells_for < 2 else "only shared features lock" if cells_for == 2 else
                   "shared features do not lock more than others")
        return Claim("Only shared features lock", grade(cells_for, int(disagree >= agree), 2), verdict, number,
                     "energy")

    def claims(self) -> list[Claim]:
        return [self.generalisation("same-different"), self.generalisation("rmts"), self.baselines(), self.coupling(),
                self.descent(), self.same_lower(), self.locking()]

    # ---- the answer in plain words ----

    def thesis(self) -> list[str]:
        """The book's answer in three sentences, each with its number: what carries generalisation, whether the
        coupling is needed, and what of the energy story holds."""
        acc = {t: list(self.few.ev.by_seed("oscillator", t, 15).values()) for t, _ in TASKS}
        power = {p["task"]: p for p in self.mech.power()}
        concat = next(c for c in self.mech.comparisons() if (c["other"], c["task"], c["m"]) == ("concat", "RMTS", 15))
        uncoupled = [c for c in self.mech.comparisons() if c["other"] in ("J_OUT = 0", "no coupling")]
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
        descent, lower, lock = self.descent(), self.same_lower(), self.locking()
        mono = {g: [r["monotone_share"] for r in self.energy.select("descent", variant=v, gamma=g, dynamics="trained")
                    if r["rtol"] > 0] for v, g in self.SYMMETRIC.items()}
        poster = [r for r in self.authors.energies if r["quantity"] == "poster" and r["variant"] != "no J_OUT"]
        rows = [r for r in self.energy.select("lock_by_angle", variant="oscillator") if r["locked"] is not None
                and r["angle_low"] >= DISAGREE]
        apart = sum(r["locked"] * r["features"] for r in rows) / sum(r["features"] for r in rows)
        third = ("Of the energy claims, "
                 + {"holds": "descent holds", "holds in part": "descent holds only for small Euler steps",
                    "not supported": "descent fails"}[descent.grade]
                 + f" ({100 * _mean(mono[0.1]):.0f} % of trajectories at gamma 0.1, {100 * _mean(mono[0.5]):.0f} % at "
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
BLOCKS = {"README.md": ("thesis", "findings"), "book/intro.md": ("thesis",)}


def marker(name: str) -> tuple[str, str]:
    return f"<!-- {name}: python -m oscbind_tools findings --write -->\n", f"<!-- /{name} -->"


def blocks(findings: Findings) -> dict[str, str]:
    return {"thesis": " ".join(findings.thesis()).replace("\u00a0", " "), "findings": findings.markdown()}


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
