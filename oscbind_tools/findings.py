"""What of the poster holds: each of its claims, our verdict in plain words, the one number that carries it, and the
chapter with the evidence; then how our model differs from the poster's and what each difference is worth.

Every verdict is a rule applied to the committed studies (``results/``), so a rerun that changes the numbers changes
the words; nothing here is typed by hand but the claims and the reasons for our choices.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from oscbind_lite.config import RunConfig, with_overrides

from .ladder import FIT, authors_protocol
from .protocols import Authors, Coupling
from .stats import holm, interval95, paired_p
from .energy_study import EnergyStudy
from .studies import FewIcons, Mechanism
from .table import PM, TASKS, Link, Table, percent, signed, signed_points

CHANCE = 0.5
AGREE, DISAGREE = 30.0, 60.0  # drive angles (degrees) below which two features count as shared, above which as not


@dataclass
class Claim:
    """One claim of the poster, read against our evidence."""

    claim: str
    verdict: str
    number: str
    chapter: str  # the chapter notebook with the evidence ("mechanism")

    @property
    def kind(self) -> str:
        """The verdict in one word: holds, partly (only under a condition, or as a tendency), or no."""
        if self.verdict.startswith(("not supported", "opposite")):
            return "no"
        return "holds" if self.verdict.startswith("holds") else "partly"


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
        """Held-out accuracy of the oscillator model at every split (mechanism study and make few), against chance;
        the number is the hardest of the poster's splits, m = 15."""
        by_m = {k: list(self.few.ev.by_seed("oscillator", task, k).values()) for k in self.few.splits()}
        above = [k for k in by_m if interval95(by_m[k])[0] - interval95(by_m[k])[1] > CHANCE]
        number = (f"{percent(by_m[m])} % at m = {m} ({len(by_m[m])} seeds; "
                  f"{percent(by_m[min(by_m)])} at m = {min(by_m)})")
        verdict = ("holds at every split, falling with fewer icons" if len(above) == len(by_m) else
                   f"holds down to m = {min(above)}" if above else "not supported: no split above chance")
        claim = "Generalises to new icons" if task == "same-different" else "Transfers to RMTS from frozen coherence"
        return Claim(claim, verdict, number, "mechanism")

    def baselines(self) -> Claim:
        """The oscillator against the baselines of the mechanism study (Holm within each task)."""
        resolved = [c for c in self.mech.comparisons() if c["said"] != "not resolved"
                    and c["other"] not in ("J_OUT = 0", "no coupling")]
        above = sorted({c["other"] for c in resolved if c["said"] == "oscillator higher"})
        below = sorted({c["other"] for c in resolved if c["said"] == "oscillator lower"})
        best = max((c for c in resolved if c["said"] == "oscillator higher"), key=lambda c: sum(c["differences"]),
                   default=None)
        number = (f"{best['task']} {signed_points(best['differences'])} points over {best['other']} at m = {best['m']} "
                  f"({len(best['differences'])} seeds)" if best else "no comparison resolved")
        power = self.mech.power()
        narrowly = all(p["holm"] < 0.05 and sum(p["differences"]) > 0 for p in power)
        verdict = (f"against {', '.join(above)} (no relational bottleneck)" if above else "not supported") + (
            f", and narrowly against the {self.mech.strongest} over 20 folds at m = 95" if narrowly else "") + (
            f"; opposite against {', '.join(below)}" if below else "")
        return Claim("Beats baselines", verdict, number, "mechanism")

    def coupling(self, m: int = 50) -> Claim:
        """J_OUT's effect under their protocol (our code) and under our defaults, same/different at m."""
        resolved = {mm for task, _ in TASKS for mm, d, adj in self._their_j_out(task) if adj < 0.05}
        ours = [c for c in self.mech.comparisons() if c["other"] == "J_OUT = 0" and c["said"] != "not resolved"]
        task = TASKS[0][0]
        theirs, mine = self.authors.j_out_effect(task, m), self.mech.paired("oscillator", "J_OUT = 0", task, m)
        number = (f"removing J_OUT costs {signed_points(theirs)} points under the authors' protocol, "
                  f"{signed_points(mine)} under ours (same/different, m = {m}, 5 seeds)")
        if resolved and not ours:
            verdict = f"only under the authors' protocol, at m = {', '.join(map(str, sorted(resolved, reverse=True)))}"
        elif ours:
            verdict = "holds under our protocol too"
        else:
            verdict = "not supported under either protocol"
        if self.coupled is None or not self.coupled.choice:
            return Claim("Binds through the coupling J_OUT", verdict, number, "authors")
        along = self.coupled.along_ladder(m)
        helps = sorted({r["rung"][:2] for r in along if r["said"] == "J_OUT helps"})
        tasks = sorted({r["task"] for r in along if r["said"] == "J_OUT helps"})
        after = [r for r in along if int(r["rung"][:2]) >= self.coupled.choice["on"]]
        if helps and all(r["said"] == "not resolved" for r in after):
            rungs = f"rung{'s' * (len(helps) > 1)} {' and '.join(helps)}"
            verdict += (f"; along the ladder to ours it is resolved ({' and '.join(tasks)}) at {rungs} and at no "
                        f"rung from the chord readout ({self.coupled.choice['on']:02d}) up")
        return Claim("Binds through the coupling J_OUT", verdict, number, "coupling")

    def _their_j_out(self, task: str) -> list[tuple[int, list[float], float]]:
        rows = [(m, self.authors.j_out_effect(task, m)) for m in self.authors.splits()]
        return [(m, d, adj) for (m, d), adj in zip(rows, holm([paired_p(d) for _, d in rows]))]

    def descent(self) -> Claim:
        """The symmetric model (J symmetric, Omega = 0): trajectories that never rise at the trained step and at a
        small one over the same time span."""
        sym = "symmetric J, Omega = 0"
        rows = lambda gamma, kind: [r for r in self.energy.select("descent", variant=sym, gamma=gamma, dynamics=kind)  # noqa: E731
                                    if r["rtol"] > 0]
        trained, fine = rows(0.5, "trained"), rows(0.05, "curve")
        mono = lambda rs: percent([r["monotone_share"] for r in rs])  # noqa: E731
        number = (f"monotone trajectories: {mono(fine)} % at gamma = 0.05, {mono(trained)} % at 0.5 "
                  f"({len(trained)} models)")
        fine_ok = min(r["monotone_share"] for r in fine) >= 0.99
        trained_ok = min(r["monotone_share"] for r in trained) >= 0.99
        verdict = ("holds" if fine_ok and trained_ok
                   else "only for small Euler steps, not at the trained one" if fine_ok
                   else "not supported, even for small steps")
        return Claim("Energy descends (symmetric J, Omega = 0)", verdict, number, "energy")

    def same_lower(self) -> Claim:
        """The partner-swap energy gap (same minus different, per pair; below 0: same lower) at converged dynamics, and
        the poster's E under the authors' protocol."""
        v01, v05 = "symmetric J, Omega = 0, gamma = 0.1", "symmetric J, Omega = 0"
        swap = {v: [r["mean"] for r in self.energy.select("swap", variant=v, dynamics="converged")] for v in (v01, v05)}
        side = {v: ("lower" if interval95(x)[0] + interval95(x)[1] < 0
                    else "higher" if interval95(x)[0] - interval95(x)[1] > 0 else "neither") for v, x in swap.items()}
        poster = [r for r in self.authors.energies if r["quantity"] == "poster" and r["variant"] != "no J_OUT"]
        higher = sum(r["difference"] > 0 for r in poster)
        number = (f"same minus different: {signed(swap[v01], 2)} trained at gamma = 0.1, {signed(swap[v05], 2)} at 0.5 "
                  f"({len(swap[v01])} models each); same higher in {higher} of {len(poster)} authors'-protocol runs")
        verdict = ("not as a rule: lower only after training with a small step"
                   if side[v01] == "lower" and side[v05] == "higher"
                   else f"at gamma = 0.1 {side[v01]}, at 0.5 {side[v05]}")
        return Claim("Same pairs settle lower", verdict, number, "energy")

    def locking(self) -> Claim:
        """Different pairs of the default model: the share of features that lock, by whether their two drives agree
        (angle below AGREE) or not (above DISAGREE), weighted by features, over every run."""
        rows = [r for r in self.energy.select("lock_by_angle", variant="oscillator") if r["locked"] is not None]
        share = lambda keep: (sum(r["locked"] * r["features"] for r in rows if keep(r))  # noqa: E731
                              / sum(r["features"] for r in rows if keep(r)))
        agree, disagree = share(lambda r: r["angle_high"] <= AGREE), share(lambda r: r["angle_low"] >= DISAGREE)
        runs = len({r["run"] for r in rows})
        number = (f"different pairs: {100 * agree:.0f} % of features with agreeing drives lock, "
                  f"{100 * disagree:.0f} % of disagreeing ones ({runs} models)")
        verdict = ("mostly: locking follows the drives" if agree > 0.8 and disagree < 0.3
                   else "holds" if disagree < 0.05 else "not supported")
        return Claim("Only shared features lock", verdict, number, "energy")

    def claims(self) -> list[Claim]:
        return [self.generalisation("same-different"), self.generalisation("rmts"), self.baselines(), self.coupling(),
                self.descent(), self.same_lower(), self.locking()]

    def table(self, titles: dict[str, str]) -> Table:
        """The claims as a table whose last column links each to its chapter (``titles``: chapter -> link text)."""
        return Table(["the poster's claim", "our verdict", "the number that carries it", "evidence"],
                     [[c.claim, c.verdict, c.number, Link(titles.get(c.chapter, c.chapter), f"{c.chapter}.html")]
                      for c in self.claims()],
                     caption=f"Table 1. The poster's claims against our evidence; numbers are mean{PM}95 % half-width "
                             "over seeds (or models), on held-out icons")

    def markdown(self, link: str = "book/notebooks/{}.ipynb") -> str:
        """The claims as a markdown table for the README, each linked to its chapter (``link`` formats the stem)."""
        lines = ["| the poster's claim | our verdict | the number that carries it |", "|---|---|---|"]
        lines += [f"| {c.claim} ([{c.chapter}]({link.format(c.chapter)})) | {c.verdict} | {c.number} |"
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
