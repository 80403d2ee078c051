"""The sweep's bookkeeping: which runs it plans, and what makes a finished run stale."""

import json
from pathlib import Path

from oscbind_tools import provenance, sweep

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "book" / "notebooks"


def test_plan_runs_training_chapters_per_split_and_seed_and_the_rest_once(tmp_path):
    jobs = sweep.plan(NOTEBOOKS, tmp_path, [95, 50], [0, 1], 95, "cpu", True)
    tags = {(j.chapter, j.tag) for j in jobs}
    assert {("03_same_different", f"m{m}-seed{s}") for m in (95, 50) for s in (0, 1)} <= tags
    assert {t for c, t in tags if c == "05_energy"} == {"m95-seed0"}
    assert [j.chapter for j in jobs][-5:] == ["07_generalisation", "08_evidence", "09_authors", "10_reproducing", "11_performance"]
    order = [j.chapter for j in jobs]
    assert order.index("04_rmts") > max(i for i, c in enumerate(order) if c == "03_same_different")


def test_a_sweep_of_five_and_two_training_icons_runs_both_splits_and_shows_the_first(tmp_path, monkeypatch):
    """`sweep --m 5 2`: its checks pass, both training chapters run at both splits, the showcase at m = 5."""
    ran = []
    monkeypatch.setattr(sweep, "execute", lambda job, notebooks, runs: (ran.append(job), (True, 0.0, "ok"))[1])
    assert sweep.sweep([5, 2], [0, 1], device="cpu", smoke=True, book=ROOT / "book", runs=tmp_path / "runs") == 0
    assert {(j.chapter, j.parameters["m"], j.parameters["seed"]) for j in ran if j.role == sweep.SPLIT} == {
        (c, m, s) for c in ("03_same_different", "04_rmts") for m in (5, 2) for s in (0, 1)}
    showcase = {j.chapter: j.parameters for j in ran if j.role == sweep.SHOWCASE}
    assert {p["m"] for p in showcase.values()} == {5} and showcase["06_explorable"]["splits"] == "5,2"
    assert sweep.sweep([5, 2], [0], showcase_m=95, runs=tmp_path / "runs") == 2  # a showcase split must be swept


def finished(job, notebooks, runs):
    """Pretend a job ran: its executed notebook, metrics and a stamp of today's inputs."""
    job.run_dir.mkdir(parents=True)
    job.output.write_text("{}")
    (job.run_dir / "metrics.json").write_text("{}")
    (job.run_dir / "stamp.json").write_text(json.dumps(sweep.stamp(job, notebooks, runs)))


def test_a_run_goes_stale_when_its_code_parameters_or_notebook_change(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "03_same_different.ipynb").write_text((NOTEBOOKS / "03_same_different.ipynb").read_text())
    runs = tmp_path / "runs"
    job = next(j for j in sweep.plan(notebooks, runs, [95], [0], 95, "cpu", True) if j.chapter == "03_same_different")
    finished(job, notebooks, runs)
    assert sweep.up_to_date(job, notebooks, runs)
    monkeypatch.setattr(provenance, "code_fingerprint", lambda tools=None: "edited package")  # what provenance.stamp reads
    assert not sweep.up_to_date(job, notebooks, runs)  # any change to the packages' code
    monkeypatch.undo()
    job.parameters["seed"] = 7
    assert not sweep.up_to_date(job, notebooks, runs)  # other parameters
    job.parameters["seed"] = 0
    (notebooks / "03_same_different.ipynb").write_text((NOTEBOOKS / "04_rmts.ipynb").read_text())
    assert not sweep.up_to_date(job, notebooks, runs)  # another notebook source


def test_a_summary_goes_stale_when_a_run_it_reads_changes(tmp_path):
    notebooks = tmp_path / "book" / "notebooks"
    notebooks.mkdir(parents=True)
    (notebooks / "07_generalisation.ipynb").write_text((NOTEBOOKS / "07_generalisation.ipynb").read_text())
    runs = tmp_path / "runs"
    job = next(j for j in sweep.plan(notebooks, runs, [95], [0], 95, "cpu", True) if j.chapter == "07_generalisation")
    assert job.parameters["runs_dir"] == "../../runs"  # relative: no machine path in a page
    other = runs / "03_same_different" / "m95-seed0"
    other.mkdir(parents=True)
    (other / "metrics.json").write_text('{"test_accuracy": 0.9}')
    finished(job, notebooks, runs)
    assert sweep.up_to_date(job, notebooks, runs)
    (other / "metrics.json").write_text('{"test_accuracy": 0.8}')
    assert not sweep.up_to_date(job, notebooks, runs)


def test_a_run_without_its_stamp_or_with_a_broken_one_is_not_up_to_date(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "05_energy.ipynb").write_text((NOTEBOOKS / "05_energy.ipynb").read_text())
    runs = tmp_path / "runs"
    job = next(j for j in sweep.plan(notebooks, runs, [95], [0], 95, "cpu", True) if j.chapter == "05_energy")
    finished(job, notebooks, runs)
    assert sweep.up_to_date(job, notebooks, runs)
    (job.run_dir / "stamp.json").write_text('{"version": ')
    assert not sweep.up_to_date(job, notebooks, runs)
    (job.run_dir / "stamp.json").unlink()
    assert not sweep.up_to_date(job, notebooks, runs)


def test_the_explorable_exports_every_split_into_its_run_and_the_build_stages_it(tmp_path):
    import nbformat

    notebooks = tmp_path / "book" / "notebooks"
    notebooks.mkdir(parents=True)
    (notebooks / "06_explorable.ipynb").write_text((NOTEBOOKS / "06_explorable.ipynb").read_text())
    runs = tmp_path / "runs"
    job = next(j for j in sweep.plan(notebooks, runs, [95, 50], [0], 95, "cpu", True) if j.chapter == "06_explorable")
    assert job.parameters["splits"] == "95,50"  # every split's model, not only the showcase one
    assert job.parameters["out_dir"] == "../../runs/06_explorable/m95-seed0/explorable-data"  # relative: no machine path
    finished(job, notebooks, runs)
    nbformat.write(nbformat.v4.new_notebook(), job.output)
    assert not sweep.up_to_date(job, notebooks, runs)  # a run without its page's files is not done
    (job.run_dir / "explorable-data").mkdir()
    (job.run_dir / "explorable-data" / "m95.js").write_text("// exported")
    assert sweep.up_to_date(job, notebooks, runs)
    staged = sweep.stage(tmp_path / "book", runs, [job], "m95-seed0")
    assert (staged / "_generated" / "explorable-data" / "m95.js").read_text() == "// exported"  # served from _static/
