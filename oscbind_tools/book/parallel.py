"""The sweep's notebooks several at a time (``sweep --kernels N``): each in a worker process of its own, which starts
its own kernel, in the sweep's order as far as what each chapter reads allows.

What a chapter reads decides when it may start (``waits_for`` in the sweep): an RMTS run loads the same/different
model of its split and seed, a showcase chapter the models of every split, a summary what every other chapter wrote.
With one kernel the notebooks run in this process, one after the other, exactly as without this module.

A worker ignores Ctrl-C: the sweep stops them itself, so the terminal shows the sweep's one line, not a traceback per
worker; a kernel left without its worker exits by itself (ipykernel watches its parent).
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

Outcome = tuple[bool, float, str]  # ok, seconds, message: what sweep.execute returns


def _ignore_ctrl_c() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def outcomes(jobs: list, waits_for: Callable[[Any, list], list], current: Callable[[Any], bool],
             execute: Callable[[Any], Outcome], kernels: int) -> Iterator[tuple[Any, Outcome | None]]:
    """Each job with its outcome as it ends (None: up to date, not run). ``current(job)`` is asked once the jobs the
    job waits for have ended (a summary's stamp hashes what they wrote); ``execute`` must be a module-level function
    (it runs in a worker process) when kernels > 1."""
    if kernels == 1:
        for job in jobs:
            yield job, (None if current(job) else execute(job))
        return
    pending, running, ended = list(jobs), {}, set()
    pool = ProcessPoolExecutor(kernels, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_ctrl_c)
    try:
        while pending or running:
            for job in list(pending):
                if len(running) == kernels:
                    break
                if all(id(j) in ended for j in waits_for(job, jobs)):
                    pending.remove(job)
                    if current(job):
                        ended.add(id(job))
                        yield job, None
                    else:
                        running[pool.submit(execute, job)] = job
            if not running:
                continue  # what was ready was up to date: look again
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                job = running.pop(future)
                ended.add(id(job))
                yield job, _result(future)
    finally:  # normal end, Ctrl-C or SIGTERM: no worker outlives the sweep
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


def _result(future: Future) -> Outcome:
    try:
        return future.result()
    except Exception as err:  # the worker died (killed, out of memory) before it could say how the notebook ended
        return False, 0.0, f"its worker process ended without a result ({type(err).__name__})"
