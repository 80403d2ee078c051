"""The evidence engine: submitit jobs that resume, report failures without stopping, and leave tidy CSVs."""

import csv
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

from oscbind_lite.config import ModelConfig, RunConfig, smoke, with_overrides
from oscbind_lite.cache import write_json
from oscbind_tools import provenance
import pytest
import torch

from oscbind_tools.studies import evidence as evidence_module
from oscbind_tools import studies
from oscbind_tools.studies import (STUDIES, Spec, Study, authors, coupling, energy, gap, mechanism, plan, tcn,
                                   unbundling)
from oscbind_tools.studies.authors import AUTHORS, LADDER
from oscbind_tools.studies.evidence import done, job_stamp, make_executor, spec_config
from oscbind_tools.studies.few import FewIcons
from oscbind_tools.studies.gap import REMEDIES, Paired
from oscbind_tools.studies.mechanism import GRID, MECHANISM, Mechanism, chosen
from oscbind_tools.studies.paper import ABLATIONS, MAIN, SYMMETRIC
from oscbind_tools.studies.reading import Evidence


def evidence(results, cache, *extra):
    env = {**os.environ, "OSCBIND_CACHE": str(cache)}
    env.pop("OSCBIND_COMPILE", None)
    return subprocess.run([sys.executable, "-m", "oscbind_tools", "evidence", "--profile", "smoke", "--results",
                           str(results), "--executor", "local", "--workers", "2", *extra],
                          capture_output=True, text=True, env=env, timeout=900)


def test_paper_profile_covers_models_splits_seeds_and_ablations():
    specs = plan("paper")
    ids = {s.id for s in specs}
    assert len(ids) == len(specs)  # one file per job
    splits, seeds, ablation_m = STUDIES["paper"].splits, STUDIES["paper"].seeds, 50
    assert len(seeds) >= 5
    for variant in ("oscillator", "difference", "concat", "symmetric J, Omega = 0"):
        assert {(s.m, s.seed) for s in specs if s.variant == variant} == {(m, k) for m in splits for k in seeds}
    for variant in ("J_OUT = 0", "Omega = 0", "independent start", "T = 5", "T = 10", "T = 50", "N = 4"):
        assert {(s.m, s.seed) for s in specs if s.variant == variant} == {(ablation_m, k) for k in seeds}
    assert {s.variant for s in specs if s.fidelity == "dynamics"} == {"oscillator"}
    assert {s.variant for s in specs if s.fidelity == "descent"} == {"symmetric J, Omega = 0"}


def test_few_profile_runs_the_main_models_at_five_and_two_training_icons():
    specs = plan("few")
    assert [(s.m, s.seed, s.variant) for s in specs] == [(m, k, v) for m in (5, 2) for k in range(5) for v in MAIN]
    assert len({s.id for s in specs}) == len(specs)  # one file per job
    assert {(s.variant, s.fidelity) for s in specs} == {("oscillator", "dynamics"), ("difference", ""), ("concat", "")}
    for s in specs:  # the paper profile's main models, tested on the held-out icons
        run = spec_config(s, False).validate("rmts", n_icons=100)
        assert run == with_overrides(RunConfig(), **MAIN[s.variant], m=s.m, seed=s.seed) and run.data.holdout == "test"
    assert studies.results_folder("few").as_posix() == "results/few" and studies.results_folder("paper").as_posix() == "results"


def test_every_variant_is_a_valid_config_that_changes_only_what_it_names():
    default = RunConfig()
    for name, over in {**MAIN, **SYMMETRIC, **ABLATIONS}.items():
        run = spec_config(Spec(name, 50, 3, over), smoke=False)
        run.validate("rmts", n_icons=100)
        assert (run.data.m, run.data.seed) == (50, 3)
        assert (run.stage1, run.stage2) == (default.stage1, default.stage2), name
        changed = {f.name for f in dataclasses.fields(ModelConfig) if getattr(run.model, f.name) != getattr(default.model, f.name)}
        assert changed == set(over), name
    assert spec_config(Spec("oscillator", 95, 0), smoke=True) == smoke(RunConfig())


def test_a_finished_job_goes_stale_when_the_code_changes(tmp_path, monkeypatch):
    """The evidence's staleness rule is provenance.stamp's: same spec and config, same code."""
    spec = Spec("T = 5", 95, 0, {"T": 5})
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / f"{spec.id}.json").write_text(json.dumps({"stamp": job_stamp(spec, smoke=True)}))
    assert done(spec, tmp_path, smoke=True)
    assert not done(spec, tmp_path, smoke=False)  # another config
    assert not done(Spec("T = 5", 95, 0, {"T": 6}), tmp_path, smoke=True)  # another spec under the same id
    monkeypatch.setattr(provenance, "code_fingerprint", lambda tools=None: "edited package")
    assert not done(spec, tmp_path, smoke=True)
    monkeypatch.undo()
    (tmp_path / "runs" / f"{spec.id}.json").write_text('{"stamp": ')  # half a file
    assert not done(spec, tmp_path, smoke=True)


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
        assert r["compile"] == "False" and r["smoke"] == "True"
    fidelity = list(csv.DictReader(open(results / "fidelity.csv")))
    assert {f["variant"] for f in fidelity} == {"oscillator", "symmetric J, Omega = 0"}
    assert float(next(f for f in fidelity if f["variant"] != "oscillator")["share_non_increasing"]) > 0.99
    saved = Evidence.load(results)  # what the book reads back
    assert saved.seeds == [0] and saved.splits() == [95] and saved.profile["failed"] == ["t-5-m95-seed0"]

    broken.rmdir()
    second = evidence(results, tmp_path / "cache")
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"{len(plan('smoke')) - 1} already done, 1 to run" in second.stderr
    assert json.loads((results / "profile.json").read_text())["ran"] == 1
    assert len(list(csv.DictReader(open(results / "runs.csv")))) == 2 * len(plan("smoke"))


