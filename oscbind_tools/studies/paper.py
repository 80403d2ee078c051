"""The paper study (``make study-paper``): the poster's model, the two simple baselines and the symmetric variant at
m = 95, 50 and 15 over five seeds, and the ablations at m = 50, at the book's defaults before the validation protocol
existed; its smoke twin checks the machinery in seconds. Each oscillator run also measures the energy gap and locking
of its dynamics (``dynamics``), and the symmetric one the descent of its energy.
"""

from __future__ import annotations

from .engine import FIDELITY_PAIRS, SEEDS, Spec, Study, measures

# Variants: name -> config overrides. "oscillator" is the poster's model with every default.
MAIN = {"oscillator": {}, "difference": {"bottleneck": "difference"}, "concat": {"bottleneck": "concat"}}

SYMMETRIC = {"symmetric J, Omega = 0": {"symmetric": True, "learn_omega": False}}

ABLATIONS = {
    "J_OUT = 0": {"learn_j_out": False},
    "Omega = 0": {"learn_omega": False},
    "independent start": {"start": "independent"},
    "T = 5": {"T": 5},
    "T = 10": {"T": 10},
    "T = 50": {"T": 50},
    "N = 4": {"N": 4},
    "readout rho": {"readout": "rho"},
}


def paper_plan(study: Study) -> list[Spec]:
    """The main models and the symmetric variant at every split (with their fidelity numbers), the study's ablations
    at m = 50."""
    ablations = {name: over for name, over in study.variants.items() if name in ABLATIONS}
    specs = []
    for seed in study.seeds:
        for m in study.splits:
            specs += [Spec(name, m, seed, over, study.fidelity.get(name, ""))
                      for name, over in {**MAIN, **SYMMETRIC}.items()]
        specs += [Spec(name, 50 if 50 in study.splits else study.splits[0], seed, over)
                  for name, over in ablations.items()]
    return specs


@measures("dynamics", "descent")
def dynamics(model, run, spec) -> dict:
    """The energy along the trained dynamics of held-out same and different pairs (double precision): its descent,
    the gap between the two kinds' final energies, and the share of locked features of each."""
    import torch

    from oscbind_lite import analysis
    from oscbind_lite.data import IconTasks

    tasks = IconTasks.from_config(run.data, model.encoder.out.weight.device)
    dyn = analysis.pair_dynamics(model, tasks, "test", FIDELITY_PAIRS, spec.seed, dtype=torch.float64)
    both = torch.cat([dyn.same.energies, dyn.different.energies], 1)
    gap = analysis.energy_gap(dyn.same.energies[-1], dyn.different.energies[-1])
    return {"descent": analysis.descent(both)._asdict(), "gap": gap._asdict(),
            "locked_same": analysis.locked_share(dyn.same.states[-1]),
            "locked_different": analysis.locked_share(dyn.different.states[-1]), "pairs": FIDELITY_PAIRS}


_DYNAMICS = {"oscillator": "dynamics"}
STUDIES = {
    "paper": Study((95, 50, 15), SEEDS, {**MAIN, **SYMMETRIC, **ABLATIONS}, paper_plan, "oscillator",
                   ("difference", "concat"), fidelity={**_DYNAMICS, "symmetric J, Omega = 0": "descent"},
                   about="the main models over 3 splits x 5 seeds, and ablations at m = 50"),
    # Every kind of job the engine handles (the reference, both baselines, both fidelity measurements, an ablation),
    # one each: the ablations' configs are checked without training (tests/test_evidence.py).
    "smoke": Study((95,), (0,), {**MAIN, **SYMMETRIC, "T = 5": ABLATIONS["T = 5"]}, paper_plan, "oscillator",
                   ("difference", "concat"), fidelity={**_DYNAMICS, "symmetric J, Omega = 0": "descent"}, smoke=True,
                   about="each kind of job of the paper study once, trained for seconds: a check of the machinery"),
}
