"""The REACT challenge's PIRender: re-animate a listener's photo from FaceVerse coefficients.

Why this network and not another: ReactFace, PerFRDiff and the REACT baselines all render their
3DMM reactions with one checkpoint, ``cur_model_fold.pth``, the challenge's retrained PIRender
(Ren et al., ICCV 2021), and the challenge's realism metric (FRRea, an FID) is computed on its
frames. Reading that file as published is what makes reactcli's pictures comparable with the
published ones. The network below is written for reactcli from the structure of the challenge's
``FaceGenerator`` (``baseline_react2023``, commit c5a8ff8563284e311f89fdf10558f3ae8f0082dd,
``external/PIRender/face_model.py``, ``base_function.py``, ``flow_util.py``); its module names
are chosen so that its state-dict keys are the released ones (``warpping_net`` is their spelling).

Structure (widths are :class:`PIRenderConfig`'s defaults, the released ones):

1. ``mapping_net``: ``pre``, a 1x1 ``Conv1d(58, 73)`` that lifts the FaceVerse coefficients to
   the 73 channels of PIRender's original mapping; ``first``, a ``Conv1d(73, 256, 7)``; three
   ``LeakyReLU(0.1)`` + ``Conv1d(256, 256, 3, dilation 3)`` layers with centre-cropped residuals;
   the mean over the remaining frames -> a 256-d motion descriptor. Input: a 27-frame window.
2. ``warpping_net``: an AdaIN hourglass over the source picture (5 down, 3 up levels, base 32,
   cap 256; AdaIN's MLP has 128 hidden units) -> ``LayerNorm2d``, ``LeakyReLU``, a 7x7 conv to a
   2-channel flow at a quarter of the image size. The flow (pixels) becomes a sampling grid on
   ``[-1, 1]`` corner-aligned coordinates, is resized bilinearly to the image, and the source is
   warped with ``grid_sample`` (bilinear, zero padding, ``align_corners=False``). That mix of
   conventions is the released code's; it is reproduced, not fixed, since the weights learnt it.
3. ``editing_net``: an encoder over ``[source, warped]`` (3 levels, base 64, ``LayerNorm2d``)
   and a decoder whose levels are AdaIN residual blocks, a nearest-neighbour upsampling conv and
   a skip ("jump") conv, ending in a 7x7 conv and ``tanh``.

One quirk of the released residual block is kept on purpose: it computes
``norm1(conv1(x))`` and then overwrites it with ``norm2(conv2(x))``, so ``conv1`` and ``norm1``
are loaded (every tensor of the file has its place) but do not change the output. Computing a
value that is thrown away would only cost time, so :class:`_ResBlock` skips it.

Renderer inputs, as the challenge's ``render.py`` builds them: the model's 3DMM offsets plus
``mean_face.npy`` (:attr:`RendererConfig.mean_face`), a 27-frame window around each frame
(radius 13, indices clamped to the clip), and the listener's first frame resized (shorter side
256, PIL bilinear) and centre-cropped to 224, scaled to [-1, 1]. Output frames are
``(x * 0.5 + 0.5) * 255`` clipped and truncated to uint8, as their ``torch_img_to_np2`` does.

Checkpoint (``torch.load(..., weights_only=True)``): a dict holding the generator's state dict
under ``state_dict`` (PerFRDiff's loader reads the released file so) or ``net_G_ema`` (PIRender's
trainer), or a bare state dict; a ``module.`` prefix (DataParallel) is dropped. Loading is strict:
a missing or unexpected tensor, or one of the wrong shape, is a one-line :class:`InputError`
naming them. A reactcli-written file may add ``config`` (a dict of :class:`PIRenderConfig`
fields) for other widths (tests, small experiments); the released file has none and gets the
released widths.

Python entry points (the same inputs as the authors' forward pass, to repeat a comparison):
:func:`load_pirender` -> a network whose ``forward(input_image, driving_source)`` takes
``(B, 3, H, W)`` in [-1, 1] and ``(B, 58, window)`` coefficients and returns
``{"flow_field", "warp_image", "fake_image"}`` like ``FaceGenerator.forward``;
:func:`coefficient_windows` builds the windows, :func:`source_tensor` the picture,
:func:`to_uint8` the frames.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from reactcli.errors import ConfigError, InputError, MissingAssetError
from reactcli.render.base import (
    TDMM_DIM,
    Renderer,
    RendererConfig,
    asset_path,
    check_features,
    load_mean_face,
    neutral_emotion,
)

__all__ = [
    "PIRenderConfig",
    "PIRenderRenderer",
    "build_pirender",
    "load_pirender",
    "save_pirender",
    "expected_state_shapes",
    "coefficient_windows",
    "source_tensor",
    "to_uint8",
    "SEMANTIC_RADIUS",
]

ASSET = "PIRender checkpoint"
OPTION = "--pirender-checkpoint"
_STATE_KEYS = ("state_dict", "net_G_ema")
SEMANTIC_RADIUS = 13
"""Frames on each side of frame t in its coefficient window (the challenge's ``semantic_radius``)."""


@dataclass
class PIRenderConfig:
    """Widths of the challenge's FaceGenerator (defaults: the released ones) and its picture size."""

    coeff_in: int = TDMM_DIM
    """Coefficients per frame given to ``mapping_net.pre`` (58 FaceVerse values)."""
    coeff_nc: int = 73
    """Channels after ``pre`` (PIRender's original 73-d input)."""
    descriptor_nc: int = 256
    """Size of the motion descriptor that drives every AdaIN."""
    mapping_layers: int = 3
    """Dilated layers of the mapping net (each shortens the window by 6 frames)."""
    window: int = 2 * SEMANTIC_RADIUS + 1
    """Frames per coefficient window (27: radius 13), odd, >= 7 + 6 * mapping_layers."""
    image_nc: int = 3
    """Image channels (RGB)."""
    adain_hidden: int = 128
    """Hidden units of each AdaIN's shared MLP (fixed in the released code)."""
    warp_base_nc: int = 32
    """Channels of the warping hourglass's first level (doubling per level up to warp_max_nc)."""
    warp_max_nc: int = 256
    """Channel cap of the warping hourglass."""
    warp_encoder_layers: int = 5
    """Down-sampling levels of the warping hourglass."""
    warp_decoder_layers: int = 3
    """Up-sampling levels of the warping hourglass (the flow is at 1/2**(enc - dec) of the image)."""
    edit_base_nc: int = 64
    """Channels of the editing net's first level."""
    edit_max_nc: int = 256
    """Channel cap of the editing net."""
    edit_layers: int = 3
    """Down/up-sampling levels of the editing net."""
    edit_res_blocks: int = 2
    """AdaIN residual blocks per editing-decoder level."""
    image_size: int = 224
    """Side of the square picture the network sees (the challenge's crop size)."""
    source_resize: int = 256
    """The source's shorter side is resized to this before the centre crop (the challenge's img_size)."""

    def validate(self) -> "PIRenderConfig":
        if self.window % 2 == 0 or self.window < 7 + 6 * self.mapping_layers:
            raise ConfigError(f"PIRender window {self.window} must be odd and >= {7 + 6 * self.mapping_layers} "
                              f"for {self.mapping_layers} mapping layers")
        if not 1 <= self.warp_decoder_layers <= self.warp_encoder_layers:
            raise ConfigError(f"PIRender warp_decoder_layers {self.warp_decoder_layers} must lie in "
                              f"[1, warp_encoder_layers = {self.warp_encoder_layers}]")
        div = 2 ** max(self.warp_encoder_layers, self.edit_layers)
        if self.image_size % div or self.image_size < 2 * div or self.source_resize < self.image_size:
            raise ConfigError(f"PIRender image_size {self.image_size} must be a multiple of {div}, at least {2 * div} "
                              f"(instance norm needs 2 x 2 pixels at the bottleneck), and <= source_resize "
                              f"{self.source_resize}")
        return self


def _modules():
    """The torch module classes, built lazily (keeps ``import reactcli.render`` torch-free)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    def width(base: int, level: int, cap: int) -> int:
        return min(base * 2**level, cap)

    class LayerNorm2d(nn.Module):
        """Layer norm over (C, H, W) with a per-channel affine stored as (C, 1, 1)."""

        def __init__(self, channels: int) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(channels, 1, 1))
            self.bias = nn.Parameter(torch.zeros(channels, 1, 1))

        def forward(self, x):
            shape = x.shape[1:]
            return F.layer_norm(x, shape, self.weight.expand(shape), self.bias.expand(shape))

    class AdaIN(nn.Module):
        """Instance norm scaled by ``1 + gamma(d)`` and shifted by ``beta(d)``."""

        def __init__(self, channels: int, descriptor_nc: int, hidden: int) -> None:
            super().__init__()
            self.mlp_shared = nn.Sequential(nn.Linear(descriptor_nc, hidden), nn.ReLU())
            self.mlp_gamma = nn.Linear(hidden, channels)
            self.mlp_beta = nn.Linear(hidden, channels)

        def forward(self, x, d):
            h = self.mlp_shared(d)
            return F.instance_norm(x) * (1 + self.mlp_gamma(h)[..., None, None]) + self.mlp_beta(h)[..., None, None]

    def conv_norm_act(cin: int, cout: int, k: int, pool: bool = False) -> nn.Sequential:
        layers = [nn.Conv2d(cin, cout, k, padding=k // 2), LayerNorm2d(cout), nn.LeakyReLU(0.1)]
        return nn.Sequential(*layers, nn.AvgPool2d(2)) if pool else nn.Sequential(*layers)

    class Block(nn.Module):
        """Holds a ``model`` Sequential (the released key prefix ``<name>.model.<i>``)."""

        def __init__(self, model: nn.Sequential) -> None:
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x)

    class MappingNet(nn.Module):
        def __init__(self, c: PIRenderConfig) -> None:
            super().__init__()
            self.layers = c.mapping_layers
            self.pre = nn.Conv1d(c.coeff_in, c.coeff_nc, 1)
            self.first = nn.Sequential(nn.Conv1d(c.coeff_nc, c.descriptor_nc, 7))
            for i in range(c.mapping_layers):
                self.add_module(f"encoder{i}", nn.Sequential(
                    nn.LeakyReLU(0.1), nn.Conv1d(c.descriptor_nc, c.descriptor_nc, 3, dilation=3)))

        def forward(self, coeffs):  # (B, coeff_in, window) -> (B, descriptor_nc)
            out = self.first(self.pre(coeffs))
            for i in range(self.layers):
                out = getattr(self, f"encoder{i}")(out) + out[:, :, 3:-3]
            return out.mean(-1)

    class DownAdaIN(nn.Module):
        def __init__(self, cin: int, cout: int, c: PIRenderConfig) -> None:
            super().__init__()
            self.conv_0 = nn.Conv2d(cin, cout, 4, stride=2, padding=1)
            self.conv_1 = nn.Conv2d(cout, cout, 3, padding=1)
            self.norm_0 = AdaIN(cin, c.descriptor_nc, c.adain_hidden)
            self.norm_1 = AdaIN(cout, c.descriptor_nc, c.adain_hidden)

        def forward(self, x, d):
            x = self.conv_0(F.leaky_relu(self.norm_0(x, d), 0.1))
            return self.conv_1(F.leaky_relu(self.norm_1(x, d), 0.1))

    class UpAdaIN(nn.Module):
        def __init__(self, cin: int, cout: int, c: PIRenderConfig) -> None:
            super().__init__()
            self.conv_0 = nn.Conv2d(cin, cout, 3, padding=1)
            self.conv_1 = nn.ConvTranspose2d(cout, cout, 3, stride=2, padding=1, output_padding=1)
            self.conv_s = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1, output_padding=1)
            self.norm_0 = AdaIN(cin, c.descriptor_nc, c.adain_hidden)
            self.norm_1 = AdaIN(cout, c.descriptor_nc, c.adain_hidden)
            self.norm_s = AdaIN(cin, c.descriptor_nc, c.adain_hidden)

        def forward(self, x, d):
            skip = self.conv_s(F.leaky_relu(self.norm_s(x, d), 0.1))
            dx = self.conv_0(F.leaky_relu(self.norm_0(x, d), 0.1))
            return skip + self.conv_1(F.leaky_relu(self.norm_1(dx, d), 0.1))

    class HourglassEncoder(nn.Module):
        def __init__(self, c: PIRenderConfig) -> None:
            super().__init__()
            self.layers = c.warp_encoder_layers
            self.input_layer = nn.Conv2d(c.image_nc, c.warp_base_nc, 7, padding=3)
            for i in range(self.layers):
                self.add_module(f"encoder{i}", DownAdaIN(width(c.warp_base_nc, i, c.warp_max_nc),
                                                         width(c.warp_base_nc, i + 1, c.warp_max_nc), c))

        def forward(self, x, d) -> list:
            outs = [self.input_layer(x)]
            for i in range(self.layers):
                outs.append(getattr(self, f"encoder{i}")(outs[-1], d))
            return outs

    class HourglassDecoder(nn.Module):
        def __init__(self, c: PIRenderConfig) -> None:
            super().__init__()
            n_enc, n_dec = c.warp_encoder_layers, c.warp_decoder_layers
            self.levels = list(range(n_enc - n_dec, n_enc))[::-1]
            for i in self.levels:
                cin = width(c.warp_base_nc, i + 1, c.warp_max_nc) * (1 if i == n_enc - 1 else 2)
                cout = width(c.warp_base_nc, i, c.warp_max_nc)
                self.add_module(f"decoder{i}", UpAdaIN(cin, cout, c))
            self.output_nc = 2 * cout

        def forward(self, skips: list, d):
            out = skips[-1]
            for j, i in enumerate(self.levels):
                out = torch.cat([getattr(self, f"decoder{i}")(out, d), skips[-2 - j]], 1)
            return out

    class Hourglass(nn.Module):
        def __init__(self, c: PIRenderConfig) -> None:
            super().__init__()
            self.encoder = HourglassEncoder(c)
            self.decoder = HourglassDecoder(c)

        def forward(self, x, d):
            return self.decoder(self.encoder(x, d), d)

    def sampling_grid(flow):
        """Pixel flow (B, 2, h, w) -> grid on corner-aligned [-1, 1] coordinates (B, h, w, 2)."""
        _, _, h, w = flow.shape
        xs = 2 * (torch.arange(w).to(flow) / (w - 1)) - 1
        ys = 2 * (torch.arange(h).to(flow) / (h - 1)) - 1
        base = torch.stack([xs.view(1, w).expand(h, w), ys.view(h, 1).expand(h, w)], -1)
        scaled = 2 * torch.cat([flow[:, :1] / (w - 1), flow[:, 1:] / (h - 1)], 1)
        return base + scaled.permute(0, 2, 3, 1)

    class WarpingNet(nn.Module):
        def __init__(self, c: PIRenderConfig) -> None:
            super().__init__()
            self.hourglass = Hourglass(c)
            nc = self.hourglass.decoder.output_nc
            self.flow_out = nn.Sequential(LayerNorm2d(nc), nn.LeakyReLU(0.1), nn.Conv2d(nc, 2, 7, padding=3))

        def forward(self, image, d) -> dict[str, Any]:
            flow = self.flow_out(self.hourglass(image, d))
            grid = sampling_grid(flow)
            h, w = image.shape[2:]
            if grid.shape[1:3] != (h, w):
                grid = F.interpolate(grid.permute(0, 3, 1, 2), size=(h, w), mode="bilinear").permute(0, 2, 3, 1)
            warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            return {"flow_field": flow, "warp_image": warped}

    class EditEncoder(nn.Module):
        def __init__(self, c: PIRenderConfig) -> None:
            super().__init__()
            self.layers = c.edit_layers
            self.first = Block(conv_norm_act(2 * c.image_nc, c.edit_base_nc, 7))
            for i in range(self.layers):
                cin, cout = width(c.edit_base_nc, i, c.edit_max_nc), width(c.edit_base_nc, i + 1, c.edit_max_nc)
                self.add_module(f"down{i}", Block(conv_norm_act(cin, cout, 3, pool=True)))

        def forward(self, x) -> list:
            outs = [self.first(x)]
            for i in range(self.layers):
                outs.append(getattr(self, f"down{i}")(outs[-1]))
            return outs

    class _ResBlock(nn.Module):
        """The released AdaIN residual block: ``x + norm2(conv2(x), d)`` (conv1/norm1 unused, see above)."""

        def __init__(self, channels: int, c: PIRenderConfig) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
            self.norm1 = AdaIN(channels, c.descriptor_nc, c.adain_hidden)
            self.norm2 = AdaIN(channels, c.descriptor_nc, c.adain_hidden)

        def forward(self, x, d):
            return self.norm2(self.conv2(x), d) + x

    class ResBlocks(nn.Module):
        def __init__(self, channels: int, c: PIRenderConfig) -> None:
            super().__init__()
            self.n = c.edit_res_blocks
            for j in range(self.n):
                self.add_module(f"res{j}", _ResBlock(channels, c))

        def forward(self, x, d):
            for j in range(self.n):
                x = getattr(self, f"res{j}")(x, d)
            return x

    class Upsample(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.model = conv_norm_act(cin, cout, 3)

        def forward(self, x):
            return self.model(F.interpolate(x, scale_factor=2))

    class EditDecoder(nn.Module):
        def __init__(self, c: PIRenderConfig) -> None:
            super().__init__()
            self.layers = c.edit_layers
            for i in reversed(range(self.layers)):
                cin, cout = width(c.edit_base_nc, i + 1, c.edit_max_nc), width(c.edit_base_nc, i, c.edit_max_nc)
                self.add_module(f"up{i}", Upsample(cin, cout))
                self.add_module(f"res{i}", ResBlocks(cin, c))
                self.add_module(f"jump{i}", Block(conv_norm_act(cout, cout, 3)))
            last = width(c.edit_base_nc, 0, c.edit_max_nc)
            self.final = Block(nn.Sequential(nn.Conv2d(last, c.image_nc, 7, padding=3), nn.Tanh()))

        def forward(self, feats: list, d):
            out = feats[-1]
            for i in reversed(range(self.layers)):
                out = getattr(self, f"up{i}")(getattr(self, f"res{i}")(out, d))
                out = getattr(self, f"jump{i}")(feats[i]) + out
            return self.final(out)

    class EditingNet(nn.Module):
        def __init__(self, c: PIRenderConfig) -> None:
            super().__init__()
            self.encoder = EditEncoder(c)
            self.decoder = EditDecoder(c)

        def forward(self, image, warped, d):
            return self.decoder(self.encoder(torch.cat([image, warped], 1)), d)

    class PIRenderNet(nn.Module):
        """The challenge's FaceGenerator: ``forward(input_image, driving_source)`` as theirs.

        ``input_image``: ``(B, 3, H, W)`` in [-1, 1] (H, W divisible by 32); ``driving_source``:
        ``(B, coeff_in, window)`` coefficients (mean face included). Returns ``flow_field``
        ``(B, 2, H/4, W/4)``, ``warp_image`` and ``fake_image`` ``(B, 3, H, W)`` in [-1, 1].
        """

        def __init__(self, c: PIRenderConfig) -> None:
            super().__init__()
            self.config = c
            self.mapping_net = MappingNet(c)
            self.warpping_net = WarpingNet(c)  # sic: the released key prefix
            self.editing_net = EditingNet(c)

        def descriptor(self, driving_source):
            """The ``(B, descriptor_nc)`` motion descriptor of coefficient windows."""
            return self.mapping_net(driving_source)

        def forward(self, input_image, driving_source) -> dict[str, Any]:
            d = self.mapping_net(driving_source)
            out = self.warpping_net(input_image, d)
            out["fake_image"] = self.editing_net(input_image, out["warp_image"], d)
            return out

    return PIRenderNet


def build_pirender(config: PIRenderConfig | None = None, seed: int | None = None, device: Any = None):
    """The challenge's FaceGenerator with ``config``'s widths (random weights from ``seed`` if given).

    ``device="meta"`` builds it without allocating weights (to list its tensors and shapes).
    """
    import torch

    c = (config or PIRenderConfig()).validate()
    cls = _modules()
    if device == "meta":
        with torch.device("meta"):
            return cls(c)
    if seed is None:
        return cls(c)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(c)


def expected_state_shapes(config: PIRenderConfig | None = None) -> dict[str, tuple[int, ...]]:
    """Every state-dict key of the network and its shape (without allocating the weights)."""
    return {k: tuple(v.shape) for k, v in build_pirender(config, device="meta").state_dict().items()}


def save_pirender(path: str | os.PathLike, net, *, with_config: bool | None = None) -> Path:
    """Save ``net`` in the released layout ``{"state_dict": ...}`` (atomically).

    A network whose widths are not the released ones also records them under ``config`` so that
    :func:`load_pirender` can rebuild it (``with_config`` forces either way).
    """
    from reactcli.io import atomic_torch_save

    ckpt: dict[str, Any] = {"state_dict": net.state_dict()}
    if with_config is None:
        with_config = net.config != PIRenderConfig()
    if with_config:
        ckpt["config"] = dataclasses.asdict(net.config)
    return atomic_torch_save(ckpt, path)


def _read_state(p: Path) -> tuple[dict, dict]:
    """(state dict, reactcli config dict) from a checkpoint file, or a one-line InputError."""
    import torch

    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file, truncated, or holding arbitrary objects
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{p}: not a PIRender checkpoint (torch.load with weights_only=True failed: "
                         f"{first[:200]})") from None
    if not isinstance(ckpt, dict):
        raise InputError(f"{p}: not a PIRender checkpoint (expected a dict, got {type(ckpt).__name__})")
    state = next((ckpt[k] for k in _STATE_KEYS if isinstance(ckpt.get(k), dict)), None)
    if state is None and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        state = ckpt
    if state is None:
        raise InputError(f"{p}: not a PIRender checkpoint (no generator state dict under {' or '.join(_STATE_KEYS)}; "
                         f"keys: {_summary(sorted(map(str, ckpt)), 6)})")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise InputError(f"{p}: the generator state dict holds non-tensors under {_summary(bad, 3)}")
    raw_cfg = ckpt.get("config") if state is not ckpt else None
    if raw_cfg is not None and not isinstance(raw_cfg, dict):
        raise InputError(f"{p}: 'config' must be a dict of PIRender widths, got {type(raw_cfg).__name__}")
    state = {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}
    return state, raw_cfg or {}


def _summary(keys: list[str], limit: int = 4) -> str:
    """Up to ``limit`` names, comma-separated (no square brackets: the CLI prints with rich markup)."""
    if not keys:
        return "none"
    return ", ".join(keys[:limit]) + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def load_pirender(path: str | os.PathLike | None, device: str = "cpu", config: PIRenderConfig | None = None):
    """Load a challenge-layout PIRender checkpoint strictly into a network in eval mode.

    Args:
        path: ``cur_model_fold.pth`` or any file in the layout of the module docstring.
        device: torch device.
        config: the widths to expect; default: the file's reactcli ``config`` if any, else the
            released widths.

    Raises:
        MissingAssetError: no file at ``path``.
        InputError: not a checkpoint, or its tensors do not match the network (missing,
            unexpected and wrong-shape keys are named).
    """
    p = asset_path(path)
    if p is None or not p.is_file():
        raise MissingAssetError(ASSET, OPTION, p)
    state, raw_cfg = _read_state(p)
    if config is None:
        fields = {f.name for f in dataclasses.fields(PIRenderConfig)}
        unknown = sorted(set(raw_cfg) - fields)
        if unknown:
            raise InputError(f"{p}: unknown PIRender config fields {_summary(unknown)}")
        try:
            config = PIRenderConfig(**raw_cfg).validate()
        except (TypeError, ConfigError) as exc:
            raise InputError(f"{p}: bad PIRender config ({exc})") from None
    want = expected_state_shapes(config)
    missing = [k for k in want if k not in state]
    unexpected = [k for k in state if k not in want]
    if missing or unexpected:
        raise InputError(f"{p}: PIRender checkpoint does not match the challenge's FaceGenerator: "
                         f"{len(missing)} missing ({_summary(missing)}), {len(unexpected)} unexpected "
                         f"({_summary(unexpected)})")
    wrong = [f"{k} {tuple(state[k].shape)} != {want[k]}" for k in want if tuple(state[k].shape) != want[k]]
    if wrong:
        raise InputError(f"{p}: PIRender checkpoint has {len(wrong)} tensor(s) of the wrong shape: "
                         f"{_summary(wrong, 3)}")
    net = build_pirender(config)
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return net.to(device).eval()


def coefficient_windows(tdmm: np.ndarray, frames: np.ndarray | Sequence[int] | None = None,
                        window: int = 2 * SEMANTIC_RADIUS + 1) -> np.ndarray:
    """``(len(frames), D, window)`` windows of ``tdmm (T, D)`` centred on ``frames``.

    Frame t's window holds frames ``t - r .. t + r`` (``r = window // 2``), each index clamped to
    ``[0, T - 1]``: the challenge's ``obtain_seq_index`` / ``transform_semantic``. ``frames``
    defaults to every frame.
    """
    tdmm = np.asarray(tdmm)
    T = tdmm.shape[0]
    half = window // 2
    f = np.arange(T) if frames is None else np.asarray(frames, np.int64)
    idx = np.clip(f[:, None] + np.arange(-half, half + 1)[None, :], 0, T - 1)
    return np.ascontiguousarray(tdmm[idx].transpose(0, 2, 1))


def source_tensor(image: np.ndarray, config: PIRenderConfig | None = None):
    """An RGB uint8 picture ``(H, W, 3)`` as the challenge feeds it: ``(1, 3, S, S)`` in [-1, 1].

    Shorter side resized to ``source_resize`` (PIL bilinear, the long side truncated as torchvision
    does), centre crop of ``image_size`` (offsets rounded as torchvision does), ``/255``,
    ``(x - 0.5) / 0.5``.
    """
    import torch

    crop = center_crop(image, config)
    x = torch.from_numpy(np.array(crop)).permute(2, 0, 1).float().div(255)
    return x.sub(0.5).div(0.5)[None]


def center_crop(image: np.ndarray, config: PIRenderConfig | None = None) -> np.ndarray:
    """The challenge's picture framing as uint8: resize (shorter side) then centre crop."""
    from PIL import Image

    c = config or PIRenderConfig()
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise InputError(f"PIRender source picture must be (H, W, 3) uint8, got {img.dtype} {img.shape}")
    h, w = img.shape[:2]
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = c.source_resize, int(c.source_resize * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    pil = Image.fromarray(img)
    if (new_w, new_h) != (w, h):
        pil = pil.resize((new_w, new_h), Image.BILINEAR)
    top = int(round((new_h - c.image_size) / 2.0))
    left = int(round((new_w - c.image_size) / 2.0))
    return np.asarray(pil.crop((left, top, left + c.image_size, top + c.image_size)))


def to_uint8(images) -> np.ndarray:
    """``(B, 3, H, W)`` network output in [-1, 1] -> ``(B, H, W, 3)`` uint8 RGB.

    ``(x * 0.5 + 0.5) * 255`` in float64, clipped to [0, 255] and truncated, as the challenge's
    ``torch_img_to_np2`` (which then swaps to BGR for OpenCV; reactcli keeps RGB).
    """
    x = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    x = (x.astype(np.float64) * 0.5 + 0.5) * 255.0
    return np.clip(x, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


class PIRenderRenderer(Renderer):
    """Re-animate a source picture with the challenge's PIRender checkpoint, driven by ``tdmm``."""

    name = "pirender"
    needs = ("tdmm",)
    needs_source = True
    photoreal = True

    def __init__(self, cfg: RendererConfig) -> None:
        super().__init__(cfg.size, load_mean_face(cfg.mean_face))
        self.device = cfg.device
        self.batch_size = max(1, int(cfg.batch_size))
        self.net = load_pirender(cfg.pirender_checkpoint, cfg.device)
        self.config: PIRenderConfig = self.net.config
        if self.config.coeff_in != TDMM_DIM:
            raise InputError(f"{cfg.pirender_checkpoint}: PIRender expects {self.config.coeff_in}-d coefficients, "
                             f"REACT's are {TDMM_DIM}-d")

    def default_source(self) -> np.ndarray:
        """A neutral face from face2d, for when there is no real picture of the listener."""
        from reactcli.render.face2d import render_sequence

        return render_sequence(neutral_emotion(1), None, self.config.source_resize)[0]

    def real_view(self, frames: np.ndarray) -> np.ndarray:
        """Real frames framed as the source picture is (resize + centre crop), at ``size``."""
        return super().real_view(np.stack([center_crop(f, self.config) for f in frames]) if len(frames) else frames)

    def _frames(self, tdm: np.ndarray, frames: np.ndarray, source: np.ndarray | None) -> np.ndarray:
        import cv2
        import torch

        src = source_tensor(self.default_source() if source is None else source, self.config).to(self.device)
        coeffs = self.coefficients(tdm)
        out = np.empty((len(frames), self.size, self.size, 3), np.uint8)
        with torch.inference_mode():
            for a in range(0, len(frames), self.batch_size):
                f = frames[a : a + self.batch_size]
                # always a full batch (the last one padded): convolution kernels may pick other
                # algorithms for other batch sizes, and a frame must not change by a grey level
                # depending on how the sequence was chunked
                fb = np.concatenate([f, np.repeat(f[-1:], self.batch_size - len(f))])
                w = torch.from_numpy(coefficient_windows(coeffs, fb, self.config.window)).to(self.device)
                u8 = to_uint8(self.net(src.expand(len(fb), -1, -1, -1), w)["fake_image"][: len(f)])
                for b in range(len(f)):
                    out[a + b] = u8[b] if u8.shape[1] == self.size else cv2.resize(
                        u8[b], (self.size, self.size), interpolation=cv2.INTER_AREA)
        return out

    def render(self, emotion, tdmm=None, *, source=None) -> np.ndarray:
        _, tdm, T = check_features(emotion, tdmm, self.needs, "pirender renderer")
        return self._frames(tdm, np.arange(T), source)

    def iter_render(self, emotion, tdmm=None, *, source=None, chunk: int = 125) -> Iterator[np.ndarray]:
        # windows are cut from the whole sequence, so chunk borders do not change any frame
        _, tdm, T = check_features(emotion, tdmm, self.needs, "pirender renderer")
        chunk = max(1, int(chunk))
        for a in range(0, T, chunk):
            yield self._frames(tdm, np.arange(a, min(T, a + chunk)), source)

    def render_frames(self, emotion, tdmm, frames: Sequence[int] | np.ndarray, *, source=None) -> np.ndarray:
        _, tdm, T = check_features(emotion, tdmm, self.needs, "pirender renderer")
        idx = np.asarray(frames, np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= T):
            raise InputError(f"frame indices must lie in [0, {T}), got {idx.min()}..{idx.max()}")
        return self._frames(tdm, idx, source)
