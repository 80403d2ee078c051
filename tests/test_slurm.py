"""The evidence engine against a real Slurm, not stand-ins: ``tests/slurm_local.sh`` starts a single-node
cluster on loopback (slurmctld, slurmd, slurmdbd for sacct, munge), the smoke profile goes through
``--executor slurm``, and the cluster is stopped again, whatever happens.

What this shows: submitit's job array is accepted and scheduled with the CPUs it asks for, every run file
comes back, the tables are written, a failing job and cancelled ones are reported with their reasons, and
a resubmission runs only what did not finish. What it cannot show: several nodes, GPUs, a shared file
system, queues with other users' jobs.
"""

import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from oscbind_tools.studies import plan
from oscbind_tools.studies.evidence import done
from procs import processes

pytestmark = pytest.mark.slurm
SCRIPT = Path(__file__).with_name("slurm_local.sh")
FAILING = "difference-m95-seed0"  # the second job: its result path is made a folder, so it fails alone


def free_ports(count: int = 4) -> int:
    """A base port with `count` free loopback ports above it (slurmctld, slurmd, slurmdbd, MariaDB)."""
    for base in range(21000, 30000, 97):
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise RuntimeError("no free loopback ports between 21000 and 30000")


def daemons_of(state: Path) -> list[str]:
    """Processes that belong to the cluster in `state`: its path on their command line or in their SLURM_CONF."""
    return processes(lambda cmdline, environ: not cmdline.startswith(("bash ", "/bin/bash ")) and (
        str(state) in cmdline or f"SLURM_CONF={state}/" in environ))


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running single-node Slurm: the environment its commands need; stopped (and checked gone) afterwards."""
    if os.environ.get("OSCBIND_NO_SLURM") == "1":
        pytest.skip("OSCBIND_NO_SLURM=1: the Slurm test was switched off")
    if not shutil.which("bash") or not Path("/proc").is_dir():
        pytest.skip("the Slurm test needs Linux with bash")
    state = tmp_path_factory.mktemp("slurm")
    env = {**os.environ, "OSCBIND_SLURM_STATE": str(state), "OSCBIND_SLURM_PORT": str(free_ports())}
    env.pop("SLURM_CONF", None)

    def stop():
        subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)

    try:
        try:
            started = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            pytest.fail("tests/slurm_local.sh start took over 10 minutes (installing or starting Slurm)", pytrace=False)
        if started.returncode == 3:  # not installed, and not root with apt-get to install it
            pytest.skip(started.stderr.strip())
        if started.returncode != 0:
            pytest.fail(f"tests/slurm_local.sh start failed:\n{started.stderr[-4000:]}", pytrace=False)
        conf = started.stdout.strip().splitlines()[-1].removeprefix("SLURM_CONF=")
        yield {**env, "SLURM_CONF": conf, "PATH": f"{os.environ['PATH']}:/usr/sbin:/sbin"}
    finally:
        stop()
        deadline = time.monotonic() + 20
        while daemons_of(state) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not daemons_of(state), f"daemons left running: {daemons_of(state)}"


def slurm_cmd(env, *args) -> str:
    """A Slurm client command's output; fails the test with its error (never hangs)."""
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"{' '.join(args)}: {out.stderr.strip()}"
    return out.stdout


def array_tasks(env, array: str) -> dict[int, dict]:
    """sacct's record of a job array: {task index: {State, AllocCPUS, Start, End, ...}}."""
    text = slurm_cmd(env, "sacct", "-X", "-j", array, "--parsable2", "-o", "JobID,State,AllocCPUS,Partition,Timelimit,Start,End,ExitCode")
    rows = list(csv.DictReader(text.splitlines(), delimiter="|"))
    tasks, ranges = {}, []
    for row in rows:
        head, _, index = row["JobID"].partition("_")
        assert head == array and index, f"job {row['JobID']} is not a task of array {array}: {rows}"
        if index.isdigit():
            tasks[int(index)] = row
        else:  # "[5-11%2]": tasks cancelled while pending, never started
            first, last = map(int, re.match(r"\[(\d+)-(\d+)", index).groups())
            ranges.append((first, last, row))
    # A task's own record wins over a range row: the array's pending record can still name a task that has
    # already been split off, run and ended (the likely cause of a FAILED task once read back as CANCELLED).
    for first, last, row in ranges:
        for k in range(first, last + 1):
            tasks.setdefault(k, row)
    return tasks


def settled(env, array: str, seconds: float = 60) -> dict[int, dict]:
    """array_tasks once no task is pending, running or completing any more (a task's result can be back a moment
    before Slurm has ended it)."""
    deadline = time.monotonic() + seconds
    while True:
        tasks = array_tasks(env, array)
        busy = [r for r in tasks.values() if r["State"] in ("PENDING", "RUNNING", "COMPLETING", "REQUEUED")]
        if not busy:
            return tasks
        assert time.monotonic() < deadline, f"array {array} still busy after {seconds} s: {busy}"
        time.sleep(1)


def most_at_once(tasks: list[dict]) -> int:
    """The most tasks that ran at the same time (sacct's start and end, to the second)."""
    spans = [(r["Start"], r["End"]) for r in tasks if r["Start"] not in ("None", "Unknown")]
    return max(sum(s <= t < e for s, e in spans) for t, _ in spans)


def evidence_command(results: Path, threads: int) -> list[str]:
    return [sys.executable, "-m", "oscbind_tools", "evidence", "--profile", "smoke", "--results", str(results),
            "--executor", "slurm", "--workers", "2", "--threads", str(threads)]


