"""The authors' protocol as our settings, the ladder of single changes from it to our defaults, and the rules the
coupling studies apply to the ladder's runs: which rungs fit their training icons, J_OUT's effect at a rung, and the
change across which that effect falls most."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from oscbind_lite.config import RunConfig

def authors_protocol(m: int, glyphs: str) -> dict:
    """The protocol of the authors' released runs (``Elder453/osc-network``), as our settings.

    ESBN's icons in their own 32 x 32 frames, scaled by U(0.7, 1.0) and placed at random; icons 0..m-1
    train, the rest test; a fixed set of 2,000 pairs (4,000 at m = 95) in 50 epochs of batch 64, AdamW
    at 1e-3 with their warm-up and cosine; D = 16, gamma = 0.1, Omega fixed from a von Mises(0, 2),
    oscillators starting at their drives, Xavier init, their two-layer strided CNN, rho read by the MLP;
    the RMTS head on as many trials for as many epochs with plain Adam at 1e-3; 10,000 test pairs.
    """
    n = 4000 if m == 95 else 2000
    steps = 50 * -(-n // 64)  # 50 epochs of ceil(n / 64) batches
    return dict(glyphs=glyphs, crop=False, glyph_size=1.0, scale_min=0.7, scale_max=1.0, split="first",
                D=16, N=2, T=25, gamma=0.1, learn_omega=False, fixed_omega=True, start="drive", init="xavier",
                encoder="strided", readout="rho", hidden=64,
                pool=n, steps=steps, batch_size=64, lr=1e-3, weight_decay=1e-4, clip=1.0, schedule="authors",
                eval_every=steps, eval_size=10000,
                rmts_pool=n, rmts_steps=steps, rmts_batch_size=64, rmts_lr=1e-3, rmts_optimizer="adam",
                rmts_weight_decay=0.0, rmts_clip=0.0, rmts_schedule="constant", rmts_patience=0, rmts_eval_every=steps,
                rmts_eval_size=10000)


# Their five variants, on their protocol.
AUTHORS = {"default": {}, "no J_OUT": {"learn_j_out": False}, "no Omega": {"fixed_omega": False},
           "symmetric J, no Omega": {"fixed_omega": False, "symmetric": True}, "baseline": {"bottleneck": "projection"}}
_OURS = RunConfig()
# From their protocol to our defaults, one change at a time (each rung keeps the changes above it).
LADDER = (
    ("their protocol", {}),
    ("+ our augmentation", {"crop": True, "glyph_size": _OURS.data.glyph_size, "scale_max": _OURS.data.scale_max}),
    ("+ random split", {"split": "random"}),
    ("+ D = 32", {"D": _OURS.model.D}),
    ("+ gamma = 0.5", {"gamma": _OURS.model.gamma}),
    ("+ learned Omega", {"fixed_omega": False, "learn_omega": True}),
    ("+ shared random start", {"start": _OURS.model.start}),
    ("+ our initialisation", {"init": _OURS.model.init}),
    ("+ chord readout", {"readout": _OURS.model.readout}),
    ("+ our optimisation", {"pool": 0, "steps": _OURS.stage1.steps, "lr": _OURS.stage1.lr, "schedule": "cosine",
                            "eval_every": _OURS.stage1.eval_every, "rmts_pool": 0, "rmts_steps": _OURS.stage2.steps,
                            "rmts_lr": _OURS.stage2.lr, "rmts_optimizer": "adamw",
                            "rmts_weight_decay": _OURS.stage2.weight_decay, "rmts_clip": _OURS.stage2.clip,
                            "rmts_schedule": "cosine", "rmts_patience": _OURS.stage2.patience,
                            "rmts_eval_every": _OURS.stage2.eval_every}),
    ("+ our CNN", {"encoder": _OURS.model.encoder}),
    ("+ our icons (our defaults)", {"glyphs": None}),
)
# When does binding through coupling matter? J_OUT learned and J_OUT = 0 at every ladder rung that fits its training
# icons, paired by seed (both runs of a pair on one machine: the ladder's own runs came from another CPU model).
FIT = 0.8  # a rung fits when every ladder seed reaches this same/different training accuracy at FIT_M
FIT_M = 50
MIN_PAIRS = 4  # a configuration with fewer pairs whose two runs fit is shown, not tested
LADDER_RUNS = Path("results/ladder/runs.csv")  # the ladder profile's runs, read to find the rungs that fit
NO_J_OUT = {"learn_j_out": False}
J_OUT_WAYS = (("", {}), (" | J_OUT = 0", NO_J_OUT))  # each rung with J_OUT learned, then with J_OUT = 0
COUPLING_CHOICE = Path("results/coupling/choice.json")  # the change the factorial tests, chosen by CHANGE_RULE
FACTORIAL_SEEDS = tuple(range(5, 15))  # fresh seeds: not the ones whose runs chose the change
DOSE_WIDTHS = ((2, 4, 8), (4, 8, 16), (8, 16, 32))  # our CNN narrower than its default (16, 32, 64), at rung 11
# Why does J_OUT's effect fall across the chosen step? When the step spans several rungs (03 -> 08 bundles gamma = 0.5,
# learned Omega, the shared start, our initialisation and the chord readout, because the rungs between do not fit on
# their own), the unbundling takes it apart on the factorial's seeds at FIT_M, both members of every pair on one CPU:
# leave-one-out (the upper rung with one change reverted to its value at the lower rung, the upper rung itself rerun
# beside them), then add-one (the lower rung plus the change UNBUNDLE_RULE names, and the lower rung itself rerun).
UNBUNDLE_CHOICE = Path("results/coupling-unbundle/choice.json")  # the change the add-one study adds, by UNBUNDLE_RULE
UNBUNDLE_RULE = ("within each task, Holm's correction over the leave-one-out configurations tests J_OUT's effect "
                 "(J_OUT learned minus J_OUT = 0, paired by seed, over the pairs whose two runs fit; fewer than 4 such "
                 "pairs: not tested, p = 1); a change brings J_OUT's effect back when reverting it leaves an effect "
                 "resolved above zero on at least one task and below zero on neither; the change named is, of those, "
                 "the one whose configuration's effect is largest (averaged over both tasks); if none brings it back, "
                 "the add-one adds the chord readout alone")
CHANGE_RULE = ("among the steps between consecutive fitting rungs, the one across which J_OUT's effect at m = 50 "
               "(J_OUT learned minus J_OUT = 0, paired by seed, averaged over both tasks and the pairs whose two runs "
               "fit) falls most")
# ESBN's imgs/ folder (a clone of taylorwwebb/emergent_symbols)
ESBN = os.environ.get("OSCBIND_ESBN", "../shared/esbn-glyphs")


def ladder_rungs(m: int) -> list[tuple[str, dict]]:
    """The ladder at split m: (rung name "kk change", its whole override set), each rung keeping the changes below."""
    over, rungs = authors_protocol(m, esbn_folder()), []
    for k, (name, change) in enumerate(LADDER):
        over = {**over, **change}
        rungs.append((f"{k:02d} {name}", dict(over)))
    return rungs


def fitting_rungs(runs: Path = LADDER_RUNS) -> list[int]:
    """The ladder rungs (indices into LADDER) at which every seed of the ladder profile reached FIT training accuracy
    on same/different at m = FIT_M: the rungs where a model's held-out accuracy measures generalisation, not a failure
    to train."""

    try:
        with open(runs, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["task"] == "same-different" and int(r["m"]) == FIT_M]
    except (OSError, KeyError, ValueError) as err:
        raise ValueError(f"profile: coupling needs the ladder profile's runs in {runs} ({type(err).__name__}); "
                         "run `make ladder` first") from None
    fits = []
    for k, (name, _) in enumerate(LADDER):
        train = [float(r["train_accuracy"]) for r in rows if r["variant"] == f"{k:02d} {name}"]
        if train and min(train) >= FIT:
            fits.append(k)
    return fits


def j_out_effects(rows: list[dict], rung: str, m: int = FIT_M) -> dict[str, dict[int, float]]:
    """J_OUT's effect at one rung, per task and seed: held-out accuracy with J_OUT learned minus with J_OUT = 0, over
    the seeds whose two runs both fit (same/different training accuracy at least FIT) and were made on one CPU model
    (training is not bit-identical across processors, so a pair split across two would not differ in J_OUT alone)."""
    def runs(variant):
        return {(r["task"], int(r["seed"])): r for r in rows if r["variant"] == variant and int(r["m"]) == m}

    learned, removed = runs(rung), runs(f"{rung}{J_OUT_WAYS[1][0]}")
    fits = lambda by, seed: float(by[("same-different", seed)]["train_accuracy"]) >= FIT  # noqa: E731
    out = {}
    for (task, seed), row in learned.items():
        if ((task, seed) in removed and ("same-different", seed) in removed
                and fits(learned, seed) and fits(removed, seed) and row.get("cpu") == removed[task, seed].get("cpu")):
            out.setdefault(task, {})[seed] = float(row["test_accuracy"]) - float(removed[task, seed]["test_accuracy"])
    return out


def choose_change(rows: list[dict]) -> dict:
    """CHANGE_RULE on the coupling profile's rows: the step (lower rung, upper rung) across which J_OUT's effect falls
    most, with every rung's effect; rungs are indices into LADDER."""
    names = {int(r["variant"][:2]): r["variant"] for r in rows if " | " not in r["variant"]}
    effect = {}
    for k, name in sorted(names.items()):
        by_task = j_out_effects(rows, name)
        means = [sum(v.values()) / len(v) for v in by_task.values() if v]
        if len(means) == 2:
            effect[k] = sum(means) / 2
    rungs = sorted(effect)
    if len(rungs) < 2:
        raise ValueError("profile: the coupling profile measured J_OUT's effect at fewer than two rungs")
    off, on = max(zip(rungs, rungs[1:]), key=lambda step: effect[step[0]] - effect[step[1]])
    return {"off": off, "on": on, "off_rung": names[off], "on_rung": names[on], "effects": effect, "rule": CHANGE_RULE}


