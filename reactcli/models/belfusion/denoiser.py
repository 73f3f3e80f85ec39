"""BeLFusion stage 2's denoiser: the MLP with input skips of the challenge's ``MLPSkipNet``.

The network (from diffusion autoencoders' latent DPM, as the challenge's ``mlp_diffae.py``
uses it) predicts a clean latent ``x0`` (``C`` values) from a noisy one, the diffusion step and
the speaker window's latent:

* the step's sinusoidal embedding (``[cos, sin]`` halves, ``time_channels`` wide) and the
  condition each pass a small MLP to ``C`` channels (SiLU between layers, none after);
  their concatenation ``c`` (``2C``) conditions every block;
* ``num_layers`` blocks; every block's input is the previous output concatenated with the noisy
  input (the "skip" of every layer); a block is ``Linear``, then -- for all but the last --
  ``x * (condition_bias + Linear(SiLU(c)))``, LayerNorm, SiLU and dropout; the last block maps
  back to ``C`` with nothing after it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DenoiserBlock", "LatentDenoiser", "timestep_embedding"]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding ``(N, dim)`` of (possibly fractional) steps ``t`` ``(N,)``: cosines of
    ``t * f_i`` then sines, ``f_i = max_period^(-i / (dim // 2))``; a zero column pads odd ``dim``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.to(torch.float32).view(-1, 1) * freqs.view(1, -1)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return F.pad(emb, (0, dim % 2))


def _mlp(in_dim: int, out_dim: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i in range(layers):
        mods.append(nn.Linear(in_dim if i == 0 else out_dim, out_dim))
        if i < layers - 1:
            mods.append(nn.SiLU())
    return nn.Sequential(*mods)


class DenoiserBlock(nn.Module):
    """``Linear`` then, if conditioned, ``* (bias + Linear(SiLU(c)))``, LayerNorm, SiLU, dropout."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        cond_dim: int,
        conditioned: bool,
        norm: bool,
        condition_bias: float,
        dropout: float,
    ):
        super().__init__()
        self.linear = nn.Linear(in_dim, out_dim)
        self.conditioned = conditioned
        self.condition_bias = condition_bias
        self.cond_proj = nn.Linear(cond_dim, out_dim) if conditioned else None
        self.norm: nn.Module = nn.LayerNorm(out_dim) if norm else nn.Identity()
        self.act: nn.Module = nn.SiLU() if conditioned else nn.Identity()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = self.linear(x)
        if self.cond_proj is not None:
            x = x * (self.condition_bias + self.cond_proj(F.silu(cond)))
        return self.dropout(self.act(self.norm(x)))


class LatentDenoiser(nn.Module):
    """``f(x_t, t, cond) -> x0`` over ``channels``-wide latents (see the module docstring)."""

    def __init__(
        self,
        channels: int,
        hidden: int = 1024,
        num_layers: int = 10,
        time_channels: int = 64,
        time_layers: int = 2,
        cond_layers: int = 2,
        condition_bias: float = 1.0,
        use_norm: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"LatentDenoiser: num_layers must be >= 2, got {num_layers}")
        self.time_channels = time_channels
        self.time_mlp = _mlp(time_channels, channels, time_layers)
        self.cond_mlp = _mlp(channels, channels, cond_layers)
        blocks = []
        for i in range(num_layers):
            last = i == num_layers - 1
            in_dim = (channels if i == 0 else hidden) + channels
            blocks.append(
                DenoiserBlock(
                    in_dim,
                    channels if last else hidden,
                    2 * channels,
                    conditioned=not last,
                    norm=use_norm and not last,
                    condition_bias=condition_bias,
                    dropout=0.0 if last else dropout,
                )
            )
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``x`` ``(N, C)`` noisy latents, ``t`` ``(N,)`` steps, ``cond`` ``(N, C)`` -> ``(N, C)``."""
        c = torch.cat(
            [self.time_mlp(timestep_embedding(t, self.time_channels).to(x.dtype)), self.cond_mlp(cond)], dim=1
        )
        h = x
        for block in self.blocks:
            h = block(torch.cat([h, x], dim=1), c)
        return h
