"""What a run costs, checked before anything is allocated: the memory of its largest allocations against what this
process may use (``limits.memory_limit``: the machine, ulimit, the cgroup, Slurm), and its steps, Kuramoto steps and
votes against bounds no run needs to pass. A refusal is one line naming the parameters the user gave that make it too
big, never a default nobody set.
"""

from __future__ import annotations

from .config import STAGE2_PREFIX, RunConfig, _check, with_overrides
from .limits import MEMORY_SHARE, Limit, memory_limit

MAX_STEPS = 10_000_000  # optimiser steps of one stage: about a month at the default's speed here
MAX_T = 100_000  # Kuramoto steps of one run
MAX_VOTES = 1000  # draws of the start averaged in eval mode


def coupling_bytes(run: RunConfig) -> int:
    """Memory the couplings take in training, float32: J_IN and J_OUT with gradients and two Adam moments,
    the fused (2DN)^2 matrix and its gradient: about 64 (DN)^2 bytes."""
    return 64 * (run.model.D * run.model.N) ** 2


def needs(run: RunConfig, task: str) -> list[tuple[tuple[str, ...], float]]:
    """The largest allocations of a run, in bytes (float32), each with the parameters that scale it: a training
    batch through the CNN, the oscillators' states kept for the backward pass, a fixed evaluation set, the MLP
    heads and the CNN's weights with their gradients and Adam moments, a fixed pool of training examples and its
    drawing. Estimates, within a small factor."""
    d, mdl = run.data, run.model
    side = d.image_size
    # per image: the input and, per block, the conv output, its normalisation, activation and pooling
    per_image = 4 * (side * side + 4 * sum(c * (side / 2 ** (k if mdl.encoder == "pooled" else k + 1)) ** 2
                                           for k, c in enumerate(mdl.channels)))
    oscillators = 4 * 8 * 2 * mdl.D * mdl.N * max(mdl.T, mdl.T_eval)  # per pair
    conv = 16 * sum(a * b * 9 for a, b in zip((1, *mdl.channels), mdl.channels))  # weights, gradients, 2 moments
    stages = [(run.stage1, "", 2)] + ([(run.stage2, STAGE2_PREFIX, 6)] if task == "rmts" else [])
    out = [(("hidden",), 16.0 * mdl.hidden * (3 * mdl.D + 2)), (("channels",), float(conv))]
    for stage, prefix, images in stages:
        pairs = images // 2
        out.append(((prefix + "batch_size", "image_size", "channels", "T", "T_eval", "D", "N"),
                      stage.batch_size * (images * per_image + pairs * oscillators)))
        out.append(((prefix + "eval_size", "image_size"), 4.0 * stage.eval_size * images * side * side))
        out.append(((prefix + "batch_size", "T", "T_eval", "D", "N"),
                      float(stage.batch_size * pairs * oscillators)))
        # a pool's icons and labels (int64) and an epoch's order; an RMTS pool draws an (n, m) order of the icons
        per_example = 8.0 * (pairs * 2 + 4) + (12.0 * d.m if images == 6 else 0.0)
        out.append(((prefix + "pool", "m"), stage.pool * per_example))
    return out

def check(run: RunConfig, task: str, have: Limit | None = None) -> None:
    """Refuse, before anything is allocated, a run whose sizes cannot fit the memory this process may use
    (``needs`` against ``limits.memory_limit``; one line naming the parameters given that set the largest
    allocation) or run for longer than MAX_STEPS, MAX_T or MAX_VOTES."""
    have = memory_limit() if have is None else have
    need = coupling_bytes(run)
    if have.amount and need > have.amount:
        raise ValueError(f"D, N: the coupling matrices and their optimiser state need about {need / 2**30:.0f} GiB "
                         f"for D = {run.model.D}, N = {run.model.N}; this process may use {have.says()}")
    for stage, prefix in ((run.stage1, ""), (run.stage2, STAGE2_PREFIX)):
        _check(stage.steps <= MAX_STEPS, prefix + "steps", f"at most {MAX_STEPS:,} (a run that long would not end)",
               stage.steps)
    _check(run.model.T <= MAX_T, "T", f"at most {MAX_T:,} Kuramoto steps (the dynamics settle in tens)",
           run.model.T)
    _check(run.model.T_eval <= MAX_T, "T_eval", f"at most {MAX_T:,} Kuramoto steps", run.model.T_eval)
    _check(run.model.votes <= MAX_VOTES, "votes", f"at most {MAX_VOTES:,} draws (each is a whole evaluation "
           "again; the mean of a thousand moves by a fraction of a point)", run.model.votes)
    if not have.amount:
        return
    defaults, values = RunConfig().by_name(), run.by_name()
    limit = MEMORY_SHARE * have.amount
    for names, need in sorted(needs(run, task), key=lambda item: -item[1]):
        if need > limit:
            # the parameters given (not at their default) that alone make it too big: at their default, it fits
            given = [n for n in names if values[n] != defaults[n]]
            alone = [n for n in given
                     if dict(needs(with_overrides(run, **{n: defaults[n]}), task))[names] <= limit]
            named = alone or given
            size = (f"about {need / 2**30:,.1f} GiB of memory; a run plans on at most {MEMORY_SHARE:.0%} of the "
                    f"{have.amount / 2**30:,.1f} GiB this process may use ({have.source})")
            if not named:
                raise ValueError(f"{names[0]}: the default settings need {size}")
            said = ", ".join(f"{n} = {values[n]}" for n in named)
            raise ValueError(f"{', '.join(named)}: {said} needs {size} (a smaller value fits)")