def arrays_of(results: Path) -> list[str]:
    """The job arrays submitted for this results folder, from submitit's files (ARRAY_INDEX_submitted.pkl)."""
    return sorted({p.name.split("_")[0] for p in (results / "logs").glob("*_submitted.pkl")}, key=int)


def test_smoke_profile_through_slurm_fails_alone_survives_scancel_and_resumes(slurm, tmp_path):
    env = {**slurm, "OSCBIND_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    env.pop("OSCBIND_COMPILE", None)
    results, specs = tmp_path / "results", plan("smoke")
    cpus = int(slurm_cmd(env, "sinfo", "-h", "-N", "-o", "%c").split()[0])
    threads = min(2, cpus)  # CPUs per task: two of the node's two cores, so the tasks must take turns
    (results / "runs" / f"{FAILING}.json").mkdir(parents=True)

    # 1. Submit; once most jobs are back, scancel the array mid-run: one task running, the rest pending.
    err_file = tmp_path / "first.err"
    submitted = time.monotonic()
    with open(err_file, "w") as err:
        first = subprocess.Popen(evidence_command(results, threads), env=env, stderr=err, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while len([p for p in (results / "runs").glob("*.json") if p.is_file()]) < len(specs) - 3:
            assert first.poll() is None, f"the evidence ended before the cancel:\n{err_file.read_text()[-3000:]}"
            assert time.monotonic() < deadline, (f"10 minutes and only {len(list((results / 'runs').glob('*.json')))} "
                                                 f"run files:\n{err_file.read_text()[-3000:]}\n{slurm_cmd(env, 'squeue')}")
            time.sleep(0.5)
        (array,) = arrays_of(results)
        slurm_cmd(env, "scancel", array)
        cancelled_at = time.monotonic()
        try:
            first.wait(timeout=300)  # submitit waits up to 15 s for each cancelled task's result before it gives up
        except subprocess.TimeoutExpired:
            pytest.fail(f"the evidence had not ended 5 minutes after the scancel:\n{err_file.read_text()[-3000:]}",
                        pytrace=False)
    finally:
        if first.poll() is None:
            first.kill()
    reported_at, stderr = time.monotonic(), err_file.read_text()
    assert first.returncode == 1, stderr[-3000:]

    tasks = settled(env, array)  # task i ran specs[i]: nothing was done before
    assert sorted(tasks) == list(range(len(specs))), "every job went in one array"
    started = [r for r in tasks.values() if r["Start"] not in ("None", "Unknown")]
    assert all(r["AllocCPUS"] == str(threads) for r in started), started
    assert most_at_once(started) <= cpus // threads, "Slurm ran more tasks at once than the node has CPUs for"
    failing = specs.index(next(s for s in specs if s.id == FAILING))
    assert tasks[failing]["State"] == "FAILED" and tasks[failing]["ExitCode"] != "0:0"
    cancelled = [k for k, r in tasks.items() if r["State"].startswith("CANCELLED")]
    assert cancelled and max(cancelled) == len(specs) - 1, tasks
    reported = dict(re.findall(r"^failed (\S+): (.*) \(log: ", stderr, re.M))
    assert reported[FAILING].startswith("IsADirectoryError: "), stderr[-3000:]  # the job's own error, not a log path
    assert any(reported.get(specs[k].id) == "ended without a result (Slurm state: CANCELLED by 0)" for k in cancelled), reported
    finished = {s.id: (results / "runs" / f"{s.id}.json").read_bytes() for s in specs if done(s, results, smoke=True)}
    assert len(finished) >= len(specs) - 4 and FAILING not in finished

    # 2. Resubmit with the failure fixed: only the unfinished jobs run, one CPU each, two at a time, in the
    # partition and under the time limit that sbatch's own variables ask for (as the README says).
    (results / "runs" / f"{FAILING}.json").rmdir()
    start = time.monotonic()
    second = subprocess.run(evidence_command(results, 1), env={**env, "SBATCH_PARTITION": "evidence", "SBATCH_TIMELIMIT": "30"},
                            capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - start
    assert second.returncode == 0, second.stderr[-3000:]
    todo = len(specs) - len(finished)
    assert f"{len(finished)} already done, {todo} to run" in second.stderr
    resumed = arrays_of(results)[-1]
    assert resumed != array
    again = settled(env, resumed)
    assert len(again) == todo and {r["State"] for r in again.values()} == {"COMPLETED"}, again
    assert {(r["AllocCPUS"], r["Partition"], r["Timelimit"]) for r in again.values()} == {("1", "evidence", "00:30:00")}
    assert all((results / "runs" / f"{run}.json").read_bytes() == saved for run, saved in finished.items()), "a finished job reran"

    # Every run file is back, current and whole; the tables are written from all of them.
    for spec in specs:
        assert done(spec, results, smoke=True), spec.id
        saved = json.loads((results / "runs" / f"{spec.id}.json").read_text())
        assert [r["task"] for r in saved["rows"]] == ["same-different", "rmts"]
        assert saved["threads"] == (threads if spec.id in finished else 1)
    rows = list(csv.DictReader(open(results / "runs.csv")))
    assert len(rows) == 2 * len(specs) and all(0 <= float(r["test_accuracy"]) <= 1 for r in rows)
    assert {f["variant"] for f in csv.DictReader(open(results / "fidelity.csv"))} == {"oscillator", "symmetric J, Omega = 0"}
    profile = json.loads((results / "profile.json").read_text())
    assert (profile["executor"], profile["ran"], profile["failed"]) == ("slurm", todo, [])
    print(f"\nsubmit to scancel {cancelled_at - submitted:.1f} s, scancel to report {reported_at - cancelled_at:.1f} s, "
          f"resubmission of {todo} jobs to results {seconds:.1f} s")
