"""Trainers and the checkpoint cache: determinism, train-or-load, atomic and verified checkpoints."""

import pytest
import torch

from oscbind_lite.cache import CheckpointError, _atomic_write, load_checkpoint, save_checkpoint, write_json
from oscbind_lite.train import load_same_different, resolve_device, train_rmts, train_same_different, with_overrides


def test_same_seed_gives_identical_metrics_and_weights(tiny, tmp_path):
    a = train_same_different(tiny, "cpu", tmp_path / "a", progress=False)
    b = train_same_different(tiny, "cpu", tmp_path / "b", progress=False)
    assert not a.cached and not b.cached
    for k in ("test_accuracy", "train_accuracy"):
        assert a.metrics[k] == b.metrics[k]
    assert a.history["loss"] == b.history["loss"]
    for (n, p), (_, q) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(p, q), n
    c = train_same_different(with_overrides(tiny, seed=1), "cpu", tmp_path / "c", progress=False)
    assert c.history["loss"] != a.history["loss"]


def test_history_and_metrics_have_what_the_book_needs(tiny):
    r = train_same_different(tiny, "cpu", progress=False)
    assert len(r.history["loss"]) == len(r.history["accuracy"]) == 12
    assert r.history["eval_step"] == [6, 12] and len(r.history["test_accuracy"]) == 2
    for k in ("task", "m", "seed", "test_accuracy", "train_accuracy", "steps", "wall_seconds", "device", "config"):
        assert k in r.metrics
    assert r.metrics["device"] == "cpu" and 0 <= r.metrics["test_accuracy"] <= 1


def test_second_call_loads_the_checkpoint_instead_of_training(tiny, private_cache):
    first = train_same_different(tiny, "cpu", progress=False)
    again = train_same_different(tiny, "cpu", progress=False)
    assert again.cached and again.metrics["test_accuracy"] == first.metrics["test_accuracy"]
    for p, q in zip(first.model.parameters(), again.model.parameters()):
        assert torch.equal(p, q)
    other = train_same_different(with_overrides(tiny, gamma=0.25), "cpu", progress=False)
    assert not other.cached  # any change of config is a different key
    assert len(list(private_cache.glob("same-different-*.pt"))) == 2


def test_rmts_reuses_the_stage1_checkpoint(tiny, private_cache):
    stage1 = train_same_different(tiny, "cpu", progress=False)
    before = stage1.path.stat().st_mtime_ns
    rmts = train_rmts(tiny, "cpu", progress=False)
    assert stage1.path.stat().st_mtime_ns == before  # not retrained, not rewritten
    assert rmts.metrics["task"] == "rmts" and len(rmts.history["loss"]) == 8
    # the frozen features are exactly the stage-1 weights
    for p, q in zip(stage1.model.parameters(), rmts.model.features.parameters()):
        assert torch.equal(p, q) and not q.requires_grad
    assert train_rmts(tiny, "cpu", progress=False).cached


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


def test_a_corrupt_cached_checkpoint_is_reported_and_replaced(tiny, capsys):
    first = train_same_different(tiny, "cpu", progress=False)
    first.path.write_bytes(first.path.read_bytes()[:200])
    again = train_same_different(tiny, "cpu", progress=False)
    assert not again.cached and "corrupt" in capsys.readouterr().err
    assert load_checkpoint(again.path)["metrics"]["test_accuracy"] == first.metrics["test_accuracy"]


def test_interrupted_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "m.json"
    write_json(path, {"a": 1})

    def half_then_fail(f):
        f.write(b'{"a": 2, "b": [')
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _atomic_write(path, half_then_fail)
    assert '"a": 1' in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # the temporary file is gone too


def test_devices():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="^device: "):
        resolve_device("tpu")


def test_a_checkpoint_alone_rebuilds_its_model(tiny):
    trained = train_same_different(with_overrides(tiny, T=7, D=6), "cpu", progress=False)
    rebuilt = load_same_different(trained.path)
    assert rebuilt.cfg.T == 7 and rebuilt.cfg.D == 6  # from the stored config, not today's defaults
    images = torch.rand(4, 2, 1, 32, 32)
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    torch.testing.assert_close(rebuilt(images, gen()), trained.model(images, gen()))
