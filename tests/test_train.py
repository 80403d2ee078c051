"""Trainers and the checkpoint cache: determinism, train-or-load, atomic and verified checkpoints."""

import json

import pytest
import torch

from oscbind_lite.cache import (CheckpointError, atomic_write, config_key, load_checkpoint, save_checkpoint, write_csv,
                                write_json)
from oscbind_lite.config import SMOKE, with_overrides
from oscbind_lite.config import TrainConfig
from oscbind_lite.train import (environment, eval_sets, fit, load_same_different, lr_factor, resolve_device,
                                save_metrics, train_rmts, train_same_different, warmup_cosine)


def test_same_seed_gives_identical_metrics_and_weights(smoke_run, tmp_path):
    a = train_same_different(smoke_run, "cpu", tmp_path / "a", progress=False)
    b = train_same_different(smoke_run, "cpu", tmp_path / "b", progress=False)
    assert not a.cached and not b.cached
    for k in ("test_accuracy", "train_accuracy"):
        assert a.metrics[k] == b.metrics[k]
    assert a.history["loss"] == b.history["loss"]
    for (n, p), (_, q) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(p, q), n
    c = train_same_different(with_overrides(smoke_run, seed=1), "cpu", tmp_path / "c", progress=False)
    assert c.history["loss"] != a.history["loss"]


def test_history_and_metrics_have_what_the_book_needs(smoke_run):
    r = train_same_different(smoke_run, "cpu", progress=False)
    steps, every = SMOKE["steps"], SMOKE["eval_every"]
    assert len(r.history["loss"]) == len(r.history["accuracy"]) == steps
    assert r.history["eval_step"] == list(range(every, steps + 1, every)) and r.history["eval_step"][-1] == steps
    assert len(r.history["test_accuracy"]) == len(r.history["eval_step"])
    for k in ("task", "m", "seed", "test_accuracy", "train_accuracy", "steps", "wall_seconds", "device", "config",
              "environment", "key", "version"):
        assert k in r.metrics
    assert r.metrics["device"] == "cpu" and 0 <= r.metrics["test_accuracy"] <= 1 and r.metrics["steps"] == steps
    assert r.metrics["test_accuracy"] == r.history["test_accuracy"][-1]  # the last evaluation is on the same fixed set
    env = r.metrics["environment"]
    assert env["torch"] == str(torch.__version__) and env["compile"] is False and env["threads"] >= 1
    assert r.metrics["eval_size"] == SMOKE["eval_size"] and r.metrics["n_test_icons"] == 100 - smoke_run.data.m


def test_second_call_loads_the_checkpoint_instead_of_training(smoke_run, private_cache):
    first = train_same_different(smoke_run, "cpu", progress=False)
    again = train_same_different(smoke_run, "cpu", progress=False)
    assert again.cached and again.metrics["test_accuracy"] == first.metrics["test_accuracy"]
    for p, q in zip(first.model.parameters(), again.model.parameters()):
        assert torch.equal(p, q)
    other = train_same_different(with_overrides(smoke_run, gamma=0.25), "cpu", progress=False)
    assert not other.cached  # any change of config is a different key
    assert len(list(private_cache.glob("same-different-*.pt"))) == 2


def test_rmts_reuses_the_stage1_checkpoint(smoke_run, private_cache):
    stage1 = train_same_different(smoke_run, "cpu", progress=False)
    before = stage1.path.stat().st_mtime_ns
    rmts = train_rmts(smoke_run, "cpu", progress=False)
    assert stage1.path.stat().st_mtime_ns == before  # not retrained, not rewritten
    assert rmts.metrics["task"] == "rmts" and len(rmts.history["loss"]) == SMOKE["rmts_steps"]
    assert rmts.history["eval_step"] == list(range(SMOKE["rmts_eval_every"], SMOKE["rmts_steps"] + 1,
                                                   SMOKE["rmts_eval_every"]))
    # the frozen stage-1 model holds exactly the stage-1 weights
    for p, q in zip(stage1.model.parameters(), rmts.model.same_different.parameters()):
        assert torch.equal(p, q) and not q.requires_grad
    assert train_rmts(smoke_run, "cpu", progress=False).cached


