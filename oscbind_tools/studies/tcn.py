"""What the encoder hands the oscillators (``make study-tcn``, then ``make study-tcn-test``): context normalisation over
the pair (TCN) for the oscillator model and the difference baseline, and three encoder-side candidates, at m = 15 on
validation icons, kept by the gap study's rule (``gap.kept``); then what was kept, on the test icons at every split.
"""

from __future__ import annotations

import json
from pathlib import Path

from .coupling import NO_J_OUT
from .engine import SEEDS, Spec, Study
from .gap import kept

# What the encoder hands the oscillators, at m = 15 on validation icons (the gap study's design and rule): temporal
# context normalisation over the pair for the oscillator model and for the difference baseline (each against itself
# without it, since it may lift every model), and three encoder-side candidates against the oscillator model.
TCN = {"oscillator": {}, "oscillator + TCN": {"context_norm": True}, "difference": {"bottleneck": "difference"},
       "difference + TCN": {"bottleneck": "difference", "context_norm": True},
       "CNN 32-64-128": {"channels": (32, 64, 128)},  # twice as wide
       "first block 32": {"channels": (32, 32, 64)},  # a wider first block, where strokes become features
       "D = 64": {"D": 64}}  # twice the features handed to the oscillators

TCN_REFERENCES = {"difference + TCN": "difference"}  # every other candidate against the oscillator model

TCN_CHOICE = Path("results/tcn/choice.json")  # what the tcn study kept, read by the tcn-test study

def tcn_test_plan(study: Study) -> list[Spec]:
    """The oscillator model and the difference baseline, each with what the tcn study kept, at every split of the
    study on the test icons (m = 95 on disjoint 5-icon folds, as the mechanism study runs it); with TCN kept, also
    J_OUT = 0 with it at m = 50 and 15. Nothing kept: no job."""
    try:
        keep = json.loads(TCN_CHOICE.read_text())["kept"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"profile: tcn-test needs the tcn study's choice in {TCN_CHOICE} ({type(err).__name__}); run "
                         "`make study-tcn` first") from None
    settings = {k: v for name in keep for k, v in TCN[name].items() if k != "bottleneck"}
    if not settings:
        return []
    fold = lambda m: {"split": "folds"} if m == 95 else {}  # noqa: E731
    label = " + " + ", ".join(dict.fromkeys(name.split(" + ", 1)[-1] for name in keep))  # "oscillator + TCN" -> TCN
    models = (("oscillator", {}), ("difference", {"bottleneck": "difference"}))
    specs = [Spec(f"{name}{label}", m, seed, {**over, **settings, **fold(m)})
             for m in study.splits for seed in study.seeds for name, over in models]
    if settings.get("context_norm"):
        specs += [Spec(f"J_OUT = 0{label}", m, seed, {**NO_J_OUT, **settings})
                  for m in (50, 15) for seed in study.seeds]
    return specs


STUDIES = {
    "tcn": Study((15,), SEEDS, TCN, reference="oscillator", holdout="validation", references=TCN_REFERENCES,
                 after=lambda rows: kept(rows, STUDIES["tcn"]),
                 about="context normalisation over the pair and three encoder-side candidates at m = 15, on "
                       "validation icons"),
    "tcn-test": Study((95, 50, 15, 5, 2), SEEDS, plan=tcn_test_plan,
                      about="what the tcn study kept, for both models at every split on the test icons"),
}
