"""The visualizer's generators, and the FastGAN discriminator that trains the current one.

Why this shape: the visualizer must paint 256x256 frames at 60 fps or more on ONE CPU
thread, beside the music, and the networks must learn from about two thousand clipart
images in minutes of training.  :class:`FastGenerator` follows FastGAN (Liu et al. 2021,
"Towards faster and stabilized GAN training for high-fidelity few-shot image synthesis"):
a thin stack of resize-then-convolve blocks (nearest-neighbour doubling, then a 3x3
convolution; no transposed convolutions and no pixel shuffle, whose uneven overlap paints a
checkerboard) with skip-layer excitation, where a 4x4 summary of a coarse feature map
gates the channels of a fine one, so global layout reaches the high-resolution layers
almost for free.  Channels shrink fast with resolution: the 128 and 256 px layers hold
most of the pixels, so the 128 px layer gets 12 channels and the last doubling goes straight to RGB: 0.28 GMAC
a frame as trained, 0.18 GMAC as painted (:class:`PhasedUpConv` computes each doubling and
its convolution together, exactly, with 4/9 of the work).

:class:`FastDiscriminator` is FastGAN's: residual down-sampling blocks with spectral
normalisation, and two small decoders that must rebuild the (augmented) real image from
the 8x8 features and a random quarter of it from the 16x16 features.  That
self-supervised reconstruction makes the discriminator learn what the images contain
instead of memorising them, which is what keeps a GAN stable on little data.

:class:`Generator` (with :class:`GanConfig`) is the previous, DCGAN-style generator; it is
kept so that its shipped files still load and can be measured against the new one.

Everything shipped is plain tensors: safetensors plus a JSON config whose ``arch`` names
the class (absent: the DCGAN), loaded without unpickling anything.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F


# -- the FastGAN-style generator ------------------------------------------------------------

@dataclass(frozen=True)
class FastGanConfig:
    """Sizes of the FastGAN networks (saved beside the weights as JSON)."""

    z_dim: int = 128
    # generator channels at 4, 8, 16, ... px; the last entry is at half the out_size: the
    # last doubling goes straight to RGB (nearest neighbour, one 3x3 conv)
    channels: tuple[int, ...] = (256, 192, 96, 48, 24, 12)
    # blocks from this resolution up use one convolution instead of two (the expensive ones)
    single_conv_from: int = 64
    # discriminator channels at 128, 64, 32, 16, 8 px
    d_channels: tuple[int, ...] = (16, 32, 64, 128, 256)
    decoder_channels: tuple[int, ...] = (128, 64, 32, 16)  # 8 -> 16 -> 32 -> 64 -> 128 px
    # The truncation trick (as in BigGAN and StyleGAN): the generator paints z scaled by
    # this, nearer the centre of its training noise, where a GAN trained for minutes paints
    # its cleanest pictures and rarely its broken ones.  Training always uses 1.0 (the full
    # prior); the shipped generator's JSON sets what its measurement chose (see
    # models/clipart-gan.md: KID against real images fell from 186 at 1.0 to 90 at the
    # shipped 0.8, with less hatching inside shapes, but smaller shapes below it).
    truncation: float = 1.0
    arch: str = "fastgan"

    @property
    def out_size(self) -> int:
        return 4 * 2 ** len(self.channels)

    def size_of(self, level: int) -> int:
        return 4 * 2 ** level

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "FastGanConfig":
        return _from_json(cls, data, ("channels", "d_channels", "decoder_channels"))


def _from_json(cls, data: dict, tuples: tuple[str, ...]):
    unknown = set(data) - set(cls.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown GAN config keys: {', '.join(sorted(unknown))}")
    data = dict(data)
    for key in tuples:
        if key in data:
            data[key] = tuple(int(c) for c in data[key])
    return cls(**data)


class UpBlock(nn.Module):
    """Double the size (nearest neighbour), then 3x3 convolutions with batch norm and
    leaky ReLU.  Nearest-neighbour doubling has no energy at the new grid's Nyquist
    frequency, and a convolution over it cannot produce the uneven-overlap checkerboard of
    a strided transposed convolution."""

    def __init__(self, cin: int, cout: int, convs: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(convs):
            layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True)]
        self.body = nn.Sequential(*layers)
        self.phased: PhasedUpConv | None = None  # set by FastGenerator.for_painting

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.phased is not None:
            return self.body(self.phased(x))
        return self.body(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class PhasedUpConv(nn.Module):
    """Nearest-neighbour doubling followed by a 3x3 convolution, computed exactly but with
    4/9 of the multiplications and no doubled map in memory (for painting only).

    Each output pixel of phase (a, b) (even or odd row, even or odd column) sees the doubled
    map through a 3x3 window that covers only a 2x2 window of the small map, so the 3x3
    kernel's taps that land on the same small pixel can be summed: one 2x2 convolution of
    the padded small map with 4 x cout outputs yields all four phases, which are written
    into place.  The numbers are those of resize-then-convolve (to float rounding): the
    weights are the trained 3x3 kernels, not a free sub-pixel layer."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        w = conv.weight.detach()
        self.cout = conv.out_channels
        self.conv = nn.Conv2d(conv.in_channels, 4 * self.cout, 2, 1, 0, bias=conv.bias is not None)
        phases = []
        for a in range(2):
            rows = torch.stack([w[:, :, 0], w[:, :, 1] + w[:, :, 2]] if a == 0 else [w[:, :, 0] + w[:, :, 1], w[:, :, 2]], 2)
            for b in range(2):
                cols = [rows[..., 0], rows[..., 1] + rows[..., 2]] if b == 0 else [rows[..., 0] + rows[..., 1], rows[..., 2]]
                phases.append(torch.stack(cols, 3))
        with torch.no_grad():
            self.conv.weight.copy_(torch.cat(phases))
            if conv.bias is not None:
                self.conv.bias.copy_(conv.bias.detach().repeat(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        y = self.conv(F.pad(x, (1, 1, 1, 1)))
        layout = torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
        out = torch.empty((n, self.cout, 2 * h, 2 * w), dtype=y.dtype, device=y.device, memory_format=layout)
        c = self.cout
        for k, (a, b) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            out[:, :, a::2, b::2] = y[:, k * c:(k + 1) * c, a:a + h, b:b + w]
        return out


class SkipExcitation(nn.Module):
    """FastGAN's skip-layer excitation: a coarse map, pooled to 4x4, yields one gate in
    (0, 1) per channel of a fine map."""

    def __init__(self, c_low: int, c_high: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), nn.Conv2d(c_low, c_high, 4, 1, 0, bias=False), nn.SiLU(),
            nn.Conv2d(c_high, c_high, 1, 1, 0, bias=False), nn.Sigmoid(),
        )

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        return high * self.body(low)


class FastGenerator(nn.Module):
    """z (n, z_dim) -> image (n, 3, out_size, out_size) in [-1, 1]."""

    # skip-layer excitation pairs (coarse level -> fine level), as in FastGAN: 8 -> 64 px and
    # 16 -> 128 px (4 px is level 0)
    SKIPS = ((1, 4), (2, 5))

    def __init__(self, cfg: FastGanConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = cfg.channels
        self.project = nn.Linear(cfg.z_dim, ch[0] * 16, bias=False)
        self.project_norm = nn.BatchNorm2d(ch[0])
        self.ups = nn.ModuleList(
            UpBlock(ch[i - 1], ch[i], 1 if cfg.size_of(i) >= cfg.single_conv_from else 2) for i in range(1, len(ch))
        )
        self.skips = nn.ModuleDict({f"{a}_{b}": SkipExcitation(ch[a], ch[b]) for a, b in self.SKIPS if b < len(ch)})
        self.to_rgb = nn.Conv2d(ch[-1], 3, 3, 1, 1)
        self.rgb_phased: PhasedUpConv | None = None  # set by for_painting

    def for_painting(self) -> "FastGenerator":
        """Eval mode only: fold each batch norm into the convolution before it, and compute
        each doubling-plus-convolution as a :class:`PhasedUpConv`.  Same images, about
        half the time per frame."""
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        assert not self.training, "batch norm folds only in eval mode"
        for up in self.ups:
            layers = list(up.body)
            for i, layer in enumerate(layers):
                if isinstance(layer, nn.BatchNorm2d):
                    layers[i - 1], layers[i] = fuse_conv_bn_eval(layers[i - 1], layer), nn.Identity()
            up.phased = PhasedUpConv(layers[0])
            up.body = nn.Sequential(*layers[1:])
        self.rgb_phased = PhasedUpConv(self.to_rgb)
        return self

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z * self.cfg.truncation).view(z.shape[0], self.cfg.channels[0], 4, 4)
        if self.to_rgb.weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)  # else small maps take a slow conv path
        x = F.leaky_relu(self.project_norm(x), 0.2)
        feats = [x]
        for level, up in enumerate(self.ups, start=1):
            x = up(x)
            for key, skip in self.skips.items():
                low, high = (int(k) for k in key.split("_"))
                if high == level:
                    x = skip(feats[low], x)
            feats.append(x)
        if self.rgb_phased is not None:
            return torch.tanh(self.rgb_phased(x))
        return torch.tanh(self.to_rgb(F.interpolate(x, scale_factor=2.0, mode="nearest")))


