"""The FastGAN generator and discriminator, DiffAugment, the image-quality measures (on
hand-built cases whose answers are known), the self-supervised feature network, and the
shipped generator's cost per frame."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from livecomposer.visual.gan import (FastDiscriminator, FastGanConfig, FastGenerator, GanConfig, Generator, load_generator,
                                     save_generator)
from livecomposer.visual.quality import (EncoderConfig, FeatureEncoder, checkerboard_energy, density_coverage, frame_times, kid, nt_xent,
                                         polynomial_mmd2, sharpness, simclr_views, vendi_score)
from livecomposer.visual.renderer import resolve_model
from livecomposer.visual.train import diff_augment

TINY = FastGanConfig(channels=(32, 16, 8), single_conv_from=16, d_channels=(8, 16, 16), decoder_channels=(8, 8))


def _trained_bn(g: nn.Module) -> nn.Module:
    """Give the batch norms non-trivial statistics, as training would."""
    gen = torch.Generator().manual_seed(0)
    for m in g.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return g.eval()


# -- the networks ---------------------------------------------------------------------------------

def test_fastgan_generator_resizes_then_convolves():
    g = FastGenerator(FastGanConfig()).eval()
    kinds = {type(m) for m in g.modules()}
    assert nn.ConvTranspose2d not in kinds and nn.PixelShuffle not in kinds
    with torch.no_grad():
        x = g(torch.randn(2, 128))
    assert x.shape == (2, 3, 256, 256) and float(x.abs().max()) <= 1


def test_the_painting_form_paints_the_same_images(tmp_path):
    """Batch norm folded, each doubling-plus-convolution computed by phases: same pictures."""
    g = _trained_bn(FastGenerator(TINY))
    z = torch.randn(3, TINY.z_dim)
    with torch.no_grad():
        before = g(z)
    save_generator(g, tmp_path / "g.safetensors", {"note": "t"})
    meta = json.loads((tmp_path / "g.json").read_text())
    assert meta["config"]["arch"] == "fastgan" and meta["note"] == "t"
    plain, fused = load_generator(tmp_path / "g.safetensors", fuse=False), load_generator(tmp_path / "g.safetensors")
    assert not any(isinstance(m, nn.BatchNorm2d) for up in fused.ups for m in up.modules())
    assert all(up.phased is not None for up in fused.ups) and fused.rgb_phased is not None
    with torch.no_grad():
        assert torch.equal(plain(z), before)
        assert torch.allclose(fused(z), before, atol=1e-5)


def test_a_truncated_generator_paints_the_scaled_latent_and_training_starts_untruncated(tmp_path):
    """The JSON's truncation scales every latent the generator paints (live and measured
    alike); a training run that starts from such a generator samples the whole prior."""
    from dataclasses import replace

    from livecomposer.visual.train import load_training_generator

    g = _trained_bn(FastGenerator(TINY))
    save_generator(g, tmp_path / "g.safetensors")
    meta = json.loads((tmp_path / "g.json").read_text())
    meta["config"]["truncation"] = 0.7
    (tmp_path / "g.json").write_text(json.dumps(meta))
    truncated = load_generator(tmp_path / "g.safetensors", fuse=False)
    assert truncated.cfg == replace(TINY, truncation=0.7)
    z = torch.randn(3, TINY.z_dim)
    with torch.no_grad():
        assert torch.allclose(truncated(z), g(0.7 * z), atol=1e-6)
        assert not torch.allclose(truncated(z), g(z), atol=1e-3)
    trainable, _ = load_training_generator(tmp_path / "g.safetensors")
    assert trainable.cfg.truncation == 0.7  # as shipped (train() resets it: test_visual_train_init.py)


def test_the_previous_dcgan_files_still_load(tmp_path):
    g = Generator(GanConfig(channels=(64, 32, 16), d_channels=(16, 32), tail_channels=8)).eval()
    save_generator(g, tmp_path / "old.safetensors")
    assert "arch" not in json.loads((tmp_path / "old.json").read_text())["config"]
    assert isinstance(load_generator(tmp_path / "old.safetensors"), Generator)


def test_an_unknown_arch_is_refused(tmp_path):
    save_generator(FastGenerator(TINY).eval(), tmp_path / "g.safetensors")
    meta = json.loads((tmp_path / "g.json").read_text())
    meta["config"]["arch"] = "stylegan9"
    (tmp_path / "g.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="stylegan9"):
        load_generator(tmp_path / "g.safetensors")


def test_discriminator_scores_and_reconstructs():
    d = FastDiscriminator(FastGanConfig())
    x = torch.rand(2, 3, 256, 256) * 2 - 1
    logits, whole, part = d(x, reconstruct=True, part=3)
    assert logits.shape == (2, 25) and whole.shape == part.shape == (2, 3, 128, 128)
    assert d(x).shape == (2, 25)


def test_diff_augment_keeps_shape_and_passes_gradients():
    torch.manual_seed(0)
    x = torch.zeros(64, 3, 32, 32, requires_grad=True)
    y = diff_augment(x + 1.0)
    assert y.shape == x.shape
    y.sum().backward()
    assert float(x.grad.abs().sum()) > 0


def test_cutout_and_translation_move_and_hide_pixels():
    from livecomposer.visual.train import _cutout, _translate

    torch.manual_seed(0)
    ones = torch.ones(64, 3, 32, 32)
    hidden = (_cutout(ones) == 0).all(dim=1).float().mean(dim=(1, 2))
    assert float(hidden.max()) <= (17 * 17) / (32 * 32) and float(hidden.mean()) > 0.15  # a 17 px square, clipped at edges
    shifted = _translate(ones)
    lost = (shifted == 0).all(dim=1).float().mean(dim=(1, 2))  # the zero padding let in by a shift of up to 4 px
    assert float(lost.max()) <= 1 - (28 * 28) / (32 * 32) + 1e-6 and float(lost.max()) > 0


# -- the measures ------------------------------------------------------------------------------------

def test_polynomial_mmd_matches_a_hand_computed_case():
    # d = 1, kernel (xy + 1)^3: within x the off-diagonal k(1, -1) = 0; within y k(2, 0) = 1;
    # across: k(1,2) = 27, k(1,0) = 1, k(-1,2) = -1, k(-1,0) = 1 -> mean 7.  0 + 1 - 2 * 7 = -13
    assert polynomial_mmd2(np.array([[1.0], [-1.0]]), np.array([[2.0], [0.0]])) == pytest.approx(-13.0)


def test_kid_is_near_zero_for_one_distribution_and_grows_with_the_difference():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    same, _ = kid(a, b, subsets=20, subset_size=200)
    near, _ = kid(a, b + 0.3, subsets=20, subset_size=200)
    far, _ = kid(a, b + 1.0, subsets=20, subset_size=200)
    assert abs(same) < 0.02 < near < far


def test_coverage_sees_a_collapse_that_stays_near_the_real_images():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 16))
    same_density, same_coverage = density_coverage(real, rng.normal(size=(400, 16)))
    # a generator painting only two pictures, each close to a real one: every image is "real-looking"
    collapsed = real[[3, 7]][rng.integers(0, 2, 400)] + 0.01 * rng.normal(size=(400, 16))
    collapsed_density, collapsed_coverage = density_coverage(real, collapsed)
    assert same_coverage > 0.9 and 0.7 < same_density < 1.3
    assert collapsed_coverage < 0.05 < 0.5 < collapsed_density  # each image near real ones, yet nearly nothing covered
    with pytest.raises(ValueError, match="need more than k=5"):
        density_coverage(real[:5], collapsed)


def test_vendi_score_counts_distinct_pictures():
    rng = np.random.default_rng(0)
    distinct = rng.normal(size=(300, 256))  # nearly orthogonal in 256 dimensions
    four = np.repeat(np.eye(4, 256), 75, axis=0) + 0.001 * rng.normal(size=(300, 256))
    assert vendi_score(distinct) > 150  # 300 random directions in 256 dimensions overlap a little
    assert 3.9 < vendi_score(four) < 4.1
    assert vendi_score(np.ones((50, 8))) == pytest.approx(1.0)


def _luma_image(g: np.ndarray) -> torch.Tensor:
    """A grayscale picture (values in [0, 1]) as a (1, 3, h, w) image in [-1, 1]."""
    return torch.from_numpy(g * 2 - 1).float()[None, None].expand(1, 3, *g.shape)


def test_checkerboard_energy_on_known_patterns():
    y, x = np.mgrid[0:64, 0:64]
    assert checkerboard_energy(_luma_image(0.5 + 0.5 * (-1.0) ** (x + y))) == pytest.approx(1.0)
    assert checkerboard_energy(_luma_image(0.5 + 0.5 * (-1.0) ** x)) == pytest.approx(1.0)
    assert checkerboard_energy(_luma_image(0.5 + 0.4 * np.cos(2 * np.pi * x / 64))) == pytest.approx(0.0, abs=1e-12)
    # nearest-neighbour doubling leaves nothing at the new Nyquist frequency
    small = np.random.default_rng(0).random((32, 32))
    assert checkerboard_energy(_luma_image(small.repeat(2, 0).repeat(2, 1))) == pytest.approx(0.0, abs=1e-12)
    # a period-4 pattern shows at period 4, not at 2
    stripes = 0.5 + 0.4 * np.cos(2 * np.pi * x / 4)
    assert checkerboard_energy(_luma_image(stripes), 4) == pytest.approx(1.0)
    assert checkerboard_energy(_luma_image(stripes)) == pytest.approx(0.0, abs=1e-12)


def test_sharpness_on_known_patterns():
    assert sharpness(_luma_image(np.full((8, 8), 0.3))) == 0.0
    step = np.zeros((8, 8))
    step[:, 4:] = 1.0  # one unit step between columns 3 and 4, on 7 of the 7 x 7 forward differences
    assert sharpness(_luma_image(step)) == pytest.approx(1 / 7, rel=1e-6)
    # a mean of gradient magnitudes is a total variation: a single edge spread over 7 columns
    # scores the same; blur shows where it flattens thin lines and texture
    ramp = np.linspace(0, 1, 8)[None].repeat(8, 0)
    assert sharpness(_luma_image(ramp)) == pytest.approx(1 / 7, rel=1e-6)
    line = np.zeros((8, 8))
    line[:, 3] = 1.0  # up and down again: 2 units of rise and fall on 7 x 7 differences
    blurred = np.zeros((8, 8))
    blurred[:, 2:5] = 1 / 3  # the same line under a 3-pixel box blur: 2/3 units
    assert sharpness(_luma_image(line)) == pytest.approx(2 / 7, rel=1e-6)
    assert sharpness(_luma_image(blurred)) == pytest.approx(2 / 21, rel=1e-5)


def test_frame_times_reports_one_thread_figures():
    stats = frame_times(FastGenerator(TINY).eval(), frames=5, warmup=1)
    assert stats["wall_median_ms"] > 0 and stats["cpu_p99_ms"] >= stats["cpu_median_ms"] > 0
    assert torch.get_num_threads() >= 1


# -- the feature network for KID -----------------------------------------------------------------------

def test_contrastive_loss_prefers_matching_views():
    a = torch.randn(32, 16)
    assert float(nt_xent(a, a + 0.01 * torch.randn(32, 16))) < float(nt_xent(a, torch.randn(32, 16)))


def test_simclr_views_and_encoder_shapes():
    rgba = torch.zeros(4, 128, 128, 4, dtype=torch.uint8)
    rgba[:, 32:96, 32:96] = torch.tensor([255, 0, 0, 255], dtype=torch.uint8)
    views = simclr_views(rgba, 64, torch.Generator().manual_seed(0))
    assert views.shape == (4, 3, 64, 64) and float(views.abs().max()) <= 1
    enc = FeatureEncoder(EncoderConfig()).eval()
    with torch.no_grad():
        assert enc(torch.zeros(2, 3, 256, 256)).shape == (2, 256)


def test_encoder_training_writes_a_loadable_network(tmp_path, small_pack):
    from livecomposer.visual.quality import load_encoder, train_encoder

    cfg = EncoderConfig(size=32, channels=(8, 16), projection=8)
    summary = train_encoder(small_pack, tmp_path / "enc.safetensors", minutes=0.005, device="cpu", batch=8, cfg=cfg, progress=False)
    assert summary["steps"] >= 1
    enc = load_encoder(tmp_path / "enc.safetensors")
    assert enc.cfg == cfg


def test_pack_round_trips_the_images(small_pack):
    from livecomposer.visual.dataset import composite, load_pack

    images = load_pack(small_pack)
    n = len(images)  # duplicates and images under 64 px are left out
    assert 4 <= n <= 8 and images.shape[1:] == (64, 64, 4) and images[..., 3].max() == 255 and images[..., 3].min() == 0
    assert load_pack(small_pack, 32).shape == (n, 32, 32, 4)
    rgb = composite(torch.from_numpy(images), torch.Generator().manual_seed(0))
    assert rgb.shape == (n, 3, 64, 64) and float(rgb.min()) >= -1 and float(rgb.max()) <= 1

def test_a_pack_made_from_other_folders_is_refused_by_name(small_pack):
    from livecomposer.visual.dataset import pack_categories, prepare

    assert pack_categories(small_pack) is None  # made from every folder of its root
    assert prepare(small_pack, categories=None) == small_pack  # the same folders: reused as it is
    with pytest.raises(RuntimeError, match=r"pack\.npz: made from the folders all, not \('flags',\)"):
        prepare(small_pack, categories=("flags",))



# -- the shipped generator -------------------------------------------------------------------------------

def _conv_macs(g: nn.Module) -> int:
    macs = []

    def count(module, inputs, output):
        macs.append(output.numel() * module.in_channels * module.kernel_size[0] * module.kernel_size[1] // module.groups)

    hooks = [m.register_forward_hook(count) for m in g.modules() if isinstance(m, nn.Conv2d)]
    with torch.inference_mode():
        g(torch.randn(1, g.cfg.z_dim))
    for h in hooks:
        h.remove()
    return sum(macs)


def test_shipped_generator_is_a_fastgan_within_the_frame_budget():
    """About 0.28 GMAC a frame as trained, 0.18 GMAC as painted (phased doublings): what one
    CPU thread paints at 60 fps or more with room to spare."""
    trained = load_generator(resolve_model("clipart-gan"), fuse=False)
    painting = load_generator(resolve_model("clipart-gan"))
    assert isinstance(painting, FastGenerator) and painting.cfg.out_size == 256
    assert 0.2e9 < _conv_macs(trained) < 0.35e9
    assert _conv_macs(painting) < 0.7 * _conv_macs(trained)
    z = torch.randn(2, painting.cfg.z_dim)
    with torch.inference_mode():
        assert torch.allclose(painting(z), trained(z), atol=1e-4)
