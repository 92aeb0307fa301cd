"""MobileNetV2 trunk (Sandler et al. 2018) for the glance encoders, trained from scratch.

Configurable width, input channels (3 for frames, 1 for log-mel) and block settings, so the
tests can build tiny trunks. Returns the last feature map; pooling is the caller's business.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from torch import Tensor, nn

# (expansion t, output channels c, repeats n, first stride s) of the paper's Table 2.
MOBILENET_V2_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without going more than 10% down."""
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * value else out


@dataclass(frozen=True)
class MobileNetConfig:
    width_mult: float = 1.0
    in_channels: int = 3
    stem_channels: int = 32
    last_channels: int = 1280  # scaled up (never down) by width_mult > 1, as in the paper
    settings: tuple[tuple[int, int, int, int], ...] = MOBILENET_V2_SETTINGS

    def __post_init__(self) -> None:
        if self.width_mult <= 0 or self.in_channels <= 0 or self.last_channels <= 0:
            raise ValueError("width_mult, in_channels and last_channels must be positive")

    @property
    def out_channels(self) -> int:
        return make_divisible(self.last_channels * max(1.0, self.width_mult))

    @property
    def stride(self) -> int:
        total = 2  # stem
        for _, _, _, s in self.settings:
            total *= s
        return total


def _conv_bn_relu(
    cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn_relu(cin, hidden, 1))
        layers += [
            _conv_bn_relu(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class MobileNetV2(nn.Module):
    """``[N, in_channels, H, W]`` → feature map ``[N, out_channels, H/stride, W/stride]``."""

    def __init__(self, cfg: MobileNetConfig = MobileNetConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        cin = make_divisible(cfg.stem_channels * cfg.width_mult)
        layers: list[nn.Module] = [_conv_bn_relu(cfg.in_channels, cin, 3, 2)]
        for expand, channels, repeats, stride in cfg.settings:
            cout = make_divisible(channels * cfg.width_mult)
            for i in range(repeats):
                layers.append(InvertedResidual(cin, cout, stride if i == 0 else 1, expand))
                cin = cout
        layers.append(_conv_bn_relu(cin, cfg.out_channels, 1))
        self.features = nn.Sequential(*layers)
        self.out_channels = cfg.out_channels
        _init_weights(self.modules())

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.features(x)
        return out


def _init_weights(modules: Iterable[nn.Module]) -> None:
    # torchvision's MobileNetV2 init: trained from scratch, so this matters.
    for m in modules:
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
