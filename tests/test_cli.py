"""The command line: one flag per config field, a tiny real run writes metrics.json, bad input is one line, status 2."""

import json
import subprocess
import sys

import pytest

from oscbind_lite.cli import build_parser, flag, main, parse_run
from oscbind_lite.config import SMOKE, RunConfig, settings, smoke, with_overrides

OWN_OPTIONS = {"command", "task", "out", "device", "cache", "retrain", "overwrite", "threads", "quiet"}  # not config fields


def as_args(values: dict) -> list[str]:
    """Command-line options for settings by public name, written the way a user types them."""
    args = []
    for name, value in values.items():
        option = flag(settings()[name])
        if isinstance(value, bool):
            args.append(option if value else "--no-" + option[2:])
        elif isinstance(value, tuple):
            args += [option, ",".join(map(str, value))]
        else:
            args += [option, str(value)]
    return args


SMOKE_ARGS = as_args(SMOKE)


def parse(*args: str) -> RunConfig:
    return parse_run(build_parser().parse_args(["train", "--out", "unused", *args]))


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "oscbind_lite", *args], capture_output=True, text=True, env=env)


def test_parser_has_one_option_per_setting_and_nothing_else_of_the_config(capsys):
    namespace = vars(build_parser().parse_args(["train", "--out", "unused"]))
    assert set(namespace) - OWN_OPTIONS == set(settings())
    assert all(namespace[name] is None for name in settings())  # not given: the config's default applies
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    help_options = set(capsys.readouterr().out.replace(",", " ").replace("[", " ").replace("]", " ").split())
    for s in settings().values():
        assert flag(s) in help_options, s.name
        given = vars(build_parser().parse_args(["train", "--out", "unused", *as_args({s.name: changed(s)})]))
        assert [n for n in settings() if given[n] is not None] == [s.name]  # the flag sets that setting alone


def changed(s):
    if s.choices:
        return next(c for c in s.choices if c != s.default)
    if s.type is bool:
        return not s.default
    if s.name == "channels":
        return (4, 4)
    if s.name == "glyphs":
        return "icons"
    return s.default + 1


def test_flags_parse_into_the_run_config():
    assert parse("--no-learn-omega", "--rmts-steps", "7", "--channels", "8,8") == \
        with_overrides(RunConfig(), learn_omega=False, rmts_steps=7, channels=(8, 8))
    assert parse("--learn-omega") == RunConfig() == parse()
    assert parse("--T", "10", "--gamma", "0.25", "--batch-size", "32", "--rmts-batch-size", "8", "--start",
                 "independent") == with_overrides(RunConfig(), T=10, gamma=0.25, batch_size=32, rmts_batch_size=8,
                                                  start="independent")


def test_the_smoke_setting_written_as_flags_is_the_smoke_config():
    assert parse(*SMOKE_ARGS) == smoke(RunConfig())


def test_glyph_folders_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse("--glyphs", "icons").data.glyphs == str(tmp_path / "icons")


def test_train_writes_metrics_and_rmts_reuses_stage1(tmp_path):
    common = ["--m", "50", "--seed", "2", "--cache", str(tmp_path / "cache"), "--quiet", *SMOKE_ARGS]
    r = cli("train", "--task", "same-different", "--out", str(tmp_path / "sd"), *common)
    assert r.returncode == 0, r.stderr
    sd = json.loads((tmp_path / "sd" / "metrics.json").read_text())
    for key in ("task", "m", "seed", "test_accuracy", "train_accuracy", "steps", "wall_seconds", "device", "config",
                "environment"):
        assert key in sd
    assert (sd["task"], sd["m"], sd["seed"], sd["steps"], sd["cached"]) == ("same-different", 50, 2, SMOKE["steps"], False)
    assert RunConfig.from_dict(sd["config"]) == with_overrides(smoke(RunConfig()), m=50, seed=2)
    r = cli("train", "--task", "rmts", "--out", str(tmp_path / "rmts"), *common)
    assert r.returncode == 0, r.stderr
    rmts = json.loads((tmp_path / "rmts" / "metrics.json").read_text())
    assert rmts["task"] == "rmts" and rmts["steps"] == SMOKE["rmts_steps"]
    history = json.loads((tmp_path / "rmts" / "history.json").read_text())
    assert len(history["loss"]) == SMOKE["rmts_steps"]
    assert len(list((tmp_path / "cache").glob("same-different-*.pt"))) == 1  # stage 1 loaded, not trained again


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
    (["--gamma", "nan"], "gamma: "),
    (["--lr", "inf"], "lr: "),
    (["--rmts-lr", "nan"], "rmts_lr: "),
    (["--rmts-steps", "0"], "rmts_steps: "),
    (["--batch-size", "1"], "batch_size: "),
    (["--steps", "ten"], "--steps"),
    (["--channels", "8,x"], "--channels"),
    (["--channels", "8,0"], "channels: "),
    (["--start", "random"], "--start"),
    (["--omega"], "--omega"),  # the old flag is gone
    (["--threads", "0"], "threads: "),
    (["--glyphs", "MISSING"], "glyphs: "),
    (["--glyphs", "UNREADABLE"], "glyphs: "),
    (["--glyphs", "ONE"], "glyphs: "),
]


@pytest.mark.parametrize("args,name", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_one_line_naming_the_parameter(args, name, glyph_dirs, tmp_path, capsys):
    args = [{"MISSING": str(glyph_dirs / "nope"), "UNREADABLE": str(glyph_dirs / "unreadable"),
             "ONE": str(glyph_dirs / "one")}.get(a, a) for a in args]
    try:
        status = main(["train", "--out", str(tmp_path / "out"), *args])
    except SystemExit as exit:  # argparse's own errors
        status = exit.code
    assert status == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: ") and name in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_bad_value_in_a_real_process_exits_2_with_one_line(tmp_path):
    r = cli("train", "--out", str(tmp_path / "out"), "--gamma", "nan")
    assert r.returncode == 2 and r.stderr.strip() == "error: gamma: must be a finite number > 0, got nan", r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["summary", "sweep", "evidence"])
def test_tooling_commands_live_in_oscbind_tools_not_here(command, capsys):
    with pytest.raises(SystemExit) as exit:
        main([command])
    assert exit.value.code == 2 and "invalid choice" in capsys.readouterr().err
