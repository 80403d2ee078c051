"""What this process may use: memory and cores read from the machine, ulimit, the cgroup and Slurm, the least of them
with its source; a refusal names the parameter given and that limit."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from oscbind_lite import limits, sizes
from oscbind_lite.config import RunConfig, with_overrides
from oscbind_lite.limits import Limit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cgroup(tmp_path, monkeypatch):
    """A fake cgroup tree and /proc/self/cgroup; returns a writer of control files."""
    monkeypatch.setattr(limits, "CGROUP", tmp_path / "sys")
    monkeypatch.setattr(limits, "PROC_CGROUP", tmp_path / "proc-cgroup")
    for name in ("SLURM_JOB_ID", "SLURM_MEM_PER_NODE", "SLURM_MEM_PER_CPU", "SLURM_CPUS_PER_TASK"):
        monkeypatch.delenv(name, raising=False)

    def write(lines: str, files: dict[str, str]):
        (tmp_path / "proc-cgroup").write_text(lines)
        for path, text in files.items():
            (tmp_path / "sys" / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "sys" / path).write_text(text)
    return write


def test_a_cgroup_v2_limit_on_the_job_or_a_slice_above_it_is_the_limit(cgroup):
    cgroup("0::/user.slice/job\n", {"user.slice/job/memory.max": "max\n", "user.slice/memory.max": f"{2 * 2**30}\n",
                                     "user.slice/job/cpu.max": "150000 100000\n"})
    assert limits.memory_limit() == Limit(2 * 2**30, "the cgroup's memory.max")
    assert limits.cpu_limit() == Limit(1, "the cgroup's cpu.max")


def test_a_cgroup_v1_limit_and_quota_are_read_too(cgroup):
    cgroup("4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n",
           {"memory/docker/abc/memory.limit_in_bytes": f"{3 * 2**30}\n", "cpu/docker/abc/cpu.cfs_quota_us": "100000\n",
            "cpu/docker/abc/cpu.cfs_period_us": "100000\n"})
    assert limits.memory_limit() == Limit(3 * 2**30, "the cgroup's memory.limit_in_bytes")
    assert limits.cpu_limit() == Limit(1, "the cgroup's cpu.cfs_quota_us")


def test_slurms_memory_and_cpus_are_the_limit_inside_a_job(cgroup, monkeypatch):
    cgroup("0::/\n", {})
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("SLURM_MEM_PER_NODE", "1024")
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert limits.memory_limit() == Limit(2**30, "Slurm's --mem")
    assert limits.cpu_limit() == Limit(1, "Slurm's --cpus-per-task")
    monkeypatch.delenv("SLURM_MEM_PER_NODE")
    monkeypatch.setenv("SLURM_MEM_PER_CPU", "512")
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "2")
    assert limits.memory_limit() == Limit(2**30, "Slurm's --mem-per-cpu")


def test_a_size_is_refused_against_the_process_limit_naming_the_parameter_given(monkeypatch):
    """T = 100000 was refused as "batch_size = 64 needs 24 GiB", a setting the user never gave."""
    monkeypatch.setattr(sizes, "memory_limit", lambda: Limit(2**30, "ulimit -v"))
    for over, line in ((dict(T=100000), "T: T = 100000 needs about"), (dict(T=100000, batch_size=16), "T: T = 100000"),
                       (dict(pool=10**10), "pool: pool = 10000000000 needs about"),
                       (dict(rmts_pool=10**9), "rmts_pool: rmts_pool = 1000000000 needs about")):
        with pytest.raises(ValueError, match=f"^{line}") as err:
            sizes.check(with_overrides(RunConfig(), **over), "rmts")
        assert str(err.value).endswith("a run plans on at most 80% of the 1.0 GiB this process may use (ulimit -v) (a "
                                       "smaller value fits)")
    monkeypatch.setattr(sizes, "memory_limit", lambda: Limit(2**20, "the cgroup's memory.max"))
    with pytest.raises(ValueError, match="^batch_size: the default settings need about .* GiB of memory; a run plans on "
                                         r"at most 80% of the 0.0 GiB this process may use \(the cgroup's memory.max\)$"):
        sizes.check(RunConfig(), "same-different")


def test_votes_have_an_upper_bound():
    with pytest.raises(ValueError, match="^votes: must be at most 1,000 draws"):
        sizes.check(with_overrides(RunConfig(), votes=10**9), "same-different")


@pytest.mark.skipif(limits.memory_limit().amount < 8 * 2**30, reason="needs 8 GiB of memory, so that ulimit is least")
def test_ulimit_is_the_limit_of_a_real_process(tmp_path):
    train = f"{sys.executable} -m oscbind_lite train --out {tmp_path / 'o'} --batch-size 100000 --quiet"
    r = subprocess.run(["bash", "-c", f"ulimit -v 4000000; {train}"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr[-2000:]
    assert r.stderr.startswith("error: batch_size: batch_size = 100000 needs about") and "(ulimit -v)" in r.stderr


def test_threads_beyond_the_cores_are_refused(monkeypatch):
    monkeypatch.setattr(limits, "cpu_limit", lambda: Limit(2, "its CPU affinity"))
    limits.check_threads(2)
    limits.check_threads(None)
    with pytest.raises(ValueError, match=r"^threads: 24 threads need 24 cores; this process may use 2 cores \(its CPU "
                                         r"affinity\), and threads beyond the cores run slower"):
        limits.check_threads(24)
    with pytest.raises(ValueError, match="^threads: 2 jobs x 2 threads need 4 cores"):
        limits.check_threads(2, jobs=2)


def test_compile_without_a_cxx_compiler_is_one_line(tmp_path):
    """OSCBIND_COMPILE=1 (make study-paper sets it) on a machine without g++ printed 120 lines at the first step."""
    env = {**os.environ, "OSCBIND_COMPILE": "1", "PATH": str(tmp_path), "CXX": "no-such-compiler"}
    r = subprocess.run([sys.executable, "-m", "oscbind_lite", "train", "--out", str(tmp_path / "o"), "--quiet"],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: OSCBIND_COMPILE: set to 1, but torch.compile finds no working C++ compiler (no-such-compiler: "
        "InvalidCxxCompiler); install one, point CXX at it, or unset OSCBIND_COMPILE"], r.stderr[-2000:]
    assert not (tmp_path / "o").exists()
