"""Nothing lost, nothing silently wrong: the edge cases of the command lines as a table.

Each row of CASES is one command a user might type: the exit status it must give, a piece of the one
line it must print on stderr, and whether training may have written anything. Every error is one
line (never a traceback), and an error leaves no metrics.json, no checkpoint and no temporary file.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from oscbind_lite.cli import flag
from oscbind_lite.config import SMOKE, settings
from procs import processes

ROOT = Path(__file__).resolve().parents[1]
SMOKE_ARGS = [a for name, value in SMOKE.items() for a in
              (flag(settings()[name]), ",".join(map(str, value)) if isinstance(value, tuple) else str(value))] + ["--quiet"]


def run(module: str, *args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd or ROOT)


@pytest.fixture
def place(tmp_path):
    """Files and folders the cases point at."""
    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "rgba").mkdir()
    for k, shape in enumerate(([4, 4, 20, 20], [10, 2, 14, 28], [2, 10, 28, 14])):  # black ink on transparency
        img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
        img.paste((0, 0, 0, 255), tuple(shape))
        img.save(tmp_path / "rgba" / f"{k}.png")
    (tmp_path / "blank").mkdir()
    for name, fill in (("a.png", 0), ("b_blank.png", None), ("c.png", 0)):  # b is white all over
        img = Image.new("L", (20, 20), 255)
        if fill is not None:
            img.paste(fill, (5, 5, 15, 15))
        img.save(tmp_path / "blank" / name)
    bank = np.random.default_rng(0).random((4, 16, 16))
    bank[2, 3, 3] = np.nan
    np.save(tmp_path / "nan.npy", bank)
    (tmp_path / "same").mkdir()
    for name in ("0.png", "1.png", "2.png", "3.png", "4.png"):  # the same icon five times
        img = Image.new("L", (20, 20), 255)
        img.paste(0, (4, 4, 16, 9))
        img.save(tmp_path / "same" / name)
    return tmp_path


# (name, extra arguments of `train`, exit status, a piece of the one stderr line)
CASES = [
    ("lr infinite", ["--lr", "inf"], 2, "lr: must be a finite number"),
    ("lr not a number", ["--lr", "nan"], 2, "lr: must be a finite number"),
    ("gamma infinite", ["--gamma", "inf"], 2, "gamma: must be a finite number"),
    ("rmts lr infinite", ["--task", "rmts", "--rmts-lr", "inf"], 2, "rmts_lr: must be a finite number"),
    ("lr that diverges", ["--lr", "1e38", "--weight-decay", "0"], 1, "lr: the optimiser step overflowed"),
    ("lr negative, as a user types it", ["--lr", "-1e-3"], 2, "lr: must be a finite number > 0, got -0.001"),
    ("gamma minus infinity", ["--gamma", "-inf"], 2, "gamma: must be a finite number > 0, got -inf"),
    ("rmts lr that would overflow", ["--task", "rmts", "--rmts-lr", "1e300"], 2, "rmts_lr: must be below 1 / rmts_weight_decay"),
    ("weight decay that flips the weights", ["--weight-decay", "1e300"], 2, "weight_decay: must be below 1 / lr"),
    ("weight decay 1e38", ["--weight-decay", "1e38"], 2, "weight_decay: must be below 1 / lr"),
    ("a batch beyond memory", ["--batch-size", "5000000"], 2, "batch_size: batch_size = 5000000 needs about"),
    ("an evaluation set beyond memory", ["--eval-size", "20000000"], 2, "eval_size: eval_size = 20000000 needs about"),
    ("an MLP beyond memory", ["--hidden", "2000000000"], 2, "hidden: hidden = 2000000000 needs about"),
    ("images beyond memory", ["--image-size", "60000"], 2, "image_size: image_size = 60000 needs about"),
    ("a CNN beyond memory", ["--channels", "60000,60000"], 2, "channels: channels = (60000, 60000) needs about"),
    ("an RMTS batch beyond memory", ["--task", "rmts", "--rmts-batch-size", "5000000"], 2, "rmts_batch_size: "),
    ("T beyond any run", ["--T", "1000000000000000000000"], 2, "T: must be at most 100,000"),
    ("steps beyond any run", ["--steps", "100000000000000"], 2, "steps: must be at most 10,000,000"),
    ("seed negative", ["--seed", "-1"], 2, "seed: must be an integer >= 0"),
    ("out is a file", ["--out", "{a_file}"], 2, "out: "),
    ("out under a file", ["--out", "{a_file}/sub"], 2, "out: "),
    ("out in /proc", ["--out", "/proc/oscbind-out"], 2, "out: cannot write"),
    ("cache in /proc", ["--cache", "/proc/oscbind-cache"], 2, "cache: cannot write"),
    ("cache is a file", ["--cache", "{a_file}"], 2, "cache: "),
    ("too many CNN blocks", ["--channels", "8,8,8,8,8,8"], 2, "channels: must be at most 5 blocks"),
    ("D beyond memory", ["--D", "100000"], 2, "D, N: the coupling matrices"),
    ("glyphs with a NaN pixel", ["--glyphs", "{tmp}/nan.npy", "--m", "2"], 2, "nan.npy[2] has non-finite pixels"),
    ("glyphs with a blank image", ["--glyphs", "{tmp}/blank", "--m", "2"], 2, "b_blank.png: it is a single flat colour"),
    ("m too large", ["--m", "99"], 2, "m: must be between 2 and 98"),
    ("threads far beyond the cores", ["--threads", "4096"], 2, "threads: 4096 threads need 4096 cores"),
    ("votes without end", ["--votes", "1000000000"], 2, "votes: must be at most 1,000 draws"),
    ("a pool beyond memory", ["--pool", "1000000000000"], 2, "pool: pool = 1000000000000 needs about"),
    ("an RMTS pool beyond memory", ["--task", "rmts", "--rmts-pool", "10000000000"], 2, "rmts_pool: rmts_pool = "),
    ("glyphs of identical icons", ["--glyphs", "{tmp}/same", "--m", "2"], 2, "same/1.png are the same icon"),
]


@pytest.mark.parametrize("name,args,status,line", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(name, args, status, line, place, capsys):
    """In-process for speed (the same main() the command runs); one real process below shows the exit codes."""
    from oscbind_lite.cli import main

    out, cache = place / "out", place / "cache"
    args = [a.format(a_file=place / "a_file", tmp=place) for a in args]
    defaults = {"--out": out, "--cache": cache}
    given = {a for a in args if a.startswith("--")}
    extra = [str(x) for k, v in defaults.items() if k not in given for x in (k, v)]
    assert main(["train", *SMOKE_ARGS, *extra, *args]) == status
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert line in lines[0]
    assert not list(place.rglob("metrics.json")) and not list(place.rglob("*.pt")), "an error wrote results"
    assert not list(place.rglob(".*.tmp")), "a temporary file was left behind"


def test_a_real_process_exits_with_the_status_and_one_line(tmp_path):
    r = run("oscbind_lite", "train", "--out", tmp_path / "out", "--lr", "inf")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == ["error: lr: must be a finite number > 0, got inf"]


def test_transparent_icons_train_with_alpha_as_ink(place):
    """Black-on-transparent PNGs, the commonest icon format, are icons (not "a single flat colour")."""
    from oscbind_lite.data import load_glyphs

    bank = load_glyphs(place / "rgba")
    assert bank.shape == (3, 32, 32) and all(b.max() > 0.9 for b in bank) and bank[1].min() < 0.1  # ink, on background
    assert not np.allclose(bank[1], bank[2])  # the tall and the wide bar stay different icons


def test_ctrl_c_during_training_exits_130_with_one_line_and_nothing_half_written(tmp_path):
    # A shell that started us in the background may ignore SIGINT, and Python keeps an ignored SIGINT
    # ignored: give the child the default disposition, as a terminal would.
    proc = subprocess.Popen([sys.executable, "-m", "oscbind_lite", "train", "--out", str(tmp_path / "out"), "--cache",
                             str(tmp_path / "cache"), "--D", "8", "--channels", "8,8", "--steps", "100000", "--quiet"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (tmp_path / "cache").exists() and time.monotonic() < deadline:  # checked just before training
        time.sleep(0.2)
    time.sleep(2)  # training has begun
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()  # never leave a 100,000-step training behind if the interrupt went unheard
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == ["interrupted: nothing was written (files are replaced atomically)"]
    assert not (tmp_path / "out" / "metrics.json").exists()
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob(".*.tmp"))


def test_summary_skips_bad_metrics_files_and_still_prints_the_table(tmp_path):
    good = {"task": "same-different", "m": 50, "seed": 0, "test_accuracy": 0.9, "train_accuracy": 0.95, "steps": 10,
            "wall_seconds": 1.0, "device": "cpu"}
    bad = {"truncated": '{"task": "same-', "empty": "{}", "a_list": "[1, 2]", "null_accuracy": json.dumps(good | {"test_accuracy": None}),
           "no_task": json.dumps({k: v for k, v in good.items() if k != "task"})}
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "metrics.json").write_text(json.dumps(good))
    for name, text in bad.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(text)
    r = run("oscbind_tools", "summary", tmp_path)
    assert r.returncode == 0, r.stderr
    warnings = r.stderr.strip().splitlines()
    assert len(warnings) == len(bad) and all(w.startswith("warning: skipped ") for w in warnings)
    assert {name for name in bad if any(f"/{name}/metrics.json" in w for w in warnings)} == set(bad)
    assert "| same-different | 50 | 0 | 90.0 % |" in r.stdout


def test_a_smoke_profile_never_writes_into_the_paper_results(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "profile.json").write_text(json.dumps({"profile": "paper", "jobs": 100}))
    (results / "runs.csv").write_text("the paper's table\n")
    r = run("oscbind_tools", "evidence", "--profile", "smoke", "--results", results, "--executor", "local")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"error: results: {results} holds the paper profile's results; give the smoke profile its own folder "
        "(--results results/smoke)"]
    assert (results / "runs.csv").read_text() == "the paper's table\n"


def test_profiles_have_their_own_default_folders():
    from oscbind_tools.studies import results_folder as default_results

    assert default_results("paper") == Path("results")
    assert default_results("smoke") == Path("results/smoke")


def test_a_sweep_with_an_impossible_split_stops_before_any_kernel(tmp_path):
    start = time.perf_counter()
    r = run("oscbind_tools", "sweep", "--m", "200", "--showcase-m", "200", "--runs", tmp_path / "runs")
    assert r.returncode == 2 and time.perf_counter() - start < 30
    assert r.stderr.strip().splitlines() == ["error: m: must be between 2 and 98 for same-different with 100 icons, got 200"]
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_a_chapter_refuses_an_unwritable_out_dir_before_training(tmp_path, monkeypatch):
    from oscbind_tools.book import chapter

    cell = f"{chapter.MARKER}\nm: int = 95  # icons\nsmoke: bool = False  # quick\nout_dir: str = \"\"  # where\n"
    monkeypatch.setattr(chapter, "_history", lambda: ["", cell])
    with pytest.raises(chapter.ParameterError, match="^out_dir: cannot write to /proc/oscbind"):
        chapter.setup({"m": 95, "smoke": True, "out_dir": "/proc/oscbind"})


def test_a_failed_save_after_training_warns_and_keeps_the_model(tmp_path, monkeypatch, capsys):
    from oscbind_lite import train
    from oscbind_lite.config import smoke

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(train, "save_checkpoint", full_disk)
    result = train.train_same_different(smoke(), "cpu", tmp_path / "cache", progress=False)
    assert not result.cached and 0 <= result.metrics["test_accuracy"] <= 1
    assert "could not save the checkpoint" in capsys.readouterr().err
    train.save_metrics(result, tmp_path / "out")  # the metrics are still written
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["task"] == "same-different"


def test_json_outputs_are_valid_json(tmp_path):
    from oscbind_lite.cache import write_json

    write_json(tmp_path / "m.json", {"loss": [0.5, math.nan, math.inf], "d": -math.inf})
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text) == {"loss": [0.5, None, None], "d": None}
    assert "NaN" not in text and "Infinity" not in text


def test_edited_metrics_in_a_checkpoint_are_refused(tmp_path):
    import torch

    from oscbind_lite.cache import CheckpointError, load_checkpoint, save_checkpoint

    path = tmp_path / "c.pt"
    save_checkpoint(path, "k", {}, {"w": torch.ones(3)}, {"loss": [1.0]}, {"test_accuracy": 0.61})
    payload = torch.load(path, weights_only=True)
    payload["metrics"]["test_accuracy"] = 0.99
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="stored metrics"):
        load_checkpoint(path, "k")


def test_a_temporary_file_left_by_a_killed_writer_is_cleaned(tmp_path):
    from oscbind_lite.cache import STALE_TEMPORARY_S, write_json

    stale, fresh = tmp_path / ".m.json.abc.tmp", tmp_path / ".m.json.def.tmp"
    stale.write_text("half")
    fresh.write_text("someone writing now")
    old = time.time() - STALE_TEMPORARY_S - 10
    os.utime(stale, (old, old))
    write_json(tmp_path / "m.json", {"a": 1})
    assert not stale.exists() and fresh.exists()


def test_a_relative_or_home_cache_is_resolved_once(tmp_path, monkeypatch):
    from oscbind_lite.cache import cache_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OSCBIND_CACHE", "some/cache")
    assert cache_dir() == tmp_path / "some" / "cache"
    monkeypatch.setenv("OSCBIND_CACHE", "~/x-cache")
    assert cache_dir() == Path.home() / "x-cache"


def test_a_failed_jobs_report_names_its_error_not_only_its_log(tmp_path):
    from oscbind_tools.studies.evidence import _reason

    log = tmp_path / "job.err"
    log.write_text("Traceback (most recent call last):\n  File x\nOSError: [Errno 28] No space left on device\n"
                   "submitit WARNING: job failed\n")
    assert _reason(RuntimeError("job 12 failed, see log"), log) == "OSError: [Errno 28] No space left on device"


def test_an_earlier_runs_folder_is_refused_unless_overwrite(tmp_path, capsys):
    from oscbind_lite.cli import main

    base = ["train", *SMOKE_ARGS, "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")]
    assert main(base) == 0
    before = (tmp_path / "out" / "metrics.json").read_text()
    capsys.readouterr()
    assert main([*base, "--task", "rmts"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: out: {tmp_path / 'out'} already holds a run's metrics.json (same-different, m = 95, seed 0); "
                   "give another folder, or --overwrite to replace it"]
    assert (tmp_path / "out" / "metrics.json").read_text() == before  # nothing replaced
    assert main([*base, "--task", "rmts", "--overwrite"]) == 0
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["task"] == "rmts"


def test_a_stale_rmts_head_is_never_served_on_a_retrained_stage_1(tmp_path, capsys):
    """The RMTS head is keyed by the stage-1 weights it was trained on: when stage 1 is retrained under its key into
    other weights (its file was corrupt, another thread count), the old head is not loaded on top of it."""
    import torch

    from oscbind_lite.cli import main

    cache, before = tmp_path / "cache", torch.get_num_threads()
    base = ["train", *SMOKE_ARGS, "--task", "rmts", "--cache", str(cache)]
    try:
        assert main([*base, "--threads", "1", "--out", str(tmp_path / "o1")]) == 0
        for stage1 in cache.glob("same-different-*.pt"):
            os.truncate(stage1, 1000)
        assert main([*base, "--threads", "2", "--out", str(tmp_path / "o2")]) == 0
    finally:
        torch.set_num_threads(before)
    first, second = (json.loads((tmp_path / o / "metrics.json").read_text()) for o in ("o1", "o2"))
    heads = sorted(cache.glob("rmts-*.pt"))
    assert not second["cached"] and "loaded from cache" not in capsys.readouterr().out
    assert len(heads) == 2 and first["key"] != second["key"]  # another stage 1, another head


def tmpfs(path: Path, size: str):
    """A real, small file system mounted at path (as root), or a skip saying why not."""
    if os.geteuid() != 0:
        pytest.skip("a real full disk needs a tmpfs, which only root can mount here")
    path.mkdir(parents=True, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("mount -t tmpfs is not allowed in this environment")
    return path


@pytest.fixture
def full_disk(tmp_path):
    """An 8 kB tmpfs: too small for a checkpoint, big enough for a metrics.json. Unmounted afterwards."""
    disk = tmpfs(tmp_path / "full", "8k")
    yield disk
    subprocess.run(["umount", str(disk)], capture_output=True)


def test_a_full_cache_disk_loses_no_finished_training(tmp_path, full_disk):
    """On a real full disk torch.save fails with a RuntimeError of its own: the trained model is reported uncached in
    one warning, and its metrics and history are written."""
    r = subprocess.run([sys.executable, "-m", "oscbind_lite", "train", *SMOKE_ARGS, "--out", str(tmp_path / "out"),
                        "--cache", str(full_disk)], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert [ln for ln in r.stderr.splitlines() if ln.startswith("warning: cache: could not save")]
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["cached"] is False
    assert (tmp_path / "out" / "history.json").exists()
    assert not list(full_disk.glob(".*.tmp")) and not list(full_disk.glob("*.pt"))


def test_a_full_output_disk_is_one_line_and_prints_the_numbers(tmp_path, full_disk):
    """--out on a full disk: the accuracy is printed, one error line names out, and no metrics.json stands without its
    history."""
    filler = full_disk / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=1k", "count=8"], capture_output=True)
    r = subprocess.run([sys.executable, "-m", "oscbind_lite", "train", *SMOKE_ARGS, "--out", str(full_disk / "out"),
                        "--cache", str(tmp_path / "cache")], capture_output=True, text=True, cwd=ROOT, timeout=600)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(errors) == 1 and "out: could not write" in errors[0]
    assert "test accuracy" in r.stdout
    assert not (full_disk / "out" / "metrics.json").exists() or (full_disk / "out" / "history.json").exists()


@pytest.mark.parametrize("kernels", [1, 2])
def test_interrupting_a_sweep_is_one_line_and_leaves_no_kernel(tmp_path, kernels):
    """Ctrl-C (SIGINT to the terminal's process group, kernels and workers included) while chapters run: the finished
    notebooks are kept, the sweep says so in one line and exits 130, and the kernel's own dying words stay in its log;
    no kernel outlives it."""
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "oscbind_tools", "sweep", "--smoke", "--kernels", str(kernels),
                             "--runs", str(runs)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "OSCBIND_CACHE": str(tmp_path / "cache")},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not list(runs.glob("same_different/*/stamp.json")) and time.monotonic() < deadline:
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if ln.strip() and not ln.startswith("sweep:")]
    assert proc.returncode == 130, err[-2000:]
    assert lines[-1].startswith("interrupted: ") and "rerun the command to resume" in lines[-1]
    assert not any(word in err for word in ("Traceback", "KeyboardInterrupt", "ZMQError")), err[-2000:]
    assert all(ln.endswith("s)") and ": ok (" in ln for ln in lines[:-1]), lines  # the finished chapters only
    assert list(runs.glob("same_different/*/same_different.ipynb"))  # kept
    deadline = time.monotonic() + 15  # a kernel whose worker was stopped exits once it sees its parent gone
    while (left := kernels_of(tmp_path / "cache")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, left


def kernels_of(cache: Path) -> list[str]:
    """The kernel processes started with this checkpoint cache (their environment names it)."""
    return processes(lambda cmdline, environ: "ipykernel" in cmdline and f"OSCBIND_CACHE={cache}\0" in environ)


def test_a_chapter_that_is_not_a_notebook_is_one_line_before_any_kernel(tmp_path):
    book = tmp_path / "book"
    shutil.copytree(ROOT / "book", book, ignore=shutil.ignore_patterns("_build", "checkpoints", "_vendor"))
    (book / "notebooks" / "rmts.ipynb").write_text('{"cells": [')
    r = run("oscbind_tools", "sweep", "--smoke", "--book", book, "--runs", tmp_path / "runs")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith(f"error: book: {book / 'notebooks' / 'rmts.ipynb'}"
                                                                              " is not a notebook that can be read")
    assert "failed.ipynb" not in r.stderr and not (tmp_path / "runs" / "icons_and_tasks").exists()


def test_a_full_results_disk_keeps_the_finished_runs_and_says_so(tmp_path, full_disk):
    """The evidence engine writing its tables on a real full disk: one line naming results, status 1, no traceback,
    and the finished run file untouched."""
    from dataclasses import asdict

    from oscbind_tools.studies import evidence

    spec = evidence.plan("smoke")[0]
    rows = [{"run": spec.id, "variant": spec.variant, "task": t, "m": spec.m, "seed": spec.seed, "test_accuracy": 0.5,
             "train_accuracy": 0.5, "wall_seconds": 1.0} for t in ("same-different", "rmts")]
    saved = json.dumps({"spec": asdict(spec), "rows": rows, "fidelity": {}, "stamp": evidence.job_stamp(spec, True)})
    (full_disk / "runs").mkdir()
    (full_disk / "runs" / f"{spec.id}.json").write_text(saved)
    (full_disk / "profile.json").write_text('{"profile": "smoke"}')
    subprocess.run(["dd", "if=/dev/zero", f"of={full_disk / 'filler'}", "bs=1k", "count=8"], capture_output=True)
    r = run("oscbind_tools", "evidence", "--profile", "smoke", "--results", full_disk, "--tidy")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: results: could not write the tables in {full_disk}")
    assert (full_disk / "runs" / f"{spec.id}.json").read_text() == saved


def test_a_glyph_folder_with_a_decompression_bomb_is_one_line(tmp_path):
    """A 14,000 x 14,000 PNG in a glyph folder: Pillow's DecompressionBombError came out as a 29-line traceback."""
    folder = tmp_path / "icons"
    folder.mkdir()
    for k in range(3):
        img = Image.new("L", (20, 20), 255)
        img.paste(0, (2 + 4 * k, 2, 8 + 4 * k, 18))
        img.save(folder / f"{k}.png")
    Image.new("1", (14000, 14000), 1).save(folder / "3.png")
    r = run("oscbind_lite", "train", "--glyphs", folder, "--m", "2", "--out", tmp_path / "out", *SMOKE_ARGS)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"error: glyphs: {folder / '3.png'}: it is too large for an icon (196,000,000 pixels; at most 89,478,485, as "
        "it is resized to 32 x 32)"], r.stderr[-2000:]