# -- the FastGAN discriminator (training only) ----------------------------------------------

def _sn(module: nn.Module) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module)


class DownBlock(nn.Module):
    """FastGAN's residual down-sampling: a strided 4x4 conv path plus an average-pool
    1x1 path, averaged."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            _sn(nn.Conv2d(cin, cout, 4, 2, 1, bias=False)), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True),
            _sn(nn.Conv2d(cout, cout, 3, 1, 1, bias=False)), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2),
        )
        self.direct = nn.Sequential(nn.AvgPool2d(2), _sn(nn.Conv2d(cin, cout, 1, 1, 0, bias=False)), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.main(x) + self.direct(x)) / 2


class Decoder(nn.Module):
    """8x8 features -> 128x128 RGB, for the self-supervised reconstruction loss."""

    def __init__(self, cin: int, channels: tuple[int, ...]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for cout in channels:
            layers += [nn.Upsample(scale_factor=2.0, mode="nearest"), _sn(nn.Conv2d(cin, cout, 3, 1, 1, bias=False)), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True)]
            cin = cout
        layers += [_sn(nn.Conv2d(cin, 3, 3, 1, 1)), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class FastDiscriminator(nn.Module):
    """image (n, 3, 256, 256) -> logits (n, 25); with ``reconstruct`` also the two
    reconstructions and the quarter that was picked (0-3, for :func:`quarter`)."""

    def __init__(self, cfg: FastGanConfig) -> None:
        super().__init__()
        dc = cfg.d_channels
        self.stem = nn.Sequential(_sn(nn.Conv2d(3, dc[0], 4, 2, 1, bias=False)), nn.LeakyReLU(0.2, inplace=True))
        self.downs = nn.ModuleList(DownBlock(a, b) for a, b in zip(dc[:-1], dc[1:]))
        self.head = nn.Sequential(
            _sn(nn.Conv2d(dc[-1], dc[-1] // 2, 1, 1, 0, bias=False)), nn.BatchNorm2d(dc[-1] // 2), nn.LeakyReLU(0.2, inplace=True),
            _sn(nn.Conv2d(dc[-1] // 2, 1, 4, 1, 0)),
        )
        self.decode_all = Decoder(dc[-1], cfg.decoder_channels)
        self.decode_part = Decoder(dc[-2], cfg.decoder_channels)

    def forward(self, x: torch.Tensor, reconstruct: bool = False, part: int = 0):
        x = self.stem(x)
        feats = []
        for down in self.downs:
            x = down(x)
            feats.append(x)
        logits = self.head(x).flatten(1)
        if not reconstruct:
            return logits
        return logits, self.decode_all(feats[-1]), self.decode_part(quarter(feats[-2], part))


def quarter(x: torch.Tensor, part: int) -> torch.Tensor:
    """Quarter ``part`` (0: top left, 1: top right, 2: bottom left, 3: bottom right)."""
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    r, c = divmod(part, 2)
    return x[..., r * h:(r + 1) * h, c * w:(c + 1) * w]


# -- the previous generator (DCGAN core + 4x super-resolution tail) -------------------------

@dataclass(frozen=True)
class GanConfig:
    """Sizes of the previous DCGAN-style generator (its JSON has no ``arch`` key)."""

    z_dim: int = 128
    base: int = 4  # spatial size of the first feature map
    channels: tuple[int, ...] = (256, 128, 64, 32, 16)  # per resolution: 4, 8, 16, 32, 64
    d_channels: tuple[int, ...] = (32, 64, 128, 256)  # its discriminator's (training only)
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
        return _from_json(cls, data, ("channels", "d_channels"))


class Generator(nn.Module):
    """The previous generator: z (n, z_dim) -> image (n, 3, out, out) in [-1, 1], from
    transposed convolutions to 64x64 and a pixel-shuffle 4x tail."""

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

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(z.shape[0], self.cfg.channels[0], self.cfg.base, self.cfg.base)
        x = F.relu(self.project_norm(x))
        x = torch.tanh(self.to_rgb(self.blocks(x)))
        return self.tail(x) if self.tail is not None else x


class Tail(nn.Module):
    """The previous generator's 4x super-resolution: bilinear upsample plus a learned
    pixel-shuffle residual."""

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


# -- shipping -------------------------------------------------------------------------------

def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) convolutions and linear layers, N(1, 0.02) batch-norm scales (DCGAN's
    and FastGAN's initialisation)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            w = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(w, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def config_from_json(data: dict) -> GanConfig | FastGanConfig:
    """The config class named by ``arch`` (no ``arch``: the previous DCGAN)."""
    if data.get("arch") == "fastgan":
        return FastGanConfig.from_json(data)
    if "arch" in data:
        raise ValueError(f"unknown generator arch {data['arch']!r}")
    return GanConfig.from_json(data)


def build_generator(cfg: GanConfig | FastGanConfig) -> nn.Module:
    return FastGenerator(cfg) if isinstance(cfg, FastGanConfig) else Generator(cfg)


def save_generator(generator: nn.Module, path: Path, extra: dict | None = None) -> None:
    """``path`` (.safetensors) plus ``path`` with .json: the weights and the config."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().float().contiguous().cpu().clone() if v.is_floating_point() else v.detach().contiguous().cpu().clone()
               for k, v in generator.state_dict().items()}
    save_file(tensors, str(path))
    meta = {"config": generator.cfg.to_json(), **(extra or {})}
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")


def load_generator(path: Path, fuse: bool = True) -> nn.Module:
    """A generator in eval mode from its safetensors + JSON pair (no pickles); ``fuse``
    readies a FastGAN generator for painting (:meth:`FastGenerator.for_painting`: the same
    images, faster; such a generator is not for training or saving)."""
    from safetensors.torch import load_file

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    meta = json.loads(path.with_suffix(".json").read_text())
    generator = build_generator(config_from_json(meta["config"]))
    generator.load_state_dict(load_file(str(path)))
    generator.eval()
    if fuse and isinstance(generator, FastGenerator):
        generator.for_painting()
    return generator


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
