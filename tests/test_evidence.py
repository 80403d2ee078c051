"""The evidence engine: submitit jobs that resume, report failures without stopping, and leave tidy CSVs."""

import csv
import json
import os
import subprocess
import sys

from oscbind_lite.evidence import PROFILES, plan
from oscbind_lite.results import interval95


def evidence(results, cache, *extra):
    env = {**os.environ, "OSCBIND_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "oscbind_lite", "evidence", "--profile", "smoke", "--results",
                           str(results), "--executor", "local", "--workers", "2", *extra],
                          capture_output=True, text=True, env=env, timeout=900)


def test_paper_profile_covers_models_splits_seeds_and_ablations():
    specs = plan("paper")
    ids = {s.id for s in specs}
    assert len(ids) == len(specs)  # one file per job
    splits, seeds, ablation_m = PROFILES["paper"]
    assert len(seeds) >= 5
    for variant in ("oscillator", "difference", "concat", "symmetric J, Omega = 0"):
        assert {(s.m, s.seed) for s in specs if s.variant == variant} == {(m, k) for m in splits for k in seeds}
    for variant in ("J_OUT = 0", "Omega = 0", "independent start", "T = 5", "T = 10", "T = 50", "N = 4"):
        assert {(s.m, s.seed) for s in specs if s.variant == variant} == {(ablation_m, k) for k in seeds}


def test_smoke_profile_runs_resumes_and_reports_a_failed_job(tmp_path):
    results = tmp_path / "results"
    broken = results / "runs" / "t-5-m95-seed0.json"
    broken.mkdir(parents=True)  # that job cannot write its result: it must fail alone
    first = evidence(results, tmp_path / "cache")
    assert first.returncode == 1
    failed = [line for line in first.stderr.splitlines() if line.startswith("failed ")]
    assert len(failed) == 1 and "t-5-m95-seed0" in failed[0] and "log: " in failed[0]
    assert os.path.exists(failed[0].split("log: ")[1].rstrip(")"))
    rows = list(csv.DictReader(open(results / "runs.csv")))
    assert len(rows) == 2 * (len(plan("smoke")) - 1)  # both tasks of every job but the failed one
    for r in rows:
        assert r["version"] and r["git_commit"] and r["config_hash"] and r["device"] and float(r["wall_seconds"]) >= 0
    fidelity = list(csv.DictReader(open(results / "fidelity.csv")))
    assert {f["variant"] for f in fidelity} == {"oscillator", "symmetric J, Omega = 0"}
    assert float(next(f for f in fidelity if f["variant"] != "oscillator")["share_non_increasing"]) > 0.99

    broken.rmdir()
    second = evidence(results, tmp_path / "cache")
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"{len(plan('smoke')) - 1} already done, 1 to run" in second.stderr
    assert json.loads((results / "profile.json").read_text())["ran"] == 1


def test_interval95_matches_a_hand_computation():
    mean, half, n = interval95([0.9, 0.92, 0.94, 0.96, 0.98])
    # sd = 0.0316228, t(0.975, 4) = 2.776 -> half-width 2.776 * 0.0316228 / sqrt(5) = 0.039259
    assert (round(mean, 6), round(half, 5), n) == (0.94, 0.03926, 5)


def test_slurm_executor_gets_one_task_per_job_with_its_threads(tmp_path, monkeypatch):
    from oscbind_lite.evidence import make_executor

    for tool in ("srun", "sbatch"):  # stand-ins: submitit only looks for them when the executor is made
        (tmp_path / tool).write_text("#!/bin/sh\nexit 1\n")
        (tmp_path / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    kind, executor = make_executor("auto", tmp_path / "logs", workers=20, threads=4, timeout_min=30)
    assert kind == "slurm"
    params = executor._executor.parameters
    assert (params["cpus_per_task"], params["array_parallelism"], params["time"]) == (4, 20, 30)


def test_slurm_executor_without_slurm_is_one_line(tmp_path):
    result = evidence(tmp_path / "results", tmp_path / "cache", "--executor", "slurm")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: executor: slurm needs")
    assert "Traceback" not in result.stderr