def test_two_trainings_into_one_out_at_once_the_second_is_refused(tmp_path, capsys):
    """The first to finish was overwritten by the second; now the folder is claimed by the run writing there."""
    from oscbind_lite.cli import main

    out = tmp_path / "out"
    first = subprocess.Popen([sys.executable, "-m", "oscbind_lite", "train", "--out", str(out), "--cache",
                              str(tmp_path / "c1"), *SMOKE_ARGS, "--steps", "100000"], cwd=ROOT,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ((out / ".oscbind-claim").exists() and (out / ".oscbind-claim").read_text()):
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.2)
        assert main(["train", *SMOKE_ARGS, "--out", str(out), "--cache", str(tmp_path / "c2"), "--overwrite"]) == 2
    finally:
        first.kill()
        first.communicate()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: out: {out} is being written by another run (pid {first.pid} on ")
    assert not (out / "metrics.json").exists() and not list((tmp_path / "c2").glob("*.pt"))


def test_a_chapter_refuses_an_out_dir_holding_another_runs_metrics_unless_told(tmp_path, monkeypatch):
    """papermill -p out_dir at another run's folder silently replaced its metrics.json (the command line refused)."""
    from oscbind_tools.book import chapter

    cell = (f"{chapter.MARKER}\nm: int = 95  # icons\nsmoke: bool = False  # quick\nout_dir: str = \"\"  # where\n"
            "overwrite: bool = False  # replace\n")
    monkeypatch.setattr(chapter, "_history", lambda: ["", cell])
    other = tmp_path / "other"
    other.mkdir()
    (other / "metrics.json").write_text(json.dumps({"task": "rmts", "m": 50, "seed": 3}))
    with pytest.raises(chapter.ParameterError, match=rf"^out_dir: {other} already holds a run's metrics.json \(rmts, "
                                                     r"m = 50, seed 3\); give another folder, or set overwrite = True"):
        chapter.setup({"m": 95, "smoke": True, "out_dir": str(other), "overwrite": False})
    assert chapter.setup({"m": 95, "smoke": True, "out_dir": str(other), "overwrite": True}).smoke


def test_a_chapter_run_from_anywhere_finds_the_committed_models_and_says_when_it_trains(tmp_path, monkeypatch,
                                                                                         capfd):
    """The README's papermill example, run from the repository root, looked for book/checkpoints relative to the
    working folder, missed it, and trained a full model without a word."""
    from oscbind_tools.book import chapter

    assert chapter.BOOK_CHECKPOINTS[0] == ROOT / "book" / "checkpoints" and chapter.BOOK_CHECKPOINTS[0].is_dir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OSCBIND_CACHE", str(tmp_path / "cache"))
    cell = f"{chapter.MARKER}\nm: int = 95  # icons\nT: int = 25  # steps\n"
    monkeypatch.setattr(chapter, "_history", lambda: ["", cell])
    chapter.setup({"m": 50, "T": 10})
    err = capfd.readouterr().err.strip().splitlines()  # the process's own stderr: a papermill kernel's terminal
    assert err == ["training: no committed or cached model has these settings (m = 50 (default 95), T = 10 (default "
                   "25)); a chapter that trains trains one first (3,000 steps: minutes on a CPU)"]


def test_a_read_only_cache_that_holds_the_model_serves_it(tmp_path):
    """A read-only --cache was refused ("cannot write") though loading needs no write; training into it still is."""
    cache = tmpfs(tmp_path / "ro", "64m")
    try:
        args = ["train", *SMOKE_ARGS, "--cache", cache]
        assert run("oscbind_lite", *args, "--out", tmp_path / "o1").returncode == 0
        subprocess.run(["mount", "-o", "remount,ro", str(cache)], check=True)
        r = run("oscbind_lite", *args, "--out", tmp_path / "o2")
        assert r.returncode == 0 and "(loaded from cache)" in r.stdout, r.stderr[-2000:]
        r = run("oscbind_lite", *args, "--out", tmp_path / "o3", "--seed", "1")
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [f"error: cache: cannot write to {cache} "
                                                                       "(Read-only file system)"]
    finally:
        subprocess.run(["umount", str(cache)], capture_output=True)


def test_a_refused_evidence_command_writes_nothing_and_blocks_nothing(tmp_path, monkeypatch, capsys):
    """A refused command wrote profile.json, and the next valid command, of another profile, was refused for it."""
    from oscbind_tools.studies import evidence

    monkeypatch.setattr(evidence, "slurm_answers", lambda: False)
    results = tmp_path / "results"
    assert evidence.run_profile("smoke", results, tmp_path / "cache", "slurm") == 2
    assert capsys.readouterr().err.startswith("error: executor: slurm needs")
    assert not (results / "profile.json").exists()
    assert evidence.owner(results, "energy-smoke") is None


def test_stale_evidence_runs_are_reported_as_stale(tmp_path):
    """Run files made by older code were "no finished jobs" or "0 already done", never stale."""
    from dataclasses import asdict

    from oscbind_tools.studies import evidence

    spec, other = evidence.plan("smoke")[:2]
    runs = tmp_path / "runs"
    runs.mkdir()
    saved = {"spec": asdict(spec), "rows": [], "fidelity": {}, "stamp": {**evidence.job_stamp(spec, True), "code": "0"}}
    (runs / f"{spec.id}.json").write_text(json.dumps(saved))
    (runs / f"{other.id}.json").write_text("{not json")
    (tmp_path / "profile.json").write_text('{"profile": "smoke"}')
    r = run("oscbind_tools", "evidence", "--profile", "smoke", "--results", tmp_path, "--tidy")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        f"error: results: no finished smoke jobs in {tmp_path} (0 already done, 2 stale (1 made by other code; 1 "
        "unreadable)); run `python -m oscbind_tools evidence --profile smoke` to redo them"]


