"""Training on from a shipped generator (``--init-generator``): what a GPU session does when
an earlier one brought back only the generator, not the training checkpoint."""

from __future__ import annotations

import pytest
import torch

from livecomposer.visual.gan import FastGanConfig, FastGenerator, init_weights, load_generator, save_generator
from livecomposer.visual.train import TrainOptions, train

TINY = FastGanConfig(channels=(32, 16, 8), single_conv_from=16, d_channels=(8, 16, 16), decoder_channels=(8, 8))
SHIPPED_RUN = {"steps": 7, "epochs": 2, "images_shown": 28, "minutes": 0.5}


@pytest.fixture()
def shipped(tmp_path):
    torch.manual_seed(3)
    g = FastGenerator(TINY)
    init_weights(g)
    path = tmp_path / "shipped.safetensors"
    save_generator(g.eval(), path, {"training": SHIPPED_RUN})
    return path


def _options(tmp_path, pack, shipped, minutes: float, d_warmup: int) -> TrainOptions:
    return TrainOptions(out=tmp_path / "run", pack=pack, export=tmp_path / "out.safetensors", minutes=minutes, batch=4,
                        device="cpu", progress=False, calibration_batches=1, init_generator=shipped, d_warmup=d_warmup,
                        categories=None)  # the pack holds every folder of its small root


def _parameters(path) -> dict[str, torch.Tensor]:
    return dict(load_generator(path, fuse=False).named_parameters())


def test_with_no_minutes_left_the_shipped_weights_come_out_unchanged(tmp_path, small_pack, shipped):
    summary = train(_options(tmp_path, small_pack, shipped, minutes=SHIPPED_RUN["minutes"], d_warmup=0))
    assert summary["steps"] == 7 and summary["images_shown"] == 28 and summary["discriminator_from_step"] == 7
    before, after = _parameters(shipped), _parameters(tmp_path / "out.safetensors")
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_truncated_shipped_generator_trains_on_the_whole_prior(tmp_path, small_pack, shipped):
    """The shipped JSON's truncation is for painting: training from it samples z at full
    scale, and what it exports starts untruncated (its own measurement chooses again)."""
    import json

    meta = json.loads(shipped.with_suffix(".json").read_text())
    meta["config"]["truncation"] = 0.7
    shipped.with_suffix(".json").write_text(json.dumps(meta))
    train(_options(tmp_path, small_pack, shipped, minutes=SHIPPED_RUN["minutes"], d_warmup=0))
    assert load_generator(tmp_path / "out.safetensors", fuse=False).cfg.truncation == 1.0


def test_training_goes_on_from_the_shipped_counts_and_then_resumes_its_own_checkpoint(tmp_path, small_pack, shipped):
    first = train(_options(tmp_path, small_pack, shipped, minutes=SHIPPED_RUN["minutes"] + 0.03, d_warmup=1))
    assert first["steps"] > 7 and first["epochs"] > 2 and first["discriminator_from_step"] == 7
    before, after = _parameters(shipped), _parameters(tmp_path / "out.safetensors")
    assert any(not torch.equal(before[k], after[k]) for k in before), "the generator did not learn"
    # a checkpoint now exists: it is resumed, the shipped generator is not read again
    second = train(_options(tmp_path, small_pack, shipped, minutes=SHIPPED_RUN["minutes"] + 0.06, d_warmup=1))
    assert second["steps"] > first["steps"] and second["discriminator_from_step"] == 7


def test_train_visual_refuses_a_missing_init_generator(tmp_path, capsys):
    from livecomposer.cli import main

    assert main(["train-visual", "--out", str(tmp_path), "--init-generator", str(tmp_path / "none.safetensors")]) == 2
    assert "no generator there" in capsys.readouterr().err
