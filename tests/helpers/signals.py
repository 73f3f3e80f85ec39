"""Test inputs shared by the window-edge (seam) tests of the generators."""

from __future__ import annotations

import math

import torch


def smooth_speaker(b: int = 3, t: int = 200, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Slowly varying speaker inputs (sums of sines): audio (b, t, 78), emotion in [0, 1]
    (b, t, 25), 3DMM (b, t, 58), so that a generator without seams moves smoothly too."""
    g = torch.Generator().manual_seed(seed)
    tt = torch.arange(t).float()[None, :, None]

    def wave(d: int) -> torch.Tensor:
        ph = torch.rand(b, 1, d, generator=g) * 6.28
        per = 20 + 60 * torch.rand(1, 1, d, generator=g)
        return torch.sin(2 * math.pi * tt / per + ph)

    return wave(78), 0.5 + 0.5 * wave(25), wave(58)