def test_evidence_refuses_threads_beyond_the_cores_before_writing(tmp_path):
    r = run("oscbind_tools", "evidence", "--profile", "smoke", "--results", tmp_path / "r", "--executor", "local",
            "--threads", "4096")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert r.stderr.startswith("error: threads: 2 jobs x 4096 threads need 8192 cores") and not (tmp_path / "r").exists()


def test_ctrl_c_on_evidence_is_one_line(tmp_path):
    """Ctrl-C in a terminal reaches submitit's job controllers too: 11-25 lines of their tracebacks in 4 of 5 tries.
    Now they go to the results' logs; the terminal gets the progress and one line."""
    results = tmp_path / "results"
    proc = subprocess.Popen([sys.executable, "-m", "oscbind_tools", "evidence", "--profile", "smoke", "--results",
                             str(results), "--executor", "local", "--workers", "2", "--threads", "1", "--cache",
                             str(tmp_path / "cache")], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not list((results / "logs").glob("*_0_log.err")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # the jobs are training
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal does: the whole process group
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    lines = err.strip().splitlines()
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    assert lines[-1] == "interrupted: running jobs cancelled; rerun the command to resume"
    assert all(ln.startswith(("smoke: ", "done ")) for ln in lines[:-1]), lines


def test_summary_refuses_a_percentage_and_keeps_two_runs_of_one_setting_apart(tmp_path):
    """A metrics.json holding 97.3 (a percentage) was shown as 9730.0 %; two runs of one setting looked identical."""
    good = {"task": "same-different", "m": 50, "seed": 0, "test_accuracy": 0.9, "train_accuracy": 0.95}
    for name, row in (("a", good), ("b", good | {"test_accuracy": 0.8}), ("pct", good | {"test_accuracy": 97.3})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "metrics.json").write_text(json.dumps(row))
    r = run("oscbind_tools", "summary", tmp_path)
    assert r.returncode == 0 and r.stderr.strip().splitlines() == [
        f"warning: skipped {tmp_path / 'pct' / 'metrics.json'}: test_accuracy is 97.3, not a share in [0, 1] "
        "(a percentage?)"]
    assert "9730" not in r.stdout and r.stdout.splitlines()[0].endswith("| path |")
    assert {ln.split(" | ")[-1].rstrip(" |") for ln in r.stdout.splitlines()[2:]} == {str(tmp_path / "a"),
                                                                                   str(tmp_path / "b")}


@pytest.fixture(scope="module")
def results_copy(tmp_path_factory):
    folder = tmp_path_factory.mktemp("results") / "results"
    shutil.copytree(ROOT / "results", folder)
    return folder


@pytest.mark.parametrize("table, text, reason", [
    ("energy/swap.csv", "HEADER", "energy/swap.csv holds no rows"),
    ("energy/locking.csv", "run,variant\nx,y\n", "energy/locking.csv is not this study's table (no column start"),
    ("mechanism/runs.csv", "HEADER", "mechanism/runs.csv holds no rows"),
    ("mechanism/runs.csv", "HEADER_AND_TEXT", "mechanism/runs.csv, row 1: m is"),
], ids=["emptied swap", "foreign locking", "emptied runs", "text for a number"])
def test_findings_refuse_an_emptied_or_foreign_table_in_one_line(results_copy, table, text, reason):
    """An emptied energy/swap.csv gave a verdict "from 0 models" and exit status 0."""
    path = results_copy / table
    before = path.read_text()
    header = before.splitlines()[0]
    path.write_text({"HEADER": header + "\n", "HEADER_AND_TEXT": header + "\n" + ",".join(
        ["word"] * len(header.split(","))) + "\n"}.get(text, text))
    try:
        r = run("oscbind_tools", "findings", "--results", results_copy)
    finally:
        path.write_text(before)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and r.stdout == "", r.stderr[-2000:]
    assert reason in r.stderr


def test_a_model_that_did_not_learn_names_the_settings_changed_not_the_lr(tmp_path, capsys):
    """A huge gamma ended in "try another lr"; the warning now names what differs from the defaults."""
    from oscbind_lite.cli import main

    assert main(["train", *SMOKE_ARGS, "--gamma", "1e6", "--out", str(tmp_path / "out"), "--cache",
                 str(tmp_path / "cache")]) == 0
    warning = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning: ")]
    assert len(warning) == 1 and "near chance: the model did not learn (settings changed from their defaults: " in \
        warning[0] and "gamma = 1000000.0 (default 0.5)" in warning[0] and "try another lr" not in warning[0]