def stand_in_slurm(folder, monkeypatch, ping: str = "exit 0"):
    """srun and sbatch that submit nothing and an scontrol whose `ping` runs the given shell line, first on PATH."""
    for tool, body in (("srun", "exit 1"), ("sbatch", "exit 1"), ("scontrol", ping)):
        (folder / tool).write_text(f"#!/bin/sh\n{body}\n")
        (folder / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def test_slurm_executor_gets_one_task_per_job_with_its_threads(tmp_path, monkeypatch):
    stand_in_slurm(tmp_path, monkeypatch)  # a controller that answers; submitit only looks for the tools here
    kind, executor = make_executor("auto", tmp_path / "logs", workers=20, threads=4, timeout_min=30)
    assert kind == "slurm"
    params = executor.parameters  # the Slurm parameters submitit will submit with
    assert (params["cpus_per_task"], params["array_parallelism"], params["time"]) == (4, 20, 30)


def test_local_executor_is_chosen_without_slurm(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch anywhere
    kind, executor = make_executor("auto", tmp_path / "logs", workers=2, threads=1, timeout_min=30)
    assert kind == "local" and executor.parameters["timeout_min"] == 30


@pytest.mark.parametrize("ping", ["echo 'Slurmctld(primary) at vm is DOWN'; exit 1", "exec sleep 30"])
def test_auto_is_local_where_slurm_is_installed_but_no_controller_answers(tmp_path, monkeypatch, ping):
    """sbatch on PATH is not a cluster: with the controller down (or hanging) auto runs the jobs here, soon."""
    import time

    stand_in_slurm(tmp_path, monkeypatch, ping)
    monkeypatch.setattr(evidence_module, "PING_SECONDS", 1)
    start = time.monotonic()
    kind, _ = make_executor("auto", tmp_path / "logs", workers=2, threads=1, timeout_min=30)
    assert kind == "local" and time.monotonic() - start < 10
    with pytest.raises(ValueError, match="^executor: slurm needs .* a controller that answers"):
        make_executor("slurm", tmp_path / "logs", workers=2, threads=1, timeout_min=30)


def test_a_job_slurm_ended_is_reported_with_its_state_not_submitits_heading(tmp_path):
    """submitit's words for a job that left no result (cancelled, timed out): the reason is Slurm's state."""
    from oscbind_tools.studies.evidence import _reason

    head = "Job 7_3 (task: 0) with path /r/logs/7_3_0_result.pkl\nhas not produced any output (state: CANCELLED by 0)"
    log = tmp_path / "7_3_0_log.err"  # a running task that was cancelled
    log.write_text("srun: Job step aborted: Waiting up to 32 seconds for job step to finish.\n"
                   "slurmstepd-vm: error: *** JOB 9 ON vm CANCELLED AT 2026-11-30T00:04:58 ***\n")
    running = RuntimeError(f"{head}\nError stream produced:\n{'-' * 40}\n{log.read_text()}")
    pending = RuntimeError(f"{head}\nNo output/error stream produced ! Check: /r/logs/7_4_0_log.out")
    assert _reason(running, log) == _reason(pending, tmp_path / "none") == "ended without a result (Slurm state: CANCELLED by 0)"
    log.write_text("Traceback (most recent call last):\nIsADirectoryError: [Errno 21] Is a directory: 'x'\n")
    assert _reason(RuntimeError("Job (task: 0) failed during processing"), log) == "IsADirectoryError: [Errno 21] Is a directory: 'x'"


def test_slurm_executor_without_slurm_is_one_line(tmp_path):
    result = evidence(tmp_path / "results", tmp_path / "cache", "--executor", "slurm")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: executor: slurm needs")
    assert "Traceback" not in result.stderr


def test_energy_study_measures_descent_swap_and_locking_on_one_model(smoke_run):
    """The energy profile's measurements: every step size with both counts, both dynamics of the swap, both starts."""
    from oscbind_lite.data import IconTasks
    from oscbind_lite.train import build_same_different
    from oscbind_tools.studies.energy import GAMMAS, RTOL, SPAN, energy_numbers as energy_study

    run = with_overrides(smoke_run, m=50)
    study = energy_study(build_same_different(run), IconTasks.from_config(run.data), seed=0, pairs=8)
    descent = study["tables"]["descent"]
    assert [(r["gamma"], r["T"]) for r in descent[::2]] == [(0.5, run.model.T)] + [(g, round(SPAN / g)) for g in GAMMAS]
    assert {r["rtol"] for r in descent} == {0.0, RTOL}
    assert all(tol["share_non_increasing"] >= strict["share_non_increasing"] for strict, tol in zip(descent[::2], descent[1::2]))
    assert [r["dynamics"] for r in study["tables"]["swap"]] == ["trained", "converged"]
    assert all(r["groups"] == 8 for r in study["tables"]["swap"])
    assert [r["start"] for r in study["tables"]["locking"]] == ["shared", "independent"]
    assert sum(r["features"] for r in study["tables"]["lock_by_angle"]) == 8 * run.model.D
    assert len(study["curves"]["converged"]["t"]) == 101 and study["curves"]["converged"]["t"][-1] == SPAN
    specs = plan("energy")
    assert len(specs) == 3 * 3 * 5 and {s.fidelity for s in specs} == {"energy"}


def test_the_energy_study_goes_through_tidy_into_the_books_tables(smoke_run, tmp_path):
    """energy_numbers -> a run file -> tidy's CSVs -> EnergyStudy -> the energy chapter's tables and figures."""
    from oscbind_lite.data import IconTasks
    from oscbind_lite.train import build_same_different
    from oscbind_tools.studies.energy import energy_numbers as energy_study
    from oscbind_tools.studies.evidence import tidy
    from oscbind_tools.studies.energy import EnergyStudy

    run = with_overrides(smoke_run, m=50)
    specs = [Spec("oscillator", 50, seed, {}, "energy") for seed in (0, 1)]
    for spec in specs:
        study = energy_study(build_same_different(with_overrides(run, seed=spec.seed)), IconTasks.from_config(run.data),
                             spec.seed, pairs=4)
        rows = [{"run": spec.id, "variant": spec.variant, "task": task, "m": 50, "seed": spec.seed, "test_accuracy": 0.5,
                 "train_accuracy": 0.5, "wall_seconds": 1.0} for task in ("same-different", "rmts")]
        write_json(tmp_path / "runs" / f"{spec.id}.json", {"spec": dataclasses.asdict(spec), "rows": rows, "fidelity": study})
    tidy(tmp_path, specs)
    loaded = EnergyStudy.load(tmp_path)
    assert loaded.variants == ["oscillator"] and loaded.count("oscillator") == 2
    assert len(loaded.descent_table().rows) == 5 and len(loaded.swap_table().rows) == 2
    assert [r[1] for r in loaded.locking_table().rows] == ["shared", "independent"]
    assert all(r[-1] == 2 for r in loaded.locking_table().rows)  # both runs in every cell
    energy.gap_figure(loaded)
    energy.lock_figure(loaded)


def test_validation_profile_tries_the_same_grid_for_every_model_on_validation_icons_only():
    specs = plan("validation")
    assert len(specs) == len(MECHANISM) * len(GRID) and {s.m for s in specs} == {50}
    for s in specs:
        run = spec_config(s, smoke=False)
        assert run.data.holdout == "validation" and run.data.split == "random"
    per_model = {}
    for s in specs:
        per_model.setdefault(s.variant.split(" | ")[0], []).append(spec_config(s, False).stage1.lr)
    assert all(sorted(lrs) == sorted(g["lr"] for g in GRID.values()) for lrs in per_model.values())  # same tries


def test_choice_picks_each_models_best_validation_setting_and_the_strongest_baseline():
    rows = [{"variant": f"{name} | {label}", "test_accuracy": acc}
            for name, accs in {"oscillator": (0.9, 0.8), "difference": (0.7, 0.85), "concat": (0.6, 0.6),
                               "J_OUT = 0": (0.95, 0.1)}.items() for label, acc in zip(GRID, accs)]
    got = mechanism.choose(rows, mechanism.MECHANISM_BASELINES)
    assert got["setting"] == {"oscillator": "lr 1e-3", "difference": "lr 3e-3", "concat": "lr 1e-3", "J_OUT = 0": "lr 1e-3"}
    assert got["strongest_baseline"] == "difference"  # oscillator variants are not baselines, however well they score


def test_mechanism_profile_uses_the_choices_folds_at_95_and_more_folds_for_two_models(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="^profile: mechanism needs the validation profile's choices.*make study-validation"):
        chosen(tmp_path / "absent.json")
    choice = tmp_path / "choice.json"
    write_json(choice, {"setting": {name: "lr 1e-3" if name == "concat" else "lr 3e-3" for name in MECHANISM},
                        "strongest_baseline": "comparator"})
    monkeypatch.setattr(mechanism, "CHOICE", choice)
    specs = plan("mechanism")
    main = [s for s in specs if s.seed < 5]
    assert len(main) == len(MECHANISM) * 3 * 5 and len(specs) - len(main) == 2 * 15
    assert {s.variant for s in specs if s.seed >= 5} == {"oscillator", "comparator"}
    assert all(spec_config(s, False).data.split == ("folds" if s.m == 95 else "random") for s in specs)
    assert all(spec_config(s, False).stage1.lr == (1e-3 if s.variant == "concat" else 3e-3) for s in specs)
    assert [s.m for s in main] == sorted((s.m for s in main), key=[15, 50, 95].index)  # whole splits finish first
    assert all(spec_config(s, False).data.holdout == "test" for s in specs)


def test_mechanism_tables_pair_by_seed_and_correct_within_each_task(tmp_path):
    rows = []
    for name in MECHANISM:
        for m in (15, 50, 95):
            for seed in range(20 if m == 95 else 5):
                if seed >= 5 and name not in ("oscillator", "difference"):
                    continue
                for task in ("same-different", "rmts"):
                    acc = 0.9 + 0.01 * seed + (0.02 if name == "oscillator" else 0) + (0.003 * (seed % 2))
                    rows.append({"run": f"{name}-{m}-{seed}", "variant": name, "task": task, "m": m, "seed": seed,
                                 "test_accuracy": acc, "train_accuracy": 1.0, "steps": 300, "wall_seconds": 1,
                                 "git_commit": "x", "version": "0"})
    folder, val = tmp_path / "mechanism", tmp_path / "validation"
    from oscbind_lite.cache import write_csv
    from oscbind_tools.studies.evidence import RUN_COLUMNS
    for f, r in ((folder, rows), (val, [dict(x, variant=f"{x['variant']} | {lb}", m=50) for x in rows[:2] for lb in GRID])):
        write_csv(f / "runs.csv", RUN_COLUMNS, r)
        write_csv(f / "fidelity.csv", ["run"], [])
        write_json(f / "profile.json", {"profile": "mechanism", "jobs": 1, "wall_seconds": 1, "workers": 2, "threads": 1})
    write_json(val / "choice.json", {"setting": {n: "lr 3e-3" for n in MECHANISM}, "strongest_baseline": "difference"})
    mech = Mechanism.load(folder, val)
    comparisons = mech.comparisons()
    assert len(comparisons) == 2 * 6 * 3 and {c["family"] for c in comparisons} == {18}
    assert all(len(c["differences"]) == 5 for c in comparisons)  # the five seeds every model ran, also at m = 95
    assert all(c["said"] == "oscillator higher" for c in comparisons)  # +2 points every seed: resolved after Holm
    power = mech.power()
    assert [len(p["differences"]) for p in power] == [20, 20] and all(p["holm"] < 0.05 for p in power)
    for table in (mech.accuracy_table(), mech.comparison_table(), mech.power_table(), mech.fit_table(), mech.validation_table()):
        assert table.rows and "<table" in table._repr_html_()


@pytest.mark.parametrize("profile, m, seeds", [("gap", 15, range(5)), ("gap-50", 50, range(5)), ("gap-combined", 15, range(5, 10)),
                                                ("gap-trajectory", 15, range(5))])
def test_gap_profile_runs_the_default_and_each_remedy_alone_on_validation_icons_only(profile, m, seeds):
    from oscbind_lite.data import IconTasks, split_icons
    from oscbind_tools.studies.gap import COMBINED, TRAJECTORY

    # combined: fresh seeds, none of the gap study's
    candidates = {"gap-combined": COMBINED, "gap-trajectory": TRAJECTORY}.get(profile, REMEDIES)
    specs = plan(profile)
    assert len(specs) == len(candidates) * 5 <= 80 and {s.m for s in specs} == {m} and {s.seed for s in specs} == set(seeds)
    assert {s.variant for s in specs} == set(candidates) and len({s.id for s in specs}) == len(specs)
    default = spec_config(Spec("default", m, 0), False).to_dict()
    for s in specs:
        run = spec_config(s, False)
        assert run.data.holdout == "validation"
        changed = {(part, k) for part, fields in run.to_dict().items() for k, v in fields.items() if default[part][k] != v}
        assert {k for _, k in changed} - {"seed", "holdout"} == set(candidates[s.variant])  # the remedy alone
        tasks, (_, test_icons) = IconTasks.from_config(run.data), split_icons(100, m, s.seed)
        held = set(test_icons.tolist())
        assert not held & (set(tasks.train_icons.tolist()) | set(tasks.test_icons.tolist()))  # test icons never seen


def test_remedy_tables_pair_each_candidate_with_the_default_by_seed_and_correct_within_each_task(tmp_path):
    from oscbind_lite.cache import write_csv
    from oscbind_tools.studies.evidence import RUN_COLUMNS

    rows = []
    for name in ("default", "rotation 15", "votes 5", "steps 1000"):
        for seed in range(5):
            for task in ("same-different", "rmts"):
                gain = {"default": 0.0, "rotation 15": 0.03, "votes 5": 0.002 * (seed % 2),  # votes: noise
                        "steps 1000": 0.03 if task == "rmts" else -0.03}[name]  # better in one task, worse in the other
                acc = 0.9 + 0.01 * seed + gain
                rows.append({"run": f"{name}-{seed}", "variant": name, "task": task, "m": 15, "seed": seed,
                             "test_accuracy": acc, "train_accuracy": 1.0, "steps": 300, "wall_seconds": 1,
                             "holdout": "validation", "git_commit": "x", "version": "0"})
    write_csv(tmp_path / "runs.csv", RUN_COLUMNS, rows)
    write_csv(tmp_path / "fidelity.csv", ["run"], [])
    write_json(tmp_path / "profile.json", {"profile": "gap", "jobs": 15, "wall_seconds": 1, "workers": 2, "threads": 1})
    remedies = Paired.load(tmp_path)
    assert remedies.candidates == ["rotation 15", "votes 5", "steps 1000"]
    comparisons = remedies.comparisons()
    assert len(comparisons) == 6 and {c["family"] for c in comparisons} == {3}
    said = {(c["candidate"], c["task"]): c["said"] for c in comparisons}
    assert said[("rotation 15", "RMTS")] == "candidate higher" and said[("votes 5", "RMTS")] == "not resolved"
    rotation = next(c for c in comparisons if c["candidate"] == "rotation 15")
    assert rotation["differences"] == pytest.approx([0.03] * 5)
    assert said[("steps 1000", "same/different")] == "candidate lower"
    assert remedies.kept() == ["rotation 15"]  # higher somewhere and lower nowhere
    table = remedies.table()
    assert len(table.rows) == 6 and "<table" in table._repr_html_() and "Holm p (family of 3)" in table.header
    fig = gap.remedies_figure(remedies)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == remedies.candidates  # one row each, shared
    assert [len(ax.lines) > 0 for ax in fig.axes] == [True, True]  # a panel per task


def test_few_icons_lines_up_the_mechanism_splits_with_make_few_and_compares_only_at_the_fewest(tmp_path):
    from oscbind_lite.cache import write_csv
    from oscbind_tools.studies.evidence import RUN_COLUMNS

    def row(model, m, seed, task, acc):
        return {"run": f"{model}-m{m}-seed{seed}", "variant": model, "task": task, "m": m, "seed": seed,
                "test_accuracy": acc, "train_accuracy": 1.0, "steps": 300, "wall_seconds": 900.0, "holdout": "test",
                "git_commit": "x", "version": "0"}

    tasks = ("same-different", "rmts")
    gain = {"oscillator": 0.05, "difference": 0.0, "concat": 0.0, "comparator": 0.2}  # comparator: not a few-icon model
    mech_rows = [row(model, m, seed, task, 0.8 + gain[model] + 0.01 * seed)
                 for model in gain for m in (95, 15) for seed in range(5) for task in tasks]
    few_rows = [row(model, 5, seed, task, 0.6 + 0.01 * seed + (0.04 if model == "oscillator" and task == "rmts" else 0))
                for model in ("oscillator", "difference", "concat") for seed in range(5) for task in tasks]
    few_rows += [row("oscillator", 2, 0, task, 0.5) for task in tasks]  # m = 2 has only begun: left out everywhere
    write_csv(tmp_path / "runs.csv", RUN_COLUMNS, few_rows)
    write_csv(tmp_path / "fidelity.csv", ["run"], [])
    write_json(tmp_path / "profile.json", {"profile": "few", "jobs": 30, "wall_seconds": 1, "workers": 2, "threads": 1})
    few = FewIcons.load(tmp_path, Mechanism(Evidence(mech_rows, [], {}), {}, []))
    assert few.models == ["oscillator", "difference", "concat"] and few.splits() == [95, 15, 5]
    assert few.evidence.splits() == [95, 15, 5] and "comparator" not in {r["variant"] for r in few.ev.runs}
    assert few.status().startswith("make study-few: m = 5: 15 of 15 runs; m = 2: 1 of 15 runs; 8.0 h")  # 32 rows x 900 s
    table = few.table()
    assert table.header == ["task", "model", "m = 95", "m = 15", "m = 5"] and len(table.rows) == 6
    assert table.rows[0][:2] == ["same/different", "oscillator"] and table.rows[0][2].startswith("87.0")
    comparisons = few.comparisons()  # m = 5 only: two baselines per task
    assert [(c["task"], c["m"], c["other"]) for c in comparisons] == [
        ("same/different", 5, "difference"), ("same/different", 5, "concat"), ("RMTS", 5, "difference"), ("RMTS", 5, "concat")]
    said = {(c["task"], c["other"]): c["said"] for c in comparisons}
    assert said[("RMTS", "concat")] == "oscillator higher" and said[("same/different", "difference")] == "not resolved"
    assert {c["family"] for c in comparisons} == {2} and "Holm p (family of 2)" in few.comparison_table().header
    assert few.table("train_accuracy").rows[0][2] == "100.0 ±\u00a00.0"
    fig = mechanism.accuracy_figure(few.evidence, few.models)
    assert [t.get_text().split("\n")[0] for t in fig.axes[0].get_xticklabels()] == ["95", "15", "5"]


ESBN_DIR = Path(authors.ESBN)
needs_esbn = pytest.mark.skipif(not ESBN_DIR.is_dir(), reason=f"ESBN's icons are not at {ESBN_DIR} (set OSCBIND_ESBN to a "
                                "clone's imgs/ folder of github.com/taylorwwebb/emergent_symbols)")


@needs_esbn
def test_authors_profile_runs_their_five_variants_on_their_protocol():
    specs = plan("authors")
    assert len(specs) == 5 * 3 * 5 and {s.variant for s in specs} == set(AUTHORS)
    for s in specs:
        run = spec_config(s, smoke=False).validate("rmts", n_icons=100)
        assert (run.data.split, run.data.crop, run.data.scale_max, run.model.D, run.model.gamma) == ("first", False, 1.0, 16, 0.1)
        assert run.stage1.pool == (4000 if s.m == 95 else 2000) and run.stage1.steps == 50 * -(-run.stage1.pool // 64)
        assert run.stage2.optimizer == "adam" and run.stage2.schedule == "constant" and run.stage2.patience == 0
    default = {s.variant: spec_config(s, False).model for s in specs if s.m == 50 and s.seed == 0}
    assert default["default"].fixed_omega and not default["no Omega"].fixed_omega and not default["no J_OUT"].learn_j_out
    assert default["baseline"].bottleneck == "projection"


@needs_esbn
def test_the_ladder_climbs_from_their_protocol_to_our_defaults_one_change_at_a_time():
    specs = [s for s in plan("ladder") if s.m == 50 and s.seed == 0]
    assert [s.variant[3:] for s in specs] == [name for name, _ in LADDER]
    runs = [spec_config(s, False) for s in specs]
    assert runs[0] == spec_config(next(s for s in plan("authors") if s.variant == "default" and s.m == 50 and s.seed == 0), False)
    ours = with_overrides(RunConfig(), m=50, seed=0, eval_size=10000, rmts_eval_size=10000)
    assert runs[-1] == ours  # the top rung is our defaults, measured on 10,000 test pairs like every rung


def test_the_authors_profile_without_esbn_says_where_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setattr(authors, "ESBN", str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="^OSCBIND_ESBN: .* clone https://github.com/taylorwwebb/emergent_symbols"):
        plan("authors")


def test_the_authors_tables_and_figures_read_their_csv_and_our_runs(tmp_path):
    from oscbind_lite.cache import write_csv
    from oscbind_tools.studies.evidence import RUN_COLUMNS
    from oscbind_tools.studies.authors import Authors

    def runs(variants, splits):
        return [{"run": f"{v}-{m}-{s}", "variant": v, "task": t, "m": m, "seed": s, "test_accuracy": 0.8 + 0.01 * s + 0.001 * k,
                 "train_accuracy": 0.9, "steps": 10, "wall_seconds": 1, "git_commit": "x", "version": "0"}
                for k, v in enumerate(variants) for m in splits for s in range(5) for t in ("same-different", "rmts")]

    authors_dir, ladder_dir = tmp_path / "authors", tmp_path / "ladder"
    for folder, rows in ((authors_dir, runs(AUTHORS, (95, 50, 15))), (ladder_dir, runs([f"{k:02d} {n}" for k, (n, _) in enumerate(LADDER)], (50, 15)))):
        write_csv(folder / "runs.csv", RUN_COLUMNS, rows)
        write_csv(folder / "fidelity.csv", ["run"], [])
        write_json(folder / "profile.json", {"profile": folder.name})
    energies = [{"run": f"default-{m}-{s}", "variant": "default", "m": m, "seed": s, "quantity": q, "difference": d,
                 "cohens_d": d / 2, "mean_same": 0, "mean_different": -d} for m in (95, 50, 15) for s in range(5)
                for q, d in (("poster", 0.1), ("released", -0.3))]
    write_csv(authors_dir / "two_energies.csv", list(energies[0]), energies)
    write_json(authors_dir / "curves.json", {f"default-{s}": {"variant": "default", "curves": {
        q: {"same": [0.0, -1.0, -2.0], "different": [0.0, -0.5, -1.0 - s]} for q in ("poster", "released")}} for s in range(3)})
    a = Authors.load(authors_dir, ladder_dir, "results/published/osc-network.csv")
    assert a.theirs("no J_OUT", "rmts", 15) == (71.82, 4.92)
    head = a.headline_table()
    assert [r[1] for r in head.rows[:2]] == ["their code and protocol (their CSV)", "our code, their protocol"]
    assert len(a.variants_table().rows) == 15 and len(a.j_out_table().rows) == 6
    assert a.j_out_table().header[-2:] == ["p (paired t)", "Holm p (family of 3)"]
    ladder_rows = a.ladder_table().rows
    assert len(ladder_rows) == 2 * 2 * len(LADDER) and ladder_rows[1][5].startswith("+0.1")  # +0.1 point per rung
    assert ladder_rows[0][4].startswith("90.0")  # the training accuracy beside the held-out one
    assert [LADDER[last][0] for *_, last in Authors.SEGMENTS] == ["+ random split", "+ chord readout", "+ our CNN",
                                                                   "+ our icons (our defaults)"]  # groups end where named
    segments = a.segments()  # the four groups of rungs add up to the whole climb
    assert [c["segment"] for c in segments[:4]] == [label for label, *_ in Authors.SEGMENTS] and len(segments) == 16
    assert segments[0]["differences"] == pytest.approx([0.002] * 5) and segments[1]["differences"] == pytest.approx([0.006] * 5)
    assert sum(sum(c["differences"]) for c in segments[:4]) == pytest.approx(5 * 0.001 * (len(LADDER) - 1))
    assert len(a.segments_table().rows) == 16
    energy = a.energy_table().rows
    assert energy[1][-1] == "15 of 15" and energy[0][-1] == "0 of 15"
    for fig in (authors.ladder_figure(a), authors.energies_figure(a.energy_curves(), "default", 256)):
        assert fig.axes


def test_sigterm_stops_a_profile_like_ctrl_c_and_leaves_no_job_running(tmp_path):
    import signal
    import time
    from pathlib import Path

    results = tmp_path / "results"
    env = {**os.environ, "OSCBIND_CACHE": str(tmp_path / "cache")}
    env.pop("OSCBIND_COMPILE", None)
    proc = subprocess.Popen([sys.executable, "-m", "oscbind_tools", "evidence", "--profile", "smoke", "--results",
                             str(results), "--executor", "local", "--workers", "2", "--threads", "1"],
                            stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    while not list((results / "logs").glob("*_submitted.pkl")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)  # the first jobs are running
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted: running jobs cancelled; rerun the command to resume" in err

    def jobs_left() -> list[str]:
        left = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "submitit" in text and str(results) in text:
                left.append(text)
        return left

    deadline = time.monotonic() + 20
    while jobs_left() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not jobs_left()


def test_fitting_rungs_are_those_where_every_ladder_seed_fits_at_m50(tmp_path):
    rows = [{"variant": f"{k:02d} {name}", "task": task, "m": m, "seed": seed,
             "train_accuracy": 0.5 if (k == 4 and seed == 2 and m == 50) or (k == 5 and m == 15) else 0.9}
            for k, (name, _) in enumerate(LADDER) for task in ("same-different", "rmts") for m in (50, 15) for seed in range(5)]
    with open(tmp_path / "runs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert coupling.fitting_rungs(tmp_path / "runs.csv") == [k for k in range(len(LADDER)) if k != 4]
    with pytest.raises(ValueError, match="make study-ladder"):
        coupling.fitting_rungs(tmp_path / "missing.csv")


@needs_esbn
def test_coupling_profile_removes_j_out_at_each_fitting_rung_and_changes_nothing_else():
    fits = coupling.fitting_rungs()
    specs = plan("coupling")
    rungs = {(s.variant, s.m, s.seed): s for s in plan("ladder")}
    assert len({s.id for s in specs}) == len(specs) == 2 * 5 * len(fits) and {s.m for s in specs} == {50}
    for s in specs:
        rung, _, removed = s.variant.partition(" | ")
        assert removed in ("", "J_OUT = 0") and int(rung[:2]) in fits
        ours, theirs = spec_config(s, False), spec_config(rungs[(rung, s.m, s.seed)], False)
        if removed:
            assert ours == dataclasses.replace(theirs, model=dataclasses.replace(theirs.model, learn_j_out=False))
        else:
            assert ours == theirs  # the ladder's rung itself, rerun on this machine


def _coupling_rows(effects: dict[int, float], seeds=range(5), unfit: tuple = ()) -> list[dict]:
    """Rows of the coupling profile: at rung k, J_OUT learned scores 0.9 + effects[k], J_OUT = 0 scores 0.9; the
    (rung, seed) pairs in unfit have a J_OUT = 0 run that failed to fit its training icons."""
    rows = []
    for k, effect in effects.items():
        name = f"{k:02d} {LADDER[k][0]}"
        for seed in seeds:
            for variant, acc in ((name, 0.9 + effect), (f"{name} | J_OUT = 0", 0.9)):
                train = 0.5 if (k, seed) in unfit and variant != name else 0.99
                rows += [{"variant": variant, "task": task, "m": 50, "seed": seed, "test_accuracy": acc,
                          "train_accuracy": train} for task in ("same-different", "rmts")]
    return rows


def test_choose_change_picks_the_step_across_which_j_outs_effect_falls_most_among_pairs_that_fit():
    from oscbind_tools.studies.coupling import choose_change, j_out_effects

    rows = _coupling_rows({0: 0.05, 1: 0.04, 3: 0.05, 8: 0.01, 11: 0.0}, unfit=((8, 0), (8, 1)))
    assert j_out_effects(rows, "08 + chord readout")["rmts"] == pytest.approx({2: 0.01, 3: 0.01, 4: 0.01})
    choice = choose_change(rows)
    assert (choice["off"], choice["on"]) == (3, 8) and choice["on_rung"] == "08 + chord readout"
    assert choice["effects"][1] == pytest.approx(0.04) and "falls most" in choice["rule"]
    # a drop of -0.99 at a rung whose every J_OUT = 0 run failed to fit is no evidence: that rung is skipped
    rows = _coupling_rows({0: 0.05, 1: 0.04, 2: -0.99, 3: 0.0}, unfit=tuple((2, s) for s in range(5)))
    assert (choose_change(rows)["off"], choose_change(rows)["on"]) == (1, 3)


@needs_esbn
def test_the_factorial_crosses_j_out_with_the_chosen_change(tmp_path, monkeypatch):
    from oscbind_tools.studies.coupling import FACTORIAL_SEEDS, chosen_change

    choice = tmp_path / "choice.json"
    monkeypatch.setattr(coupling, "COUPLING_CHOICE", choice)
    with pytest.raises(ValueError, match="make study-coupling"):
        plan("coupling-factorial")
    write_json(choice, {"off": 9, "on": 10})
    assert chosen_change(choice) == (9, 10)
    specs = plan("coupling-factorial")
    ladder = {(s.variant, s.m, s.seed): s for s in plan("ladder") if s.seed == 0}
    assert len(specs) == len({s.id for s in specs}) == 2 * 2 * 2 * len(FACTORIAL_SEEDS) and min(FACTORIAL_SEEDS) >= 5
    assert {s.variant for s in specs} == {"09 + our optimisation", "09 + our optimisation | J_OUT = 0",
                                          "10 + our CNN", "10 + our CNN | J_OUT = 0"}
    for s in specs:
        rung = s.variant.split(" | ")[0]
        expected = spec_config(dataclasses.replace(ladder[(rung, s.m, 0)], seed=s.seed), False)
        if "J_OUT = 0" in s.variant:
            expected = dataclasses.replace(expected, model=dataclasses.replace(expected.model, learn_j_out=False))
        assert spec_config(s, False) == expected
        assert s.fidelity == ("coupling" if s.m == 50 and "J_OUT" not in s.variant else "")


def test_coupling_inside_measures_what_j_out_moves_and_goes_through_tidy(smoke_run, tmp_path):
    from oscbind_lite import analysis
    from oscbind_lite.data import IconTasks
    from oscbind_lite.train import build_same_different
    from oscbind_tools.studies.evidence import tidy

    run = with_overrides(smoke_run, m=50)
    model = build_same_different(run)
    lesioned = analysis.without_j_out(model)
    assert lesioned.binding.J_out_raw is None and model.binding.J_out_raw is not None  # the original keeps its J_OUT
    assert torch.equal(lesioned.binding.couplings()[2], torch.zeros_like(model.binding.couplings()[2]))
    tasks = IconTasks.from_config(run.data)
    inside = analysis.coupling_inside(model, tasks, "test", 8, seed=0)
    assert [r["pairs"] for r in inside["displacement"]] == ["same", "different"]
    assert all(r["moved_by_j_out"] > 0 for r in inside["displacement"])  # a random J_OUT moves every run
    assert {r["coupling"] for r in inside["lock_by_angle"]} == {"learned", "J_OUT = 0"}
    assert sum(r["features"] for r in inside["lock_by_angle"]) == 2 * 8 * run.model.D
    # with J_OUT = 0 already, the lesion changes nothing at all
    none = analysis.coupling_inside(build_same_different(with_overrides(run, learn_j_out=False)), tasks, "test", 8, seed=0)
    assert all(r["moved_by_j_out"] == 0 and r["from_drive_learned"] == r["from_drive_without"] for r in none["displacement"])
    spec = Spec("10 + our CNN", 50, 5, {}, "coupling")
    rows = [{"run": spec.id, "variant": spec.variant, "task": task, "m": 50, "seed": 5, "test_accuracy": 0.5,
             "train_accuracy": 0.5, "wall_seconds": 1.0} for task in ("same-different", "rmts")]
    tables = {**inside, "lesion": [{"task": "same-different", "learned": 0.9, "without": 0.8}]}
    write_json(tmp_path / "runs" / f"{spec.id}.json", {"spec": dataclasses.asdict(spec), "rows": rows,
                                                       "fidelity": {"tables": tables, "curves": {}, "pairs": 8}})
    tidy(tmp_path, [spec])
    for name in ("displacement", "lock_by_angle", "lesion"):
        with open(tmp_path / f"{name}.csv", newline="") as f:
            assert {r["run"] for r in csv.DictReader(f)} == {spec.id}
    assert not (tmp_path / "curves.json").exists()


def test_a_coupling_job_records_the_dynamics_and_the_test_time_lesion(tmp_path):
    from oscbind_tools.studies.evidence import run_job

    spec = Spec("oscillator", 95, 0, {}, "coupling")
    saved = json.loads(open(run_job(spec, str(tmp_path), str(tmp_path / "cache"), 1, "cpu", smoke=True)).read())
    tables = saved["fidelity"]["tables"]
    assert set(tables) == {"displacement", "lock_by_angle", "lesion"}
    lesion = tables["lesion"][0]
    assert lesion["learned"] == saved["rows"][0]["test_accuracy"]  # the recorded accuracy, measured again
    assert 0 <= lesion["without"] <= 1


def test_the_evidence_tables_are_the_committed_ones():
    """Every table the book's readers make from the committed results equals the committed snapshot
    (tests/data/evidence_tables.json): a change of the code that moves a number or an order fails here, and a deliberate
    change of presentation rewrites the snapshot in the same commit."""
    from oscbind_tools.studies.authors import Authors
    from oscbind_tools.studies.energy import EnergyStudy

    R = Path(__file__).resolve().parents[1] / "results"
    mech = Mechanism.load(R / "mechanism", R / "validation")
    few, energy = FewIcons.load(R / "few", mech), EnergyStudy.load(R / "energy")
    authors = Authors.load(R / "authors", R / "ladder", R / "published" / "osc-network.csv", mech)
    tables = {"mechanism.accuracy": mech.accuracy_table(), "mechanism.comparisons": mech.comparison_table(),
              "mechanism.fit": mech.fit_table(95), "mechanism.power": mech.power_table(),
              "mechanism.validation": mech.validation_table(), "few.test": few.table(), "few.train": few.table("train_accuracy"),
              "few.comparisons": few.comparison_table(), "authors.headline": authors.headline_table(),
              "authors.variants": authors.variants_table(), "authors.j_out": authors.j_out_table(),
              "authors.ladder": authors.ladder_table(), "authors.segments": authors.segments_table(),
              "authors.energy": authors.energy_table(), "energy.descent": energy.descent_table(),
              "energy.swap": energy.swap_table(), "energy.locking": energy.locking_table(),
              **{f"{name}.table": Paired.load(R / name).table() for name in ("gap", "gap-combined", "gap-trajectory")}}
    snapshot = json.loads((Path(__file__).parent / "data" / "evidence_tables.json").read_text())
    assert set(tables) == set(snapshot)
    for name, table in tables.items():
        got = {"header": list(map(str, table.header)), "rows": [list(map(str, r)) for r in table.rows], "caption": table.caption}
        assert got == snapshot[name], name


def test_a_study_and_a_baseline_are_each_one_declaration(tmp_path, monkeypatch):
    """A throwaway study declared once reaches the plan, runs.csv and its table in its declared order; a throwaway
    baseline added to the mechanism study's declaration reaches every mechanism table that lists models."""
    from oscbind_tools.studies.evidence import RUN_COLUMNS, tidy

    toy = Study((50,), (0, 1), {"oscillator": {}, "toy baseline": {"bottleneck": "difference", "hidden": 8}},
                       reference="oscillator", baselines=("toy baseline",))
    monkeypatch.setitem(STUDIES, "toy", toy)
    specs = plan("toy")
    assert [(s.variant, s.seed) for s in specs] == [(v, k) for k in (0, 1) for v in ("oscillator", "toy baseline")]
    assert spec_config(specs[1], False).model.bottleneck == "difference"

    def write_runs(folder, specs, profile, accuracy):
        for s in specs:
            rows = [{**{c: "" for c in RUN_COLUMNS}, "run": s.id, "variant": s.variant, "task": t, "m": s.m, "seed": s.seed,
                     "test_accuracy": accuracy(s), "train_accuracy": 0.99, "wall_seconds": 1.0, "steps": 100}
                    for t in ("same-different", "rmts")]
            write_json(folder / "runs" / f"{s.id}.json", {"spec": dataclasses.asdict(s), "rows": rows, "fidelity": {}})
        write_json(folder / "profile.json", {"profile": profile, "jobs": len(specs), "wall_seconds": 1, "workers": 2,
                                             "threads": 1})
        tidy(folder, specs)

    write_runs(tmp_path / "toy", specs, "toy", lambda s: 0.9 if s.variant == "oscillator" else 0.8 + 0.01 * s.seed)
    with open(tmp_path / "toy" / "runs.csv", newline="") as f:
        assert {r["variant"] for r in csv.DictReader(f)} == {"oscillator", "toy baseline"}
    paired = Paired.load(tmp_path / "toy")
    assert paired.candidates == ["toy baseline"] and [r[0] for r in paired.table().rows] == ["toy baseline"] * 2

    # a throwaway baseline in the mechanism study: declared once, it is in every mechanism table that lists models
    mech_study = dataclasses.replace(STUDIES["mechanism"], variants={**MECHANISM, "toy baseline": {"bottleneck": "difference"}})
    monkeypatch.setitem(STUDIES, "mechanism", mech_study)
    runs = [Spec(v, m, k, {}) for m in (15,) for k in mech_study.seeds for v in mech_study.variants]
    write_runs(tmp_path / "mech", runs, "mechanism", lambda s: 0.9 - 0.01 * list(mech_study.variants).index(s.variant))
    grid = [Spec(f"{v} | {label}", 50, 0, {}) for v in mech_study.variants for label in GRID]
    write_runs(tmp_path / "validation", grid, "validation", lambda s: 0.9)
    write_json(tmp_path / "validation" / "choice.json", mechanism.choose(
        [{"variant": s.variant, "test_accuracy": 0.9} for s in grid], mech_study.baselines + ("toy baseline",)))
    mech = Mechanism.load(tmp_path / "mech", tmp_path / "validation")
    assert mech.models[-1] == "toy baseline"
    for table in (mech.accuracy_table(), mech.fit_table(15), mech.validation_table()):
        assert "toy baseline" in [r[1] if table.header[0] == "task" else r[0] for r in table.rows], table.caption
    assert "toy baseline" in {c["other"] for c in mech.comparisons()}
    # the mechanism study trains each model at the setting the validation study chose: one it never tuned is refused
    before = [{"variant": f"{v} | {label}", "test_accuracy": 0.9} for v in MECHANISM for label in GRID]
    write_json(tmp_path / "before.json", mechanism.choose(before, mech_study.baselines))
    with pytest.raises(ValueError, match="no setting for toy baseline"):
        mechanism.mechanism_plan(mech_study, tmp_path / "before.json")
    assert {s.variant for s in mechanism.mechanism_plan(mech_study, tmp_path / "validation" / "choice.json")} >= {"toy baseline"}


def test_the_tcn_study_compares_each_candidate_with_its_own_model_and_keeps_by_the_gap_rule(tmp_path, monkeypatch):
    tcn_study = STUDIES["tcn"]
    specs = plan("tcn")
    assert len(specs) == len(tcn.TCN) * 5 and all(spec_config(s, False).data.holdout == "validation" for s in specs)
    assert tcn_study.compared_with("difference + TCN") == "difference" and tcn_study.compared_with("oscillator + TCN") == "oscillator"
    assert "difference" not in tcn_study.candidates and "oscillator" not in tcn_study.candidates
    # a candidate well above its own model on every seed is kept; one below is not; one level is not
    lift = {"oscillator + TCN": 0.05, "difference + TCN": -0.05}
    rows = [{"variant": s.variant, "task": t, "m": s.m, "seed": s.seed,
             "test_accuracy": 0.8 + lift.get(s.variant, 0.0) + 0.001 * s.seed * (s.variant == "D = 64")}
            for s in specs for t in ("same-different", "rmts")]
    assert gap.kept(rows, tcn_study)["kept"] == ["oscillator + TCN"]
    choice = tmp_path / "choice.json"
    monkeypatch.setattr(tcn, "TCN_CHOICE", choice)
    write_json(choice, gap.kept(rows, tcn_study))
    test = plan("tcn-test")
    assert {s.variant for s in test} == {"oscillator + TCN", "difference + TCN", "J_OUT = 0 + TCN"}
    assert all(spec_config(s, False).model.context_norm for s in test)
    assert {s.m for s in test if s.variant.startswith("J_OUT")} == {50, 15}
    assert all(spec_config(s, False).data.split == ("folds" if s.m == 95 else "random") for s in test
               if not s.variant.startswith("J_OUT"))
    write_json(choice, {"kept": []})
    assert plan("tcn-test") == []


def coupling_rows(variants: dict[str, float], seeds, splits=(50,), unfit: tuple = ()) -> list[dict]:
    """Run rows for the coupling reader: for each variant (and its " | J_OUT = 0" twin) at every split and seed, both
    tasks, J_OUT learned scoring the given effect above J_OUT = 0 plus a small per-seed jitter; (variant, seed) in
    unfit gets a same/different training accuracy below the fit threshold."""
    rows = []
    for variant, effect in variants.items():
        for m in splits:
            for seed in seeds:
                for task in ("same-different", "rmts"):
                    base = 0.7 + 0.01 * seed
                    for name, acc in ((variant, base + effect + 0.002 * (seed % 3)), (f"{variant} | J_OUT = 0", base)):
                        rows.append({"variant": name, "task": task, "m": m, "seed": seed, "test_accuracy": acc,
                                     "train_accuracy": 0.5 if (name, seed) in unfit else 0.95})
    return rows


def test_the_coupling_reader_measures_j_out_per_rung_and_the_interaction():
    from oscbind_tools.studies.coupling import Coupling
    top = "11 + our icons (our defaults)"
    ladder_rows = coupling_rows({"03 + D = 32": 0.05, "08 + chord readout": 0.0, top: 0.0}, range(5),
                                unfit={("08 + chord readout | J_OUT = 0", 4)})
    factorial = coupling_rows({"03 + D = 32": 0.04, "08 + chord readout": 0.01}, range(5, 15), (50, 15))
    inside = {"displacement": [{"variant": v, "seed": s, "pairs": k, "moved_by_j_out": 10.0}
                               for v in ("03 + D = 32", "08 + chord readout") for s in range(5, 15)
                               for k in ("same", "different")],
              "lock_by_angle": [{"variant": v, "seed": s, "coupling": way, "angle_low": 0, "angle_high": 30,
                                 "locked": 0.9, "features": 4} for v in ("03 + D = 32", "08 + chord readout")
                                for s in range(5, 15) for way in ("learned", "J_OUT = 0")],
              "lesion": []}
    c = Coupling(ladder_rows, {"off_rung": "03 + D = 32", "on_rung": "08 + chord readout"}, factorial, inside)

    along = {(r["rung"], r["task"]): r for r in c.along_ladder()}
    assert {r["family"] for r in along.values()} == {3}  # Holm over the three rungs within each task
    helps = along[("03 + D = 32", "same/different")]
    assert helps["differences"] == pytest.approx([0.05 + 0.002 * (s % 3) for s in range(5)])
    assert helps["said"] == "J_OUT helps" and along[("08 + chord readout", "same/different")]["said"] == "not resolved"
    assert len(along[("08 + chord readout", "RMTS")]["differences"]) == 4  # the pair whose J_OUT = 0 run did not fit

    interaction = c.interaction()
    assert [(r["task"], r["m"]) for r in interaction] == [("same/different", 50), ("same/different", 15), ("RMTS", 50), ("RMTS", 15)]
    assert all(r["seeds"] == list(range(5, 15)) and r["differences"] == pytest.approx([0.03] * 10) for r in interaction)
    assert c.change_effect("same-different", 50) == pytest.approx([0.01 - 0.04] * 10)
    # An arm stopped early: m = 15 with two seeds is shown, not tested, and still counts in Holm's family of four
    stopped = Coupling(ladder_rows, c.choice, [r for r in factorial if r["m"] == 50 or r["seed"] < 7], inside)
    cells = {(r["task"], r["m"]): r for r in stopped.interaction()}
    assert cells[("RMTS", 15)]["said"] == "not tested" and cells[("RMTS", 15)]["holm"] == 1.0
    assert {r["family"] for r in cells.values()} == {4}
    assert cells[("RMTS", 50)]["said"] == "the change removes J_OUT's effect" and cells[("RMTS", 15)]["p"] != cells[("RMTS", 15)]["p"]

    backgrounds = [(c.choice["off_rung"], "before"), (c.choice["on_rung"], "after")]
    for fig in (coupling.factorial_figure(c), coupling.inside_figure(c.inside, backgrounds)):
        assert fig.axes and all(ax.has_data() for ax in fig.axes)


@pytest.fixture
def no_esbn(monkeypatch):
    """The ladder's configurations without ESBN's icons on disk: the folder only names the glyphs."""
    monkeypatch.setattr(authors, "esbn_folder", lambda: "esbn")


def test_unbundle_profile_reverts_each_change_of_the_step_alone_and_skips_a_rung_that_does_not_fit(no_esbn):
    off, on = coupling.chosen_change()
    specs = plan("coupling-unbundle")
    rungs = authors.ladder_rungs(50)
    upper, lower = rungs[on], rungs[off]
    configs = {s.variant.split(" | ")[0] for s in specs}
    # the chord readout reverted is rung 07, whose ladder seeds did not fit: not a configuration
    assert configs == {upper[0], *(f"{upper[0]}, without {unbundling.change_name(k)}" for k in range(off + 1, on))}
    assert len(specs) == len({s.id for s in specs}) == 2 * len(configs) * len(coupling.FACTORIAL_SEEDS)
    first = min(coupling.FACTORIAL_SEEDS)
    assert [s.seed for s in specs[: 2 * len(configs)]] == [first] * 2 * len(configs)  # seed by seed
    for s in specs:
        name, _, removed = s.variant.partition(" | ")
        reverted = next((k for k in range(off + 1, on + 1) if name.endswith(f"without {unbundling.change_name(k)}")), None)
        expected = dict(upper[1])
        if reverted is not None:
            expected.update({key: lower[1][key] for key in LADDER[reverted][1]})
            assert expected != upper[1]
        assert s.overrides == {**expected, **(coupling.NO_J_OUT if removed else {})} and s.m == 50
        assert s.fidelity == ("" if removed else "coupling")


def _unbundle_rows(effects: dict[str, float], seeds=range(5, 15), unfit: tuple = ()) -> list[dict]:
    """Rows of the unbundling: J_OUT learned scores 0.9 + effect (+-0.005 by seed), J_OUT = 0 scores 0.9; a config in
    unfit has J_OUT = 0 runs that do not fit their training icons."""
    rows = []
    for name, effect in effects.items():
        for seed in seeds:
            for variant, acc in ((name, 0.9 + effect + 0.005 * (-1) ** seed), (f"{name} | J_OUT = 0", 0.9)):
                train = 0.5 if name in unfit and variant != name else 0.99
                rows += [{"variant": variant, "task": task, "m": 50, "seed": seed, "test_accuracy": acc,
                          "train_accuracy": train} for task in ("same-different", "rmts")]
    return rows


def test_choose_add_one_names_the_change_whose_reversal_brings_j_outs_effect_back(no_esbn):
    upper = authors.ladder_rungs(50)[coupling.chosen_change()[1]][0]
    loo = [name for name, _ in unbundling.leave_one_out(50)[1:]]
    without = lambda change: f"{upper}, without {change}"  # noqa: E731
    # reverting learned Omega or the initialisation brings an effect back; the larger one is named
    rows = _unbundle_rows({upper: 0.0, **{c: 0.0 for c in loo}, without("learned Omega"): 0.03,
                           without("our initialisation"): 0.05})
    choice = unbundling.choose_add_one(rows)
    assert choice["named"] == without("our initialisation") and choice["add_change"] == "our initialisation"
    assert set(choice["brings_back"]) == {without("learned Omega"), without("our initialisation")}
    assert {t["family"] for t in choice["tests"]} == {len(loo)} and choice["rule"] == unbundling.UNBUNDLE_RULE
    # none resolved: the add-one adds the chord readout alone; a config whose pairs do not fit is not tested
    rows = _unbundle_rows({c: 0.0 for c in loo} | {without("gamma = 0.5"): 0.2}, unfit=(without("gamma = 0.5"),))
    choice = unbundling.choose_add_one(rows)
    assert choice["named"] == "" and choice["add_change"] == "chord readout" and choice["brings_back"] == []
    assert {t["said"] for t in choice["tests"] if t["config"] == without("gamma = 0.5")} == {"not tested"}


def test_add_one_profile_adds_the_named_change_to_the_lower_rung(no_esbn, tmp_path, monkeypatch):
    monkeypatch.setattr(unbundling, "UNBUNDLE_CHOICE", tmp_path / "choice.json")
    with pytest.raises(ValueError, match="coupling-unbundle"):
        unbundling.add_one(50, unbundled=tmp_path / "choice.json")
    off, on = coupling.chosen_change()
    write_json(tmp_path / "choice.json", {"add": on})
    lower, plus = unbundling.add_one(50, unbundled=tmp_path / "choice.json")
    assert lower == authors.ladder_rungs(50)[off] and plus[0] == f"{lower[0]}, with {unbundling.change_name(on)}"
    assert plus[1] == {**lower[1], **LADDER[on][1]} and plus[1] != lower[1]


def test_a_pair_made_on_two_cpu_models_does_not_measure_j_outs_effect():
    rows = _unbundle_rows({"08 + chord readout": 0.02}, seeds=(5, 6))
    for r in rows:
        r["cpu"] = "AMD EPYC" if r["seed"] == 5 or "J_OUT" not in r["variant"] else "Intel Xeon"
    assert set(coupling.j_out_effects(rows, "08 + chord readout")["rmts"]) == {5}


def test_the_unbundling_reads_the_leave_one_out_the_add_one_and_how_far_the_reruns_moved():
    from oscbind_tools.studies.unbundling import Unbundling

    upper, lower = "08 + chord readout", "03 + D = 32"
    loo = [f"{upper}, without {c}" for c in ("gamma = 0.5", "learned Omega", "shared random start",
                                              "our initialisation")]
    here = _unbundle_rows({upper: 0.0, **{c: 0.0 for c in loo}, loo[1]: 0.04})
    added = _unbundle_rows({lower: 0.05, f"{lower}, with learned Omega": 0.0})
    there = [dict(r, test_accuracy=r["test_accuracy"] - 0.01) for r in _unbundle_rows({upper: 0.0, lower: 0.05})]
    for rows, cpu in ((here, "AMD EPYC"), (added, "AMD EPYC"), (there, "Intel Xeon")):
        for r in rows:
            r["cpu"] = cpu
    u = Unbundling(here, added, {"named": loo[1]}, there, {})
    assert (u.upper, u.left_out, u.lower, u.added) == (upper, loo, lower, f"{lower}, with learned Omega")
    tests = {(t["config"], t["task"]): t for t in u.loo_tests()}
    assert tests[(loo[1], "RMTS")]["said"] == "J_OUT helps" and tests[(loo[0], "RMTS")]["said"] == "not resolved"
    assert {t["family"] for t in tests.values()} == {4}
    assert all(t["said"] == "the change takes J_OUT's effect away" for t in u.add_one_test())
    assert u.named() == "learned Omega" and u.conclusion().startswith("learned Omega makes J_OUT redundant")
    shift = u.reference_shift()
    assert {s["variant"] for s in shift} == {upper, f"{upper} | J_OUT = 0", lower, f"{lower} | J_OUT = 0"}
    assert all(s["differences"] == pytest.approx([1.0] * 10) and s["there"] == ["Intel Xeon"] for s in shift)
    assert u.fits(upper) == (10, 10) and u.label(loo[1]) == "all but learned Omega"


def test_the_kept_setting_is_read_beside_its_references_paired_by_seed_on_one_cpu(tmp_path):
    from oscbind_lite.cache import write_csv
    from oscbind_tools.studies.evidence import RUN_COLUMNS
    from oscbind_tools.studies.tcn import SPLITS, Kept, reference_plan

    assert len(reference_plan(STUDIES["tcn-reference"])) == 2 * len(SPLITS) * 5

    def rows(variants, lift, cpu=lambda s: "AMD EPYC"):
        return [{**{c: "" for c in RUN_COLUMNS}, "run": f"{v}-{m}-{s}", "variant": v, "task": t, "m": m, "seed": s,
                 "test_accuracy": 0.8 + 0.001 * s + lift(v, m), "train_accuracy": 0.99, "wall_seconds": 1, "cpu": cpu(s)}
                for v in variants for m in SPLITS for s in range(5) for t in ("same-different", "rmts")]

    test = rows(["oscillator + TCN", "difference + TCN", "J_OUT = 0 + TCN"],
                lambda v, m: 0.05 if v == "oscillator + TCN" else 0.0, cpu=lambda s: "Intel Xeon" if s == 4 else "AMD EPYC")
    refs = rows(["oscillator", "difference", "concat"], lambda v, m: 0.0)
    for name, r in (("tcn-test", test), ("tcn-reference", refs)):
        write_csv(tmp_path / name / "runs.csv", RUN_COLUMNS, r)
        write_csv(tmp_path / name / "fidelity.csv", ["run"], [])
        write_json(tmp_path / name / "profile.json", {"profile": name})
    k = Kept.load(tmp_path)
    assert k.label == " + TCN" and {r["variant"] for r in k.references} == {"oscillator", "difference"}
    cells = {(c["model"], c["task"], c["m"]): c for c in k.comparisons()}
    assert {c["family"] for c in cells.values()} == {10}
    osc = cells[("oscillator", "RMTS", 15)]
    assert osc["differences"] == pytest.approx([0.05] * 4)  # seed 4's two runs were made on two CPU models
    assert osc["said"] == "higher with it" and cells[("difference", "RMTS", 15)]["said"] == "not resolved"
    assert [(r["task"], r["m"]) for r in k.j_out()] == [("same/different", 50), ("same/different", 15),
                                                         ("RMTS", 50), ("RMTS", 15)]
    assert len(k.table().rows) == 20
