"""PIRender-style portrait re-animation from 3DMM coefficients, with the user's checkpoint.

Why: the REACT challenge renders 3DMM reactions into photo-like listener frames with PIRender
(Ren et al., ICCV 2021) for its realism metric (FID). The checkpoint is the user's
(``--pirender-checkpoint``); without it :class:`MissingAssetError` names the asset and the flag.

Structure (PIRender's three parts, written here from the paper's description, small enough to
run on a CPU):

1. **Mapping net**: a window of ``window`` (27) frames of 3DMM coefficients centred on frame t,
   ``(B, coeff_nc, window)`` -> a 1-D conv (kernel 7) then ``mapping_layers`` dilated convs
   (kernel 3, dilation 3) with centre-cropped residuals, averaged over time -> a motion
   descriptor ``(B, descriptor_nc)``. Using a window smooths the per-frame fitting noise.
2. **Warping net**: an hourglass over the *source* picture whose layers are modulated by the
   descriptor (AdaIN) predicts a flow field; the source is warped with ``grid_sample``.
3. **Editing net**: an encoder-decoder over ``[warped, source]`` with AdaIN residual blocks
   repairs what warping cannot (occlusions, mouth interior) -> the output in [-1, 1].

Checkpoint format (``torch.save``; loaded with ``weights_only=True``): a dict holding the
generator state dict under ``net_G_ema`` (preferred, as PIRender's trainer names its EMA
weights), ``net_G``, ``state_dict`` or ``model``, and optionally ``config``: a dict of
:class:`PIRenderConfig` fields so a checkpoint rebuilds its own network. A checkpoint without
``config`` is built with the defaults (PIRender's published sizes, 58-d REACT coefficients).
Loading is strict: a state dict whose names or shapes do not match this network (e.g. one
trained with the original code's layer names) is refused with the first differing keys named,
rather than silently drawing noise.

The source picture is the listener's first real frame when a video exists, else a neutral
face drawn by :mod:`reactcli.render.face2d` (the caller passes it as ``source=``).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from reactcli.errors import ConfigError, InputError, MissingAssetError
from reactcli.render.renderers import (
    Renderer,
    RendererConfig,
    asset_path,
    check_features,
    neutral_emotion,
    register_renderer,
)

__all__ = ["PIRenderConfig", "build_pirender", "load_pirender", "save_pirender", "PIRenderRenderer", "coefficient_windows"]

ASSET = "PIRender checkpoint"
OPTION = "--pirender-checkpoint"
_STATE_KEYS = ("net_G_ema", "net_G", "state_dict", "model")


@dataclass
class PIRenderConfig:
    """Network sizes (saved in the checkpoint under ``config``)."""

    coeff_nc: int = 58
    """Coefficients per frame (REACT's 58-d FaceVerse vector)."""
    descriptor_nc: int = 256
    """Size of the motion descriptor that modulates the warping and editing nets."""
    mapping_layers: int = 3
    """Dilated conv layers of the mapping net (each shortens the window by 6 frames)."""
    window: int = 27
    """Frames of coefficients seen per output frame (centred; edges repeat the end frames)."""
    image_size: int = 256
    """Side of the square images the network works on (divisible by 2**warp_layers)."""
    image_nc: int = 3
    """Image channels (RGB)."""
    warp_base_nc: int = 32
    """Channels of the first warping-net level (doubling per level up to ``max_nc``)."""
    warp_layers: int = 5
    """Down/up-sampling levels of the warping hourglass."""
    edit_base_nc: int = 64
    """Channels of the first editing-net level."""
    edit_layers: int = 3
    """Down/up-sampling levels of the editing net."""
    edit_res_blocks: int = 2
    """AdaIN residual blocks at the editing net's bottleneck."""
    max_nc: int = 256
    """Channel cap of both nets."""

    def validate(self) -> "PIRenderConfig":
        if self.window < 7 + 6 * self.mapping_layers:
            raise ConfigError(f"PIRender window {self.window} is too short for {self.mapping_layers} mapping layers "
                              f"(need >= {7 + 6 * self.mapping_layers})")
        if self.window % 2 == 0:
            raise ConfigError(f"PIRender window must be odd (centred on the frame), got {self.window}")
        div = 2 ** max(self.warp_layers, self.edit_layers)
        if self.image_size % div:
            raise ConfigError(f"PIRender image_size {self.image_size} must be divisible by {div}")
        return self


def _modules():
    """Build the torch module classes lazily (keeps ``import reactcli.render`` torch-free)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    class AdaIN(nn.Module):
        """Instance norm whose scale and shift come from the motion descriptor."""

        def __init__(self, channels: int, descriptor_nc: int) -> None:
            super().__init__()
            self.norm = nn.InstanceNorm2d(channels, affine=False)
            self.mlp = nn.Linear(descriptor_nc, 2 * channels)

        def forward(self, x, d):
            gamma, beta = self.mlp(d).chunk(2, dim=1)
            return self.norm(x) * (1 + gamma[..., None, None]) + beta[..., None, None]

    class AdaINConv(nn.Module):
        def __init__(self, cin: int, cout: int, descriptor_nc: int) -> None:
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, 3, padding=1)
            self.adain = AdaIN(cout, descriptor_nc)

        def forward(self, x, d):
            return F.leaky_relu(self.adain(self.conv(x), d), 0.2)

    class MappingNet(nn.Module):
        def __init__(self, c: PIRenderConfig) -> None:
            super().__init__()
            self.first = nn.Conv1d(c.coeff_nc, c.descriptor_nc, 7)
            self.blocks = nn.ModuleList(
                nn.Sequential(nn.LeakyReLU(0.1), nn.Conv1d(c.descriptor_nc, c.descriptor_nc, 3, dilation=3))
                for _ in range(c.mapping_layers)
            )

        def forward(self, coeffs):  # (B, coeff_nc, window)
            out = self.first(coeffs)
            for block in self.blocks:
                out = block(out) + out[:, :, 3:-3]
            return out.mean(-1)  # (B, descriptor_nc)

    def channels(base: int, level: int, cap: int) -> int:
        return min(cap, base * 2**level)

    class WarpingNet(nn.Module):
        def __init__(self, c: PIRenderConfig) -> None:
            super().__init__()
            ch = [channels(c.warp_base_nc, i, c.max_nc) for i in range(c.warp_layers + 1)]
            self.stem = nn.Conv2d(c.image_nc, ch[0], 3, padding=1)
            self.down = nn.ModuleList(AdaINConv(ch[i], ch[i + 1], c.descriptor_nc) for i in range(c.warp_layers))
            self.up = nn.ModuleList(AdaINConv(ch[i + 1] + ch[i], ch[i], c.descriptor_nc) for i in range(c.warp_layers))
            self.flow = nn.Conv2d(ch[0], 2, 7, padding=3)

        def forward(self, source, d):
            x = self.stem(source)
            skips = []
            for layer in self.down:
                skips.append(x)
                x = F.avg_pool2d(layer(x, d), 2)
            for i in reversed(range(len(self.up))):
                x = F.interpolate(x, scale_factor=2, mode="nearest")
                x = self.up[i](torch.cat([x, skips[i]], 1), d)
            flow = self.flow(x)  # (B, 2, H, W) offsets in normalised [-1, 1] coordinates
            B, _, H, W = flow.shape
            ys = torch.linspace(-1 + 1 / H, 1 - 1 / H, H, device=flow.device, dtype=flow.dtype)
            xs = torch.linspace(-1 + 1 / W, 1 - 1 / W, W, device=flow.device, dtype=flow.dtype)
            gy, gx = torch.meshgrid(ys, xs, indexing="ij")
            grid = torch.stack([gx, gy], -1)[None] + flow.permute(0, 2, 3, 1)
            warped = F.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
            return warped, flow

    class EditingNet(nn.Module):
        def __init__(self, c: PIRenderConfig) -> None:
            super().__init__()
            ch = [channels(c.edit_base_nc, i, c.max_nc) for i in range(c.edit_layers + 1)]
            self.stem = nn.Conv2d(2 * c.image_nc, ch[0], 7, padding=3)
            self.down = nn.ModuleList(nn.Conv2d(ch[i], ch[i + 1], 4, stride=2, padding=1) for i in range(c.edit_layers))
            self.res = nn.ModuleList(
                nn.ModuleList([AdaINConv(ch[-1], ch[-1], c.descriptor_nc), AdaINConv(ch[-1], ch[-1], c.descriptor_nc)])
                for _ in range(c.edit_res_blocks)
            )
            self.up = nn.ModuleList(AdaINConv(ch[i + 1] + ch[i], ch[i], c.descriptor_nc) for i in range(c.edit_layers))
            self.head = nn.Conv2d(ch[0], c.image_nc, 7, padding=3)

        def forward(self, warped, source, d):
            x = F.leaky_relu(self.stem(torch.cat([warped, source], 1)), 0.2)
            skips = []
            for layer in self.down:
                skips.append(x)
                x = F.leaky_relu(layer(x), 0.2)
            for a, b in self.res:
                x = x + b(a(x, d), d)
            for i in reversed(range(len(self.up))):
                x = F.interpolate(x, scale_factor=2, mode="nearest")
                x = self.up[i](torch.cat([x, skips[i]], 1), d)
            return torch.tanh(self.head(x))

    class PIRenderNet(nn.Module):
        """source ``(B, 3, S, S)`` in [-1, 1] + coefficient windows ``(B, coeff_nc, window)``."""

        def __init__(self, c: PIRenderConfig) -> None:
            super().__init__()
            self.config = c
            self.mapping_net = MappingNet(c)
            self.warping_net = WarpingNet(c)
            self.editing_net = EditingNet(c)

        def forward(self, source, coeffs) -> dict[str, Any]:
            d = self.mapping_net(coeffs)
            warped, flow = self.warping_net(source, d)
            fake = self.editing_net(warped, source, d)
            return {"fake_image": fake, "warp_image": warped, "flow_field": flow, "descriptor": d}

    return PIRenderNet


def build_pirender(config: PIRenderConfig | None = None, seed: int | None = None):
    """A PIRender network with the given sizes (random weights from ``seed`` if given)."""
    import torch

    c = (config or PIRenderConfig()).validate()
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return _modules()(c)
    return _modules()(c)


def save_pirender(path: str | os.PathLike, net) -> Path:
    """Save ``net`` in the checkpoint format above (atomically; config beside the weights)."""
    from reactcli.io import atomic_torch_save

    return atomic_torch_save({"config": dataclasses.asdict(net.config), "net_G_ema": net.state_dict()}, path)


def load_pirender(path: str | os.PathLike | None, device: str = "cpu"):
    """Load the user's checkpoint into a :class:`PIRenderNet` in eval mode."""
    import torch

    p = asset_path(path)
    if p is None or not p.is_file():
        raise MissingAssetError(ASSET, OPTION, p)
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"{p}: cannot read the PIRender checkpoint ({exc})") from exc
    if not isinstance(ckpt, dict):
        raise InputError(f"{p}: expected a dict checkpoint, got {type(ckpt).__name__}")
    state = next((ckpt[k] for k in _STATE_KEYS if isinstance(ckpt.get(k), dict)), None)
    if state is None:
        state = ckpt if ckpt and all(hasattr(v, "shape") for v in ckpt.values()) else None
    if state is None:
        raise InputError(f"{p}: no generator weights found (expected one of {list(_STATE_KEYS)} or a bare state dict)")
    raw_cfg = ckpt.get("config") or {}
    fields = {f.name for f in dataclasses.fields(PIRenderConfig)}
    unknown = set(raw_cfg) - fields
    if unknown:
        raise InputError(f"{p}: unknown PIRender config fields {sorted(unknown)}")
    net = build_pirender(PIRenderConfig(**raw_cfg))
    state = {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    bad_shape = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or bad_shape:
        raise InputError(
            f"{p}: checkpoint does not match the PIRender network ({len(missing)} missing, "
            f"{len(unexpected)} unexpected, {len(bad_shape)} wrong-shape tensors; first: "
            f"{(missing + unexpected + bad_shape)[:3]}); a 'config' entry must describe its sizes"
        )
    net.load_state_dict(state, strict=True)
    return net.to(device).eval()


def coefficient_windows(tdmm: np.ndarray, frames: np.ndarray, window: int) -> np.ndarray:
    """``(len(frames), D, window)`` windows centred on ``frames`` (edges repeat the end frames)."""
    half = window // 2
    T = tdmm.shape[0]
    idx = np.clip(np.asarray(frames)[:, None] + np.arange(-half, half + 1)[None, :], 0, T - 1)
    return np.ascontiguousarray(tdmm[idx].transpose(0, 2, 1))


@register_renderer("pirender")
class PIRenderRenderer(Renderer):
    """Re-animate a source picture with the user's PIRender checkpoint, driven by ``tdmm``."""

    name = "pirender"
    needs = ("tdmm",)
    needs_source = True

    def __init__(self, cfg: RendererConfig) -> None:
        super().__init__(cfg.size)
        self.device = cfg.device
        self.batch_size = max(1, int(cfg.batch_size))
        self.net = load_pirender(cfg.pirender_checkpoint, cfg.device)
        self.config: PIRenderConfig = self.net.config
        if self.config.coeff_nc != 58:
            raise InputError(f"{cfg.pirender_checkpoint}: PIRender expects {self.config.coeff_nc}-d coefficients, REACT's are 58-d")

    def default_source(self) -> np.ndarray:
        """A neutral face from face2d, for when there is no real picture of the listener."""
        from reactcli.render.face2d import render_sequence

        return render_sequence(neutral_emotion(1), None, self.config.image_size)[0]

    def _source_tensor(self, source: np.ndarray | None):
        import cv2
        import torch

        img = self.default_source() if source is None else np.asarray(source)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise InputError(f"PIRender source picture must be (H, W, 3) uint8, got {img.dtype} {img.shape}")
        s = self.config.image_size
        if img.shape[:2] != (s, s):
            img = cv2.resize(img, (s, s), interpolation=cv2.INTER_AREA if img.shape[0] > s else cv2.INTER_LINEAR)
        x = torch.from_numpy(img).permute(2, 0, 1).float().div(127.5).sub(1.0)
        return x[None].to(self.device)

    def _frames(self, tdm: np.ndarray, frames: np.ndarray, source: np.ndarray | None) -> np.ndarray:
        import cv2
        import torch

        src = self._source_tensor(source)
        out = np.empty((len(frames), self.size, self.size, 3), np.uint8)
        with torch.inference_mode():
            for a in range(0, len(frames), self.batch_size):
                f = frames[a : a + self.batch_size]
                # always a full batch (the last one padded): convolution kernels may pick other
                # algorithms for other batch sizes, and a frame must not change by a grey level
                # depending on how the sequence was chunked
                fb = np.concatenate([f, np.repeat(f[-1:], self.batch_size - len(f))])
                w = torch.from_numpy(coefficient_windows(tdm, fb, self.config.window)).to(self.device)
                img = self.net(src.expand(len(fb), -1, -1, -1), w)["fake_image"][: len(f)]
                u8 = img.add(1).mul(127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()
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
