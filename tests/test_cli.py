"""The command line: a tiny real run writes metrics.json; every bad input is one line, status 2."""

import json
import subprocess
import sys

import pytest

TINY_ARGS = ["--D", "8", "--channels", "8,8", "--T", "5", "--steps", "10", "--batch-size", "16",
             "--eval-size", "32", "--rmts-steps", "6", "--rmts-eval-size", "16", "--quiet"]


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "oscbind_lite", *args], capture_output=True, text=True, env=env)


def test_train_writes_metrics_and_rmts_reuses_stage1(tmp_path):
    r = cli("train", "--task", "same-different", "--m", "50", "--seed", "2", "--out", str(tmp_path / "sd"), *TINY_ARGS)
    assert r.returncode == 0, r.stderr
    sd = json.loads((tmp_path / "sd" / "metrics.json").read_text())
    for key in ("task", "m", "seed", "test_accuracy", "train_accuracy", "steps", "wall_seconds", "device", "config"):
        assert key in sd
    assert (sd["task"], sd["m"], sd["seed"], sd["steps"], sd["cached"]) == ("same-different", 50, 2, 10, False)
    assert sd["config"]["model"]["T"] == 5
    r = cli("train", "--task", "rmts", "--m", "50", "--seed", "2", "--out", str(tmp_path / "rmts"), *TINY_ARGS)
    assert r.returncode == 0, r.stderr
    rmts = json.loads((tmp_path / "rmts" / "metrics.json").read_text())
    assert rmts["task"] == "rmts" and rmts["steps"] == 6
    history = json.loads((tmp_path / "rmts" / "history.json").read_text())
    assert len(history["loss"]) == 6


@pytest.fixture(scope="module")
def glyph_dirs(tmp_path_factory):
    from PIL import Image
    root = tmp_path_factory.mktemp("glyphs")
    (root / "unreadable").mkdir()
    for name in ("a.png", "b.png"):
        (root / "unreadable" / name).write_bytes(b"garbage")
    (root / "one").mkdir()
    Image.new("L", (20, 20), 255).save(root / "one" / "x.png")
    return root


BAD = [
    (["--m", "200"], "m: "),
    (["--m", "1"], "m: "),
    (["--task", "rmts", "--m", "97"], "m: "),
    (["--task", "classify"], "--task"),
    (["--device", "tpu"], "device: "),
    (["--T", "0"], "T: "),
    (["--N", "1"], "N: "),
    (["--gamma", "0"], "gamma: "),
    (["--gamma", "-1"], "gamma: "),
    (["--glyphs", "MISSING"], "glyphs: "),
    (["--glyphs", "UNREADABLE"], "glyphs: "),
    (["--glyphs", "ONE"], "glyphs: "),
]


@pytest.mark.parametrize("args,name", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_naming_the_parameter(args, name, glyph_dirs, tmp_path):
    args = [{"MISSING": str(glyph_dirs / "nope"), "UNREADABLE": str(glyph_dirs / "unreadable"),
             "ONE": str(glyph_dirs / "one")}.get(a, a) for a in args]
    r = cli("train", "--out", str(tmp_path / "out"), *args)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert name in lines[0]
    assert not (tmp_path / "out").exists()
