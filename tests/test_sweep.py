"""The sweep's bookkeeping: which runs it plans, and what makes a finished run stale."""

import json
from pathlib import Path

from oscbind_tools import provenance
from oscbind_tools.book import sweep

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "book" / "notebooks"


def book_with(folder: Path, *names: str) -> Path:
    """A book folder holding copies of the named chapters and a table of contents listing them; its notebooks folder."""
    notebooks = folder / "notebooks"
    notebooks.mkdir(parents=True)
    for name in names:
        (notebooks / f"{name}.ipynb").write_text((NOTEBOOKS / f"{name}.ipynb").read_text())
    (folder / "_config.yml").write_text((ROOT / "book" / "_config.yml").read_text())
    entries = "".join(f"      - file: notebooks/{name}\n" for name in names)
    (folder / "_toc.yml").write_text(f"format: jb-book\nroot: intro\nparts:\n  - caption: chapters\n    chapters:\n{entries}")
    return notebooks


def test_plan_runs_training_chapters_per_split_and_seed_and_the_rest_once(tmp_path):
    jobs = sweep.plan(NOTEBOOKS, tmp_path, [95, 50], [0, 1], 95, "cpu", True)
    tags = {(j.chapter, j.tag) for j in jobs}
    assert {("same_different", f"m{m}-seed{s}") for m in (95, 50) for s in (0, 1)} <= tags
    assert {t for c, t in tags if c == "energy"} == {"m95-seed0"}
    # the book's pages have no kernel: the dynamics chapter builds no kernel-drawn widget (nbclient may hang on one)
    assert [j.parameters.get("live") for j in jobs if j.chapter == "dynamics"] == [False]
    order = [j.chapter for j in jobs]
    assert order.index("rmts") > max(i for i, c in enumerate(order) if c == "same_different")
    book = sweep.chapters(ROOT / "book")  # the toc's order, summaries last since they read the other runs
    summaries = [c.name for c in book if c.role == sweep.SUMMARY]
    assert summaries and order[-len(summaries):] == summaries
    assert list(dict.fromkeys(order[:-len(summaries)])) == [c.name for c in book if c.role != sweep.SUMMARY]


def test_the_chapters_come_from_the_table_of_contents_with_the_roles_their_notebooks_declare(tmp_path):
    from oscbind_tools.book import explorable

    book = {c.name: c for c in sweep.chapters(ROOT / "book")}
    assert book["same_different"].role == sweep.SPLIT and book["energy"].role == sweep.SHOWCASE
    assert book["explorable"].page_files == explorable.DATA  # the folder sphinx_ext serves
    assert "results_dir" in book["mechanism"].parameters
    notebooks = book_with(tmp_path, "generalisation", "energy")
    assert [c.name for c in sweep.chapters(tmp_path)] == ["generalisation", "energy"]
    (notebooks / "energy.ipynb").write_text((notebooks / "energy.ipynb").read_text().replace('"role": "showcase"', '"role": "x"'))
    try:
        sweep.chapters(tmp_path)
    except ValueError as err:
        assert "energy.ipynb must declare its role" in str(err)
    else:
        raise AssertionError("a chapter without a role was accepted")


def test_a_sweep_of_five_and_two_training_icons_runs_both_splits_and_shows_the_first(tmp_path, monkeypatch):
    """`sweep --m 5 2`: its checks pass, both training chapters run at both splits, the showcase at m = 5."""
    ran = []
    monkeypatch.setattr(sweep, "execute", lambda job, notebooks, runs: (ran.append(job), (True, 0.0, "ok"))[1])
    assert sweep.sweep([5, 2], [0, 1], device="cpu", smoke=True, book=ROOT / "book", runs=tmp_path / "runs") == 0
    assert {(j.chapter, j.parameters["m"], j.parameters["seed"]) for j in ran if j.role == sweep.SPLIT} == {
        (c, m, s) for c in ("same_different", "rmts") for m in (5, 2) for s in (0, 1)}
    showcase = {j.chapter: j.parameters for j in ran if j.role == sweep.SHOWCASE}
    assert {p["m"] for p in showcase.values()} == {5} and showcase["explorable"]["splits"] == "5,2"
    assert sweep.sweep([5, 2], [0], showcase_m=95, runs=tmp_path / "runs") == 2  # a showcase split must be swept