def chosen_change(choice: Path = COUPLING_CHOICE) -> tuple[int, int]:
    """(change off, change on) as rung indices, as the coupling profile recorded them."""
    try:
        saved = json.loads(Path(choice).read_text())
        return int(saved["off"]), int(saved["on"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"profile: coupling-factorial needs the coupling profile's choice in {choice} "
                         f"({type(err).__name__}); run `make coupling` first") from None


def esbn_folder() -> str:
    """ESBN's icon folder for the authors' protocol, checked: 100 images (OSCBIND_ESBN, else ../shared/esbn-glyphs)."""
    folder = Path(ESBN)
    if not folder.is_dir() or len([p for p in folder.iterdir() if p.suffix == ".png"]) != 100:
        raise ValueError(f"OSCBIND_ESBN: {folder} is not ESBN's folder of 100 icons; clone "
                         "https://github.com/taylorwwebb/emergent_symbols and set OSCBIND_ESBN to its imgs/ folder")
    return str(folder.resolve())


def bundle(choice: Path = COUPLING_CHOICE) -> list[int]:
    """The changes (indices into LADDER) that the chosen step adds: every rung above its lower rung up to its upper."""
    off, on = chosen_change(choice)
    return list(range(off + 1, on + 1))


def change_name(k: int) -> str:
    """A ladder change by what it is: "+ gamma = 0.5" -> "gamma = 0.5"."""
    return LADDER[k][0].removeprefix("+ ")


def leave_one_out(m: int, choice: Path = COUPLING_CHOICE, runs: Path = LADDER_RUNS) -> list[tuple[str, dict]]:
    """The chosen step's upper rung, then that rung with each change of the step reverted to its value at the lower
    rung ("08 + chord readout, without gamma = 0.5"), leaving out a configuration that is itself a ladder rung whose
    seeds did not all fit (``fitting_rungs``): its pairs could not measure J_OUT's effect."""
    off, on = chosen_change(choice)
    rungs, fits = ladder_rungs(m), fitting_rungs(runs)
    configs = [rungs[on]]
    for k in bundle(choice):
        over = {**rungs[on][1], **{key: rungs[off][1][key] for key in LADDER[k][1]}}
        if not any(over == rung for j, (_, rung) in enumerate(rungs) if j not in fits):
            configs.append((f"{rungs[on][0]}, without {change_name(k)}", over))
    return configs


def j_out_tests(rows: list[dict], configs: list[str], m: int = FIT_M) -> list[dict]:
    """J_OUT's effect at each configuration per task (``j_out_effects``), paired t over the pairs that fit, Holm over
    the configurations within each task; fewer than 4 pairs: not tested, p = 1 in the family."""
    from .stats import resolve

    out = []
    for task in ("same-different", "rmts"):
        family = [{"config": c, "task": task, "differences": list(j_out_effects(rows, c, m).get(task, {}).values())}
                  for c in configs]
        out += resolve(family, "J_OUT helps", "J_OUT hurts", MIN_PAIRS)
    return out


def choose_add_one(rows: list[dict], choice: Path = COUPLING_CHOICE) -> dict:
    """UNBUNDLE_RULE on the coupling-unbundle profile's rows: the change the add-one study adds to the lower rung
    (an index into LADDER), with every leave-one-out test."""
    m = min(int(r["m"]) for r in rows)
    (upper, _), *loo = leave_one_out(m, choice)
    names = {f"{upper}, without {change_name(k)}": k for k in bundle(choice)}
    tests = j_out_tests(rows, [name for name, _ in loo], m)
    back = [name for name, _ in loo if any(t["config"] == name and t["said"] == "J_OUT helps" for t in tests)
            and not any(t["config"] == name and t["said"] == "J_OUT hurts" for t in tests)]
    mean = lambda name: sum(sum(t["differences"]) / len(t["differences"]) for t in tests  # noqa: E731
                            if t["config"] == name and t["differences"]) / 2
    named = max(back, key=mean) if back else ""
    add = names[named] if named else next(k for k in bundle(choice) if LADDER[k][1].keys() == {"readout"})
    return {"brings_back": back, "named": named, "add": add, "add_change": change_name(add), "tests": tests,
            "rule": UNBUNDLE_RULE}


def chosen_add_one(choice: Path = UNBUNDLE_CHOICE) -> int:
    """The change (an index into LADDER) the add-one study adds, as the coupling-unbundle profile recorded it."""
    try:
        return int(json.loads(Path(choice).read_text())["add"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueError(f"profile: coupling-add-one needs the coupling-unbundle profile's choice in {choice} "
                         f"({type(err).__name__}); run `make coupling COUPLING=coupling-unbundle` first") from None


def add_one(m: int, choice: Path = COUPLING_CHOICE, unbundled: Path = UNBUNDLE_CHOICE) -> list[tuple[str, dict]]:
    """The chosen step's lower rung, then that rung plus the change the unbundling named ("03 + D = 32, with chord
    readout")."""
    off, _ = chosen_change(choice)
    k = chosen_add_one(unbundled)
    lower = ladder_rungs(m)[off]
    return [lower, (f"{lower[0]}, with {change_name(k)}", {**lower[1], **LADDER[k][1]})]