def test_rmts_trains_at_m_2_and_tests_on_the_98_held_out_icons(smoke_run):
    r = train_rmts(with_overrides(smoke_run, m=2), "cpu", progress=False)
    assert r.metrics["n_test_icons"] == 98 and r.metrics["config"]["data"]["m"] == 2
    assert 0 <= r.metrics["test_accuracy"] <= 1 and len(r.history["loss"]) == SMOKE["rmts_steps"]


def test_checkpoint_round_trip(tmp_path):
    state = {"w": torch.randn(3, 4), "n": torch.tensor(7)}
    save_checkpoint(tmp_path / "c.pt", "k1", {"a": 1}, state, {"loss": [0.5]}, {"test_accuracy": 0.9})
    back = load_checkpoint(tmp_path / "c.pt", "k1")
    assert torch.equal(back["state_dict"]["w"], state["w"]) and back["metrics"]["test_accuracy"] == 0.9
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind


def test_corrupt_truncated_or_mismatched_checkpoints_are_refused(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, "k1", {}, {"w": torch.arange(1000.0)}, {}, {})
    with pytest.raises(CheckpointError, match="another config"):
        load_checkpoint(path, "k2")
    blob = bytearray(path.read_bytes())
    # flip one byte inside the tensor data (its float 500.0 sits in the data record)
    at = blob.find(torch.tensor(500.0).numpy().tobytes())
    assert at >= 0
    blob[at + 3] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="do not match their stored digest"):
        load_checkpoint(path, "k1")
    path.write_bytes(bytes(blob[: len(blob) // 2]))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path, "k1")
    path.write_bytes(b"")
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_a_corrupt_cached_checkpoint_is_reported_and_replaced(smoke_run, capsys):
    first = train_same_different(smoke_run, "cpu", progress=False)
    first.path.write_bytes(first.path.read_bytes()[:200])
    again = train_same_different(smoke_run, "cpu", progress=False)
    assert not again.cached and "corrupt" in capsys.readouterr().err
    assert load_checkpoint(again.path)["metrics"]["test_accuracy"] == first.metrics["test_accuracy"]


def test_interrupted_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "m.json"
    write_json(path, {"a": 1})

    def half_then_fail(f):
        f.write(b'{"a": 2, "b": [')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, half_then_fail)
    assert '"a": 1' in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # the temporary file is gone too


def test_auto_device_prefers_cuda_and_unknown_or_absent_devices_are_refused(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    for bad in ("tpu", "gpu", ""):
        with pytest.raises(ValueError, match="^device: "):
            resolve_device(bad)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="^device: 'cuda:1' asked for, but no CUDA device"):
        resolve_device("cuda:1")


def test_a_checkpoint_alone_rebuilds_its_model(smoke_run):
    trained = train_same_different(with_overrides(smoke_run, T=7, D=6), "cpu", progress=False)
    rebuilt = load_same_different(trained.path)
    assert rebuilt.cfg.T == 7 and rebuilt.cfg.D == 6  # from the stored config, not today's defaults
    images = torch.rand(4, 2, 1, 32, 32)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    torch.testing.assert_close(rebuilt(images, gen()), trained.model(images, gen()))


def test_an_rmts_checkpoint_is_not_loaded_as_a_same_different_model(smoke_run):
    rmts = train_rmts(smoke_run, "cpu", progress=False)
    with pytest.raises(CheckpointError, match="holds a rmts head"):
        load_same_different(rmts.path)


def test_save_metrics_writes_metrics_with_the_cache_flag_and_the_history(smoke_run, tmp_path):
    first = train_same_different(smoke_run, "cpu", progress=False)
    again = train_same_different(smoke_run, "cpu", progress=False)
    for result, folder, cached in ((first, tmp_path / "a", False), (again, tmp_path / "b", True)):
        path = save_metrics(result, folder)
        metrics = json.loads(path.read_text())
        assert metrics["cached"] is cached and metrics["test_accuracy"] == first.metrics["test_accuracy"]
        assert json.loads((folder / "history.json").read_text())["loss"] == first.history["loss"]
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["loaded_on"] == "cpu"


def test_evaluation_sets_are_fixed_per_seed_and_task(smoke_run):
    a, b = eval_sets(smoke_run, "same-different", torch.device("cpu")), eval_sets(smoke_run, "same-different", "cpu")
    for split in ("test", "train"):
        assert torch.equal(a[split].images, b[split].images) and len(a[split].labels) == SMOKE["eval_size"]
    other = eval_sets(with_overrides(smoke_run, seed=1), "same-different", "cpu")
    assert not torch.equal(a["test"].icons, other["test"].icons)
    rmts = eval_sets(smoke_run, "rmts", "cpu")
    assert rmts["test"].images.shape[:3] == (SMOKE["rmts_eval_size"], 3, 2)


def test_warmup_then_cosine_learning_rate_on_hand_values():
    # 100 steps: 10 warm-up steps rising linearly to 1, then 0.5 (1 + cos(pi (step - 10) / 90)) down to 0
    assert warmup_cosine(0, 100) == pytest.approx(0.1)
    assert warmup_cosine(4, 100) == pytest.approx(0.5)
    assert warmup_cosine(9, 100) == pytest.approx(1.0)
    assert warmup_cosine(10, 100) == pytest.approx(1.0)
    assert warmup_cosine(55, 100) == pytest.approx(0.5)
    assert warmup_cosine(100, 100) == pytest.approx(0.0, abs=1e-12)
    factors = [warmup_cosine(k, 100) for k in range(100)]
    assert all(b <= a for a, b in zip(factors[10:], factors[11:])) and min(factors) > 0
    assert warmup_cosine(0, 1) == 1.0  # a one-step run trains at the peak rate


def test_compiling_the_kernels_is_a_different_cache_key(monkeypatch):
    """Compiled kernels round differently, so the same config trains another model: another checkpoint."""
    config = {"kind": "same-different", "model": {"T": 8}}
    plain = config_key(config)
    monkeypatch.setenv("OSCBIND_COMPILE", "1")
    compiled = config_key(config)
    monkeypatch.setenv("OSCBIND_COMPILE", "0")
    assert compiled != plain and config_key(config) == plain
    assert config_key({**config, "model": {"T": 9}}) != plain


def test_a_run_records_whether_its_kernels_were_compiled(smoke_run, monkeypatch):
    """metrics["environment"]["compile"] and the key follow OSCBIND_COMPILE. The kernels themselves are the
    plain ones here (core._kernels patched) so that the bookkeeping is checked without a minute-long compile."""
    from oscbind_lite import core

    assert environment(torch.device("cpu"))["compile"] is False
    plain = train_same_different(smoke_run, "cpu", progress=False)
    monkeypatch.setenv("OSCBIND_COMPILE", "1")
    monkeypatch.setattr(core, "_kernels", lambda: (core._forward_loop, core._backward_loop))
    assert environment(torch.device("cpu"))["compile"] is True
    flagged = train_same_different(smoke_run, "cpu", progress=False)
    assert not flagged.cached and flagged.path != plain.path  # not loaded from the uncompiled checkpoint
    assert flagged.metrics["environment"]["compile"] is True and plain.metrics["environment"]["compile"] is False
    assert flagged.metrics["key"] != plain.metrics["key"]


def test_write_csv_keeps_the_columns_in_order_and_ignores_other_keys(tmp_path):
    path = write_csv(tmp_path / "r.csv", ["b", "a"], [{"a": 1, "b": 2, "extra": 3}, {"a": "x,y", "b": None}])
    assert path.read_text().splitlines() == ["b,a", "2,1", ',"x,y"']


def test_write_csv_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    """A failure after the bytes reached the temporary file (here: fsync) leaves the old file and no temporary."""
    import os

    path = write_csv(tmp_path / "runs.csv", ["a"], [{"a": 1}])
    old = path.read_text()

    def broken_disk(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", broken_disk)
    with pytest.raises(OSError, match="disk full"):
        write_csv(path, ["a"], [{"a": k} for k in range(1000)])
    assert path.read_text() == old
    assert [p.name for p in tmp_path.iterdir()] == ["runs.csv"]

    def rows():
        yield {"a": 2}
        raise RuntimeError("a row could not be computed")

    monkeypatch.undo()
    with pytest.raises(RuntimeError):
        write_csv(path, ["a"], rows())
    assert path.read_text() == old and [p.name for p in tmp_path.iterdir()] == ["runs.csv"]


def test_atomically_written_files_get_the_permissions_open_would_give(tmp_path):
    with open(tmp_path / "plain", "w") as f:
        f.write("x")
    written = write_json(tmp_path / "atomic.json", {"a": 1})
    assert written.stat().st_mode == (tmp_path / "plain").stat().st_mode


def test_patience_stops_a_model_that_cannot_learn_and_not_one_that_does():
    torch.manual_seed(0)
    x = torch.randn(4096, 4)

    def noise(gen):  # labels unrelated to the input: training accuracy never rises
        i = torch.randint(0, 4096, (64,), generator=gen)
        return x[i], torch.randint(0, 2, (64,), generator=gen).float()

    def signal(gen):  # the label is the sign of the first input: accuracy rises to 100 %
        i = torch.randint(0, 4096, (64,), generator=gen)
        return x[i], (x[i, 0] > 0).float()

    class Logistic(torch.nn.Linear):
        def forward(self, inputs, gen=None):
            return super().forward(inputs).squeeze(-1)

    def train(batch, cfg):
        torch.manual_seed(0)
        return fit(Logistic(4, 1), batch, cfg, lambda: {"test_accuracy": 0.5}, torch.Generator().manual_seed(0), "t",
                   progress=False)["loss"]

    cfg = TrainConfig(steps=400, eval_every=20, patience=2, lr=1e-2)
    flat, learns = train(noise, cfg), train(signal, cfg)
    assert len(flat) < 200 and len(flat) % 20 == 0  # stopped early, at the end of a window
    assert len(learns) > len(flat)
    assert len(train(noise, TrainConfig(steps=100, eval_every=20))) == 100  # patience 0: every step


def test_the_authors_schedule_warms_up_from_a_25th_and_ends_at_a_thousandth():
    steps = 1600
    assert lr_factor("authors", 0, steps) == pytest.approx(1 / 25)
    assert lr_factor("authors", 80, steps) == pytest.approx(1.0)  # 5 % of 1600 steps of warm-up
    assert lr_factor("authors", steps, steps) == pytest.approx(1e-3)
    assert all(lr_factor("constant", k, steps) == 1 for k in (0, 800, 1600))
    assert lr_factor("cosine", 500, steps) == warmup_cosine(500, steps)


def test_a_fixed_training_set_with_adam_and_no_clipping_trains(smoke_run):
    run = with_overrides(smoke_run, pool=32, optimizer="adam", clip=0.0, schedule="authors", rmts_pool=32,
                         rmts_schedule="constant")
    r = train_rmts(run, "cpu", progress=False)
    assert r.metrics["steps"] == SMOKE["rmts_steps"] and r.metrics["config"]["stage1"]["pool"] == 32
    with pytest.raises(ValueError, match="^pool: must be 0 or at least batch_size"):
        with_overrides(smoke_run, pool=3).validate()