def finished(job, notebooks, runs):
    """Pretend a job ran: its executed notebook, metrics and a stamp of today's inputs."""
    job.run_dir.mkdir(parents=True)
    job.output.write_text("{}")
    (job.run_dir / "metrics.json").write_text(json.dumps({"task": "same-different", "m": 95, "seed": 0,
                                                          "test_accuracy": 0.9}))
    (job.run_dir / "stamp.json").write_text(json.dumps(sweep.stamp(job, notebooks, runs)))


def test_a_run_goes_stale_when_its_code_parameters_or_notebook_change(tmp_path, monkeypatch):
    notebooks = book_with(tmp_path, "same_different")
    runs = tmp_path / "runs"
    job = next(j for j in sweep.plan(notebooks, runs, [95], [0], 95, "cpu", True) if j.chapter == "same_different")
    finished(job, notebooks, runs)
    assert sweep.up_to_date(job, notebooks, runs)
    monkeypatch.setattr(provenance, "code_fingerprint", lambda tools=None: "edited package")  # what provenance.stamp reads
    assert not sweep.up_to_date(job, notebooks, runs)  # any change to the packages' code
    monkeypatch.undo()
    job.parameters["seed"] = 7
    assert not sweep.up_to_date(job, notebooks, runs)  # other parameters
    job.parameters["seed"] = 0
    (notebooks / "same_different.ipynb").write_text((NOTEBOOKS / "rmts.ipynb").read_text())
    assert not sweep.up_to_date(job, notebooks, runs)  # another notebook source


def test_a_training_chapters_corrupt_metrics_are_run_again_not_served(tmp_path):
    """A corrupt metrics.json beside a current stamp made the summaries refuse ("run the sweep") while the sweep
    skipped the run as up to date: a loop no rerun left. Now the run itself is stale."""
    notebooks = book_with(tmp_path, "same_different")
    runs = tmp_path / "runs"
    job = next(j for j in sweep.plan(notebooks, runs, [95], [0], 95, "cpu", True) if j.chapter == "same_different")
    finished(job, notebooks, runs)
    assert sweep.up_to_date(job, notebooks, runs)
    for corrupt in ('{"task": "same-', '{"task": "same-different", "m": 95, "seed": 0, "test_accuracy": 97.3}', "[]"):
        (job.run_dir / "metrics.json").write_text(corrupt)
        assert not sweep.up_to_date(job, notebooks, runs), corrupt


def test_a_summary_goes_stale_when_a_run_it_reads_changes(tmp_path):
    notebooks = book_with(tmp_path / "book", "generalisation")
    runs = tmp_path / "runs"
    job = next(j for j in sweep.plan(notebooks, runs, [95], [0], 95, "cpu", True) if j.chapter == "generalisation")
    assert job.parameters["runs_dir"] == "../../runs"  # relative: no machine path in a page
    other = runs / "same_different" / "m95-seed0"
    other.mkdir(parents=True)
    (other / "metrics.json").write_text('{"test_accuracy": 0.9}')
    finished(job, notebooks, runs)
    assert sweep.up_to_date(job, notebooks, runs)
    (other / "metrics.json").write_text('{"test_accuracy": 0.8}')
    assert not sweep.up_to_date(job, notebooks, runs)


def test_a_run_without_its_stamp_or_with_a_broken_one_is_not_up_to_date(tmp_path):
    notebooks = book_with(tmp_path, "energy")
    runs = tmp_path / "runs"
    job = next(j for j in sweep.plan(notebooks, runs, [95], [0], 95, "cpu", True) if j.chapter == "energy")
    finished(job, notebooks, runs)
    assert sweep.up_to_date(job, notebooks, runs)
    (job.run_dir / "stamp.json").write_text('{"version": ')
    assert not sweep.up_to_date(job, notebooks, runs)
    (job.run_dir / "stamp.json").unlink()
    assert not sweep.up_to_date(job, notebooks, runs)


def test_the_explorable_exports_every_split_into_its_run_and_the_build_stages_it(tmp_path):
    import nbformat

    notebooks = book_with(tmp_path / "book", "explorable")
    runs = tmp_path / "runs"
    job = next(j for j in sweep.plan(notebooks, runs, [95, 50], [0], 95, "cpu", True) if j.chapter == "explorable")
    assert job.parameters["splits"] == "95,50"  # every split's model, not only the showcase one
    assert job.parameters["out_dir"] == "../../runs/explorable/m95-seed0/explorable-data"  # relative: no machine path
    finished(job, notebooks, runs)
    nbformat.write(nbformat.v4.new_notebook(), job.output)
    assert not sweep.up_to_date(job, notebooks, runs)  # a run without its page's files is not done
    (job.run_dir / "explorable-data").mkdir()
    (job.run_dir / "explorable-data" / "m95.js").write_text("// exported")
    assert sweep.up_to_date(job, notebooks, runs)
    staged = sweep.stage(tmp_path / "book", runs, [job], "m95-seed0")
    assert (staged / "_generated" / "explorable-data" / "m95.js").read_text() == "// exported"  # served from _static/


