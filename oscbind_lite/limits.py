"""What this process may use, read before a run asks for it: memory, CPU cores and a C++ compiler, each limit with
where it comes from, so that a refusal can say it.

* Memory: the least of the machine's memory, the address space left under ``ulimit -v`` (RLIMIT_AS, less what the
  process has mapped already), ``ulimit -d`` (RLIMIT_DATA), the cgroup's limit (v2 ``memory.max``, v1
  ``memory.limit_in_bytes``, of the process's cgroup and every cgroup above it: a container, a systemd slice, a
  Slurm job's ``--mem``) and the memory Slurm granted the job (``SLURM_MEM_PER_NODE``, ``SLURM_MEM_PER_CPU``).
* Cores: the least of the CPUs the process may run on (its affinity: taskset, a cpuset, Slurm's binding), the
  cgroup's CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``) and Slurm's ``SLURM_CPUS_PER_TASK``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

CGROUP = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")  # this process's cgroups, one line per hierarchy
MEMORY_SHARE = 0.8  # a run may plan to use this share of the memory this process may use


class Limit(NamedTuple):
    """An amount this process may use and what sets it ("this machine", "ulimit -v", "the cgroup's memory.max")."""

    amount: int
    source: str

    def says(self, unit: str = "GiB") -> str:
        """"24 GiB (this machine)" or "2 cores (its CPU affinity)"."""
        if unit == "GiB":
            return f"{self.amount / 2**30:,.1f} GiB ({self.source})"
        return f"{self.amount} core{'s' * (self.amount != 1)} ({self.source})"


def _read_int(path: Path) -> int | None:
    """The integer a control file holds; None when absent, unreadable or "max"."""
    try:
        text = path.read_text().split()[0]
    except (OSError, IndexError):
        return None
    return int(text) if text.isdigit() else None


def _cgroups() -> dict[str, list[Path]]:
    """For each cgroup hierarchy this process is in ("" for v2, "memory", "cpu", ...), its folder and every folder
    above it, nearest first."""
    out: dict[str, list[Path]] = {}
    try:
        lines = PROC_CGROUP.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        relative = Path(parts[2].lstrip("/"))
        for controller in parts[1].split(",") if parts[1] else [""]:
            base = CGROUP / controller if controller else CGROUP
            if controller == "cpu" and not base.is_dir():
                base = CGROUP / "cpu,cpuacct"
            chain = [base / relative, *[base / p for p in relative.parents]]
            out[controller] = list(dict.fromkeys(chain))
    return out


def memory_limit() -> Limit:
    """The memory this process may use (bytes), with its source; amount 0 where nothing says."""
    limits: list[Limit] = []
    try:
        limits.append(Limit(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this machine"))
    except (ValueError, OSError, AttributeError):
        pass
    try:
        import resource  # POSIX only
    except ImportError:
        resource = None
    for name, flag in (("ulimit -v", "RLIMIT_AS"), ("ulimit -d", "RLIMIT_DATA")):
        if resource is None or not hasattr(resource, flag):
            continue
        soft = resource.getrlimit(getattr(resource, flag))[0]
        if soft != resource.RLIM_INFINITY:  # the address space counts what the process has mapped already
            limits.append(Limit(max(0, soft - (_mapped() if flag == "RLIMIT_AS" else 0)), name))
    groups = _cgroups()
    for folder in groups.get("", []):
        if (value := _read_int(folder / "memory.max")) is not None:
            limits.append(Limit(value, "the cgroup's memory.max"))
    for folder in groups.get("memory", []):
        if (value := _read_int(folder / "memory.limit_in_bytes")) is not None:
            limits.append(Limit(value, "the cgroup's memory.limit_in_bytes"))
    if os.environ.get("SLURM_JOB_ID"):
        per_node, per_cpu = _read_env("SLURM_MEM_PER_NODE"), _read_env("SLURM_MEM_PER_CPU")
        if per_node:
            limits.append(Limit(per_node * 2**20, "Slurm's --mem"))
        elif per_cpu:
            cpus = _read_env("SLURM_CPUS_PER_TASK") or _read_env("SLURM_CPUS_ON_NODE") or 1
            limits.append(Limit(per_cpu * cpus * 2**20, "Slurm's --mem-per-cpu"))
    return min(limits, key=lambda lim: lim.amount, default=Limit(0, "nothing says"))


def _mapped() -> int:
    """Bytes of address space this process has mapped already (VmSize), which count against ``ulimit -v``."""
    try:
        line = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmSize:"))
        return int(line.split()[1]) * 1024
    except (OSError, StopIteration, ValueError, IndexError):
        return 0


def _read_env(name: str) -> int | None:
    """A positive integer from the environment (Slurm writes its figures there); None otherwise."""
    text = os.environ.get(name, "").split("(")[0]  # SLURM_CPUS_ON_NODE may read "4(x2)"
    return int(text) if text.isdigit() and int(text) > 0 else None


def cpu_limit() -> Limit:
    """The CPU cores this process may keep busy, with their source."""
    try:
        limits = [Limit(len(os.sched_getaffinity(0)), "its CPU affinity")]
    except (AttributeError, OSError):
        limits = [Limit(os.cpu_count() or 1, "this machine")]
    groups = _cgroups()
    for folder in groups.get("", []):
        try:
            quota, period = (folder / "cpu.max").read_text().split()[:2]
        except (OSError, ValueError):
            continue
        if quota.isdigit() and period.isdigit() and int(period):
            limits.append(Limit(max(1, int(quota) // int(period)), "the cgroup's cpu.max"))
    for folder in groups.get("cpu", []):
        quota, period = _read_int(folder / "cpu.cfs_quota_us"), _read_int(folder / "cpu.cfs_period_us")
        if quota and period:
            limits.append(Limit(max(1, quota // period), "the cgroup's cpu.cfs_quota_us"))
    if os.environ.get("SLURM_JOB_ID") and (cpus := _read_env("SLURM_CPUS_PER_TASK")):
        limits.append(Limit(cpus, "Slurm's --cpus-per-task"))
    return min(limits, key=lambda lim: lim.amount)


def check_threads(threads: int | None, name: str = "threads", jobs: int = 1) -> None:
    """Refuse, in one line naming the parameter, more torch threads (times jobs at once) than this process has cores:
    threads beyond the cores wait on each other, and a run slows many times over."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"{name}: must be an integer >= 1, got {threads}")
    cores = cpu_limit()
    if threads * jobs > cores.amount:
        asked = f"{jobs} jobs x {threads} threads" if jobs > 1 else f"{threads} threads"
        raise ValueError(f"{name}: {asked} need {threads * jobs} cores; this process may use {cores.says('cores')}, "
                         "and threads beyond the cores run slower, not faster")


def check_compiler() -> None:
    """With ``OSCBIND_COMPILE=1``, refuse in one line where torch.compile finds no working C++ compiler (it would
    fail at the first training step with a long traceback)."""
    from . import core

    if not core.compile_enabled():
        return
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        get_cpp_compiler()
    except Exception as err:  # InvalidCxxCompiler, or a torch without this helper: say what was looked for
        cxx = os.environ.get("CXX") or "g++"
        raise ValueError(f"OSCBIND_COMPILE: set to 1, but torch.compile finds no working C++ compiler ({cxx}: "
                         f"{type(err).__name__}); install one, point CXX at it, or unset OSCBIND_COMPILE") from None
