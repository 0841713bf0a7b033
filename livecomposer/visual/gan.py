"""The GAN: a small DCGAN-style generator (with a cheap learned 4x upsampling tail), and
its discriminator.

Why this shape: the visualizer must paint 256x256 frames at 60 fps or more on ONE CPU
thread, beside the music.  A DCGAN-style generator of a few million parameters does that
(StyleGAN2 manages about 4 fps here).  The adversarial core makes 64x64 images; a tiny
super-resolution tail (pixel shuffle, residual on a bilinear upsample) trained on the same
clipart at full size lifts them to 256x256 with crisp edges for about a quarter of the
frame cost.  Training the core at 64x64 is what fits the CPU-minutes we have.

Everything here is plain tensors: checkpoints are safetensors plus a JSON config, loaded
without unpickling anything.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class GanConfig:
    """Sizes of the networks (saved beside the weights as JSON)."""

    z_dim: int = 128
    base: int = 4  # spatial size of the first feature map
    channels: tuple[int, ...] = (256, 128, 64, 32, 16)  # per resolution: 4, 8, 16, 32, 64
    d_channels: tuple[int, ...] = (32, 64, 128, 256)  # 64 -> 32 -> 16 -> 8 -> 4
    tail_channels: int = 16  # super-resolution tail width; 0 = no tail
    tail_scale: int = 4

    @property
    def core_size(self) -> int:
        return self.base * 2 ** (len(self.channels) - 1)

    @property
    def out_size(self) -> int:
        return self.core_size * (self.tail_scale if self.tail_channels else 1)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "GanConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown GAN config keys: {', '.join(sorted(unknown))}")
        data = dict(data)
        for key in ("channels", "d_channels"):
            if key in data:
                data[key] = tuple(int(c) for c in data[key])
        return cls(**data)


class Generator(nn.Module):
    """z (n, z_dim) -> image (n, 3, out, out) in [-1, 1].

    ``forward(z, tail=False)`` gives the 64x64 core image (what the discriminator sees)."""

    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c0 = cfg.channels[0]
        self.project = nn.Linear(cfg.z_dim, c0 * cfg.base * cfg.base, bias=False)
        self.project_norm = nn.BatchNorm2d(c0)
        blocks = []
        for cin, cout in zip(cfg.channels[:-1], cfg.channels[1:]):
            blocks += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.Conv2d(cfg.channels[-1], 3, 3, 1, 1)
        self.tail = Tail(cfg.tail_channels, cfg.tail_scale) if cfg.tail_channels else None

    def forward(self, z: torch.Tensor, tail: bool = True) -> torch.Tensor:
        x = self.project(z).view(z.shape[0], self.cfg.channels[0], self.cfg.base, self.cfg.base)
        x = F.relu(self.project_norm(x))
        x = torch.tanh(self.to_rgb(self.blocks(x)))
        if tail and self.tail is not None:
            x = self.tail(x)
        return x


class Tail(nn.Module):
    """A tiny super-resolution network: bilinear upsample plus a learned residual
    (ESPCN-style pixel shuffle).  Trained with an L1 loss on real images, separately
    from the adversarial game, so it is cheap and stable."""

    def __init__(self, width: int, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, 1, 1), nn.ReLU(inplace=True),
            nn.Conv2d(width, 3 * scale * scale, 3, 1, 1),
        )
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return torch.clamp(up + self.shuffle(self.body(x)), -1.0, 1.0)


class Discriminator(nn.Module):
    """image (n, 3, 64, 64) -> logit (n,).  DCGAN-style strided convolutions."""

    def __init__(self, cfg: GanConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for i, cout in enumerate(cfg.d_channels):
            layers.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=i == 0))
            if i:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            cin = cout
        self.body = nn.Sequential(*layers)
        final = cfg.core_size // 2 ** len(cfg.d_channels)
        self.head = nn.Conv2d(cin, 1, final, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).flatten()


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


# -- shipping -------------------------------------------------------------------------------

def save_generator(generator: Generator, path: Path, extra: dict | None = None) -> None:
    """``path`` (.safetensors) plus ``path`` with .json: the weights and the config."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().contiguous().clone() for k, v in generator.state_dict().items()}
    save_file(tensors, str(path))
    meta = {"config": generator.cfg.to_json(), **(extra or {})}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")


def load_generator(path: Path) -> Generator:
    """A generator in eval mode from its safetensors + JSON pair (no pickles)."""
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    meta = json.loads(path.with_suffix(".json").read_text())
    generator = Generator(GanConfig.from_json(meta["config"]))
    generator.load_state_dict(load_file(str(path)))
    return generator.eval()


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
