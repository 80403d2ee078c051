"""The networks: the baselines' bottlenecks read what they claim, and the RMTS stage never touches stage 1."""

import dataclasses

import pytest
import torch

from oscbind_lite.cache import load_checkpoint
from oscbind_lite.config import SMOKE, smoke, with_overrides
from oscbind_lite.data import IconTasks, Renderer, glyph_bank
from oscbind_lite.model import RMTS, SameDifferent
from oscbind_lite.train import train_rmts, train_same_different

SMALL = smoke().model  # the architecture of the shared smoke setting


def model(bottleneck: str) -> SameDifferent:
    """An untrained stage-1 model of the smoke architecture with the given bottleneck, in eval mode."""
    torch.manual_seed(0)
    return SameDifferent(dataclasses.replace(SMALL, bottleneck=bottleneck)).eval()


@pytest.fixture(scope="module")
def pairs():
    """Same and different pairs of real icons, drawn at random scales and positions: (8, 2, 1, 32, 32)."""
    tasks = IconTasks(glyph_bank(None), 50, 0)
    return tasks.same_different("train", 8, torch.Generator().manual_seed(0)).images


def test_difference_baseline_reads_the_absolute_difference_of_the_encodings(pairs):
    net = model("difference")
    assert net.binding is None and net.relation_size == SMALL.D and net.head[0].in_features == SMALL.D
    with torch.no_grad():
        z = net.encode(pairs)
        torch.testing.assert_close(net.relation(pairs), (z[:, 0] - z[:, 1]).abs())
        torch.testing.assert_close(net(pairs), net(pairs.flip(1)))  # which object comes first does not matter


def test_difference_baseline_gives_every_identical_pair_the_same_logit_whatever_the_icon():
    """|z - z| = 0: an identical pair says nothing about its content, so all get head(0)."""
    tasks = IconTasks(glyph_bank(None), 50, 0, Renderer(32, 1.0, 1.0, 1 - 2 / 32))  # one image per icon
    images = tasks.render(torch.arange(10)[:, None].expand(10, 2), torch.Generator())
    net = model("difference")
    with torch.no_grad():
        assert torch.equal(net.relation(images), torch.zeros(10, SMALL.D))
        logits = net(images)
        torch.testing.assert_close(logits, net.head(torch.zeros(1, SMALL.D)).squeeze(-1).expand(10))
        assert net.encode(images)[:, 0].std(0).min() > 0  # the icons themselves do encode differently


def test_concat_baseline_reads_both_encodings_side_by_side(pairs):
    net = model("concat")
    assert net.binding is None and net.relation_size == 2 * SMALL.D and net.head[0].in_features == 2 * SMALL.D
    with torch.no_grad():
        z = net.encode(pairs)
        torch.testing.assert_close(net.relation(pairs), torch.cat([z[:, 0], z[:, 1]], 1))


def test_oscillator_model_reads_a_function_of_the_coherence(pairs):
    net = model("oscillator")
    assert net.relation_size == SMALL.D
    with torch.no_grad():
        rho = net.coherence(pairs, torch.Generator().manual_seed(1))
        chord = net.relation(pairs, torch.Generator().manual_seed(1))
    torch.testing.assert_close(chord, (4 - rho**2).clamp_min(1e-6).sqrt())  # the chord ||x1 - x2|| of rho


def test_comparator_compares_each_feature_alone_and_ignores_the_order_of_the_objects(pairs):
    net = model("comparator")
    z = net.encode(pairs)
    with torch.no_grad():
        r = net.relation(pairs)
        swapped = net.relation(pairs.flip(1))
        z2 = z.clone()
        z2[:, 1, 0] += 1.0  # change feature 0 of object 2 only
        moved = net.baseline(z2) - net.baseline(z)
    torch.testing.assert_close(r, swapped)
    assert r.shape == (len(pairs), SMALL.D) and moved[:, 1:].abs().max() == 0 and moved[:, 0].abs().max() > 0


def test_corelnet_reads_the_row_softmax_of_the_two_objects_inner_products(pairs):
    net = model("corelnet")
    with torch.no_grad():
        z = net.encode(pairs)
        r = net.relation(pairs).view(-1, 2, 2)
    assert net.relation_size == 4
    torch.testing.assert_close(r.sum(-1), torch.ones(len(pairs), 2))
    gram = torch.einsum("bid,bjd->bij", z, z)
    torch.testing.assert_close(r, torch.softmax(gram, -1))