def test_the_staged_book_points_its_buttons_at_the_repository_or_shows_none(tmp_path, monkeypatch):
    """One setting: $OSCBIND_REPOSITORY (the Pages workflow's repository) fills the repository, Binder and Colab
    buttons and every chapter's ``repository`` parameter; with none known, no button points at a placeholder."""
    import yaml

    notebooks = book_with(tmp_path / "book", "reproducing")
    monkeypatch.setenv("OSCBIND_REPOSITORY", "stand-in/oscbind-book")
    assert sweep.repository(tmp_path / "book") == "stand-in/oscbind-book"
    job = next(j for j in sweep.plan(notebooks, tmp_path / "runs", [95], [0], 95, "cpu", True) if j.chapter == "reproducing")
    assert job.parameters["repository"] == "stand-in/oscbind-book"
    sweep.publish_settings(tmp_path / "book" / "_config.yml", "stand-in/oscbind-book", sweep.PUBLISHED_BRANCH)
    settings = yaml.safe_load((tmp_path / "book" / "_config.yml").read_text())
    assert settings["repository"]["url"] == "https://github.com/stand-in/oscbind-book"
    assert settings["html"]["use_repository_button"] and settings["launch_buttons"]["colab_url"]
    assert settings["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    # A clone's own build (its branch holds the chapters as committed, repository unset): Binder works, Colab would
    # open a chapter that cannot fetch its code, so it has no button.
    sweep.publish_settings(tmp_path / "book" / "_config.yml", "stand-in/oscbind-book", "main")
    settings = yaml.safe_load((tmp_path / "book" / "_config.yml").read_text())
    assert settings["launch_buttons"]["binderhub_url"] == "https://mybinder.org"
    assert settings["launch_buttons"]["colab_url"] == ""
    monkeypatch.delenv("OSCBIND_REPOSITORY")
    monkeypatch.setattr(sweep.subprocess, "run", lambda *a, **k: type("R", (), {"stdout": ""})())  # no git origin
    fresh = book_with(tmp_path / "other", "reproducing").parent
    assert sweep.repository(fresh) == ""
    sweep.publish_settings(fresh / "_config.yml", "", "main")
    settings = yaml.safe_load((fresh / "_config.yml").read_text())
    assert settings["repository"]["url"] == "" and not settings["html"]["use_repository_button"]
    assert settings["launch_buttons"]["colab_url"] == settings["launch_buttons"]["binderhub_url"] == ""


def test_with_several_kernels_a_chapter_starts_once_what_it_reads_is_written(tmp_path):
    """An RMTS run waits for the same/different run of its split and seed (its stage-1 model), a showcase chapter for
    every training run (the explorable exports every split's model), a summary for every chapter that is not one;
    run through parallel.outcomes with stand-in notebooks, no job starts before those it waits for have ended."""
    from oscbind_tools.book import parallel

    jobs = sweep.plan(NOTEBOOKS, tmp_path, [95, 50], [0], 95, "cpu", True)
    by = {(j.chapter, j.tag): j for j in jobs}
    assert sweep.waits_for(by["rmts", "m50-seed0"], jobs) == [by["same_different", "m50-seed0"]]
    training = [j for j in jobs if j.role == sweep.SPLIT]
    assert sweep.waits_for(by["explorable", "m95-seed0"], jobs) == training
    assert sweep.waits_for(by["findings", "all"], jobs) == [j for j in jobs if j.role != sweep.SUMMARY]
    ended = [job for job, _ in parallel.outcomes(jobs, sweep.waits_for, lambda j: False, stand_in, kernels=2)]
    assert sorted(map(id, ended)) == sorted(map(id, jobs))
    for job in jobs:
        assert all(ended.index(j) < ended.index(job) for j in sweep.waits_for(job, jobs)), job.chapter


def stand_in(job) -> tuple[bool, float, str]:
    """A notebook that takes a moment (a module-level function: it runs in a worker process)."""
    import time

    time.sleep(0.05 * (hash(job.chapter) % 4))
    return True, 0.0, "ok"
