"""Nothing lost, nothing silently wrong: the edge cases of the command lines as a table.

Each row of CASES is one command a user might type: the exit status it must give, a piece of the one
line it must print on stderr, and whether training may have written anything. Every error is one
line (never a traceback), and an error leaves no metrics.json, no checkpoint and no temporary file.
"""

from __future__ import annotations

import json
import math
import os
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
    return tmp_path


# (name, extra arguments of `train`, exit status, a piece of the one stderr line)
CASES = [
    ("lr infinite", ["--lr", "inf"], 2, "lr: must be a finite number"),
    ("lr not a number", ["--lr", "nan"], 2, "lr: must be a finite number"),
    ("gamma infinite", ["--gamma", "inf"], 2, "gamma: must be a finite number"),
    ("rmts lr infinite", ["--task", "rmts", "--rmts-lr", "inf"], 2, "rmts_lr: must be a finite number"),
    ("lr that diverges", ["--lr", "1e6"], 1, "lr, gamma, T: the loss became nan"),
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
        "(--results runs/evidence-smoke)"]
    assert (results / "runs.csv").read_text() == "the paper's table\n"


def test_profiles_have_their_own_default_folders():
    from oscbind_tools.evidence import default_results

    assert default_results("paper") == Path("results")
    assert default_results("smoke") == Path("runs/evidence-smoke")


def test_a_sweep_with_an_impossible_split_stops_before_any_kernel(tmp_path):
    start = time.perf_counter()
    r = run("oscbind_tools", "sweep", "--m", "200", "--showcase-m", "200", "--runs", tmp_path / "runs")
    assert r.returncode == 2 and time.perf_counter() - start < 30
    assert r.stderr.strip().splitlines() == ["error: m: must be between 2 and 98 for same-different with 100 icons, got 200"]
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_a_chapter_refuses_an_unwritable_out_dir_before_training(tmp_path, monkeypatch):
    from oscbind_tools import chapter

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
    from oscbind_tools.evidence import _reason

    log = tmp_path / "job.err"
    log.write_text("Traceback (most recent call last):\n  File x\nOSError: [Errno 28] No space left on device\n"
                   "submitit WARNING: job failed\n")
    assert _reason(RuntimeError("job 12 failed, see log"), log) == "OSError: [Errno 28] No space left on device"