def test_no_coupling_variant_has_no_coupling_parameters_and_zero_couplings():
    net = SameDifferent(dataclasses.replace(SMALL, learn_j_in=False, learn_j_out=False, learn_omega=False))
    assert {n for n, _ in net.binding.named_parameters()} == {"W", "b"}
    assert all(t.abs().max() == 0 for t in net.binding.couplings())


@pytest.mark.parametrize("bottleneck", ["difference", "concat", "comparator", "corelnet"])
def test_baselines_train_through_both_stages(bottleneck, smoke_run):
    run = with_overrides(smoke_run, bottleneck=bottleneck)
    stage1 = train_same_different(run, "cpu", progress=False)
    assert stage1.model.cfg.bottleneck == bottleneck and len(stage1.history["loss"]) == SMOKE["steps"]
    assert 0 <= stage1.metrics["test_accuracy"] <= 1 and stage1.metrics["config"]["model"]["bottleneck"] == bottleneck
    assert not any("binding" in name for name in stage1.model.state_dict())  # no oscillators anywhere
    stage2 = train_rmts(run, "cpu", progress=False)
    assert stage2.model.head[0].in_features == 3 * stage1.model.relation_size
    assert len(stage2.history["loss"]) == SMOKE["rmts_steps"]


def test_rmts_stage_leaves_the_frozen_stage1_model_and_its_batchnorm_statistics_unchanged(smoke_run):
    """Training the RMTS head runs the stage-1 model in eval mode: its BatchNorm statistics stay those of
    the stage-1 checkpoint (in train mode every forward pass would move them), and its weights get no update."""
    stage1 = train_same_different(smoke_run, "cpu", progress=False)
    saved = load_checkpoint(stage1.path)["state_dict"]
    stats = [k for k in saved if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert len(stats) == 3 * len(SMOKE["channels"])
    rmts = train_rmts(smoke_run, "cpu", progress=False)
    assert not rmts.cached
    after = rmts.model.same_different.state_dict()
    for k, v in saved.items():
        assert torch.equal(after[k].cpu(), v), k


def test_rmts_train_mode_keeps_the_stage1_model_in_eval_mode():
    rmts = RMTS(model("oscillator"))
    rmts.train(True)
    assert rmts.training and rmts.head.training
    assert not rmts.same_different.training
    assert not any(m.training for m in rmts.same_different.modules())  # BatchNorm included
    assert not any(p.requires_grad for p in rmts.same_different.parameters())
    assert all(p.requires_grad for p in rmts.head.parameters())
    rmts.train()  # what the training loop calls
    assert not rmts.same_different.training
    rmts.eval()
    assert not rmts.training and not rmts.same_different.training


def test_rmts_head_sees_the_three_relations_in_order():
    """Swapping the two targets swaps which is predicted: the head reads (source, target 0, target 1)."""
    rmts = RMTS(model("difference")).eval()
    tasks = IconTasks(glyph_bank(None), 50, 0)
    trials = tasks.rmts("train", 6, torch.Generator().manual_seed(3))
    with torch.no_grad():
        relations = rmts.same_different.relation(trials.images.flatten(0, 1)).view(6, 3, -1)
        torch.testing.assert_close(rmts(trials.images), rmts.head(relations.flatten(1)))


def test_authors_cnn_xavier_init_fixed_omega_and_drive_start():
    cfg = dataclasses.replace(SMALL, D=16, encoder="strided", init="xavier", learn_omega=False, fixed_omega=True,
                              start="drive")
    torch.manual_seed(0)
    net = SameDifferent(cfg)
    assert net.encoder(torch.rand(3, 1, 32, 32)).shape == (3, 16)
    assert not any("BatchNorm" in type(m).__name__ for m in net.modules())
    b = net.binding
    assert b.W.abs().max() <= (6 / (16 + 2)) ** 0.5 and b.b.abs().max() == 0
    assert b.J_in_raw.abs().max() <= (6 / (2 * 16 * 2 * 2)) ** 0.5
    omega = b.couplings()[0]
    assert "binding.omega_fixed" in net.state_dict() and not any("omega" in n for n, _ in net.named_parameters())
    torch.testing.assert_close(omega, -omega.transpose(1, 2))  # skew: a rotation, no growth
    assert omega.abs().max() <= torch.pi and omega.abs().max() > 0
    z = torch.randn(5, 2, 16)
    x0 = b.initial_state(5, torch.Generator().manual_seed(0), c=b.drive(z))
    c = b.drive(z)
    cos = (x0 * c).sum(-1) / c.norm(dim=-1)
    assert cos[c.norm(dim=-1) > 0.5].min() > 0.995  # each oscillator starts at its own drive, up to noise of SD 0.01
    with pytest.raises(ValueError, match="^start: drive needs the drives c"):
        b.initial_state(5)


def test_authors_baseline_reads_the_coherence_of_normalised_projections(pairs):
    net = model("projection")
    with torch.no_grad():
        z = net.encode(pairs)
        p = net.baseline.linear(z).view(len(z), 2, SMALL.D, SMALL.N)
        p = p / p.norm(dim=-1, keepdim=True)
        rho = (p[:, 0] + p[:, 1]).norm(dim=-1)
        torch.testing.assert_close(net.relation(pairs), (4 - rho**2).clamp_min(1e-6).sqrt(), atol=1e-3, rtol=0)
        same = torch.cat([pairs[:, :1], pairs[:, :1]], 1)
        assert net.relation(same).abs().max() < 1e-2  # an identical pair: rho = 2, chord 0


def test_context_norm_makes_a_same_pair_identical_and_swaps_with_the_objects():
    """TCN over a pair: identical encodings give identical normalised ones (the bias); swapping the objects swaps the
    normalised encodings; each feature ends at the pair's own scale (about +-1 when the two differ by far more than
    sqrt(eps)), before the learned gain and bias."""
    from oscbind_lite.model import ContextNorm

    norm = ContextNorm(6)
    with torch.no_grad():
        norm.gain.copy_(torch.linspace(0.5, 2, 6))
        norm.bias.copy_(torch.linspace(-1, 1, 6))
    z = torch.randn(5, 2, 6, generator=torch.Generator().manual_seed(0))
    same = torch.stack([z[:, 0], z[:, 0]], 1)
    out = norm(same)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.allclose(out[:, 0], norm.bias.expand(5, 6))
    assert torch.allclose(norm(z.flip(1)), norm(z).flip(1))
    far = torch.stack([torch.full((1, 6), -50.0), torch.full((1, 6), 50.0)], 1)
    plain = ContextNorm(6)(far)
    assert torch.allclose(plain, torch.tensor([-1.0, 1.0]).view(1, 2, 1).expand(1, 2, 6), atol=1e-5)


def test_context_norm_is_a_setting_that_changes_the_model_and_its_cache_key(smoke_run):
    from oscbind_lite.config import with_overrides
    from oscbind_lite.train import _stage1_key, build_same_different

    tcn = with_overrides(smoke_run, context_norm=True)
    assert build_same_different(smoke_run).context_norm is None and build_same_different(tcn).context_norm is not None
    assert _stage1_key(tcn)[0] != _stage1_key(smoke_run)[0]
    images = torch.rand(3, 2, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    model = build_same_different(tcn).eval()
    swapped = model.encode(images.flip(1))
    assert torch.allclose(swapped, model.encode(images).flip(1), atol=1e-6)


def test_a_baseline_is_one_registered_class(pairs, monkeypatch):
    """A new baseline registered in oscbind_lite.bottlenecks is a bottleneck the config accepts, the model builds and
    the classifier reads at the width it declares; an unknown name is one line naming the parameter."""
    from torch import nn

    from oscbind_lite import bottlenecks, config

    class Sum(nn.Module):
        """sum z1 + z2: a symmetric pooling that keeps no relation."""

        def __init__(self, D, N, readout):
            super().__init__()

        @staticmethod
        def width(D):
            return D

        def forward(self, z):
            return z.sum(1)

    monkeypatch.setitem(bottlenecks.BASELINES, "sum", Sum)
    assert "sum" in config.BOTTLENECKS and bottlenecks.baseline("sum")(Sum) is Sum
    net = model("sum")
    assert isinstance(net.baseline, Sum) and net.relation(pairs).shape == (len(pairs), SMALL.D)
    with pytest.raises(ValueError, match="^bottleneck: "):
        model("no such bottleneck")
