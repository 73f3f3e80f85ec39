"""Overlapping windows blended into one sequence: what every window-by-window generator uses to
avoid a jump at window edges (issue 29).

A generator that produces ``w`` frames at a time and starts a new window every ``w`` frames puts
a step at every window edge: consecutive windows are separate samples (independent noise, a new
latent, a decoder that restarts). The remedy shared by PerFRDiff's render variant (paper:
windows of 50, stride 25, shared initial noise), BeLFusion and Trans-VAE here is the same:
windows start every ``stride < w`` frames and every frame is the weighted mean of the windows
that cover it, with triangular weights that fall to (almost) zero at a window's edges, so each
window fades in and out instead of switching on. Windows of the same sample should also start
from the same (or correlated) noise, so that the windows that are blended agree.

* :func:`blend_weights` -- the triangular weights ``1, 2, ..., 2, 1`` of one window;
* :func:`hann_weights` -- raised-cosine weights, ~0 at a window's first and last frames, for
  windows whose first frames are a transient (BeLFusion's decoder starts every window from a
  zero frame: under triangular weights that transient still showed as a seam, 2.4x);
* :func:`covering_starts` -- window starts every ``stride`` frames, the last window ending at the
  last frame;
* :func:`fold_windows` -- windows ``(..., n, w, D)`` at given starts -> sequence ``(..., T, D)``.
"""

from __future__ import annotations

import math

import torch

from reactcli.errors import ConfigError, InputError

__all__ = ["blend_weights", "covering_starts", "fold_windows", "hann_weights"]


def blend_weights(window: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Triangular weights ``min(j + 1, w - j)`` for ``j = 0..w-1`` (never zero, peak mid-window)."""
    j = torch.arange(window, device=device, dtype=torch.float32)
    return torch.minimum(j + 1, window - j)


def hann_weights(window: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Raised-cosine weights ``sin^2(pi (j + 1/2) / w)`` for ``j = 0..w-1``: positive, ~0 at both
    edges, and summing to a constant for windows every ``w / 2`` frames (so the blend is a plain
    crossfade there)."""
    j = torch.arange(window, device=device, dtype=torch.float64)
    return torch.sin(math.pi * (j + 0.5) / window).pow(2).to(torch.float32)


def covering_starts(frames: int, window: int, stride: int) -> list[int]:
    """Starts of windows of ``window`` frames every ``stride`` frames that cover ``frames``
    frames exactly: ``0, stride, 2 stride, ...`` and, when the last of those does not end at the
    last frame, one more window of the last ``window`` frames."""
    if frames < window:
        raise InputError(f"clips need at least {window} frames (one window), got {frames}")
    if not 1 <= stride <= window:
        raise ConfigError(f"window stride must be in [1, {window}], got {stride}")
    starts = list(range(0, frames - window + 1, stride))
    if starts[-1] + window < frames:
        starts.append(frames - window)
    return starts


def fold_windows(x: torch.Tensor, frames: torch.Tensor, length: int, weights: torch.Tensor) -> torch.Tensor:
    """Windows ``x`` ``(..., n, w, D)`` whose frames are ``frames`` ``(n, w)`` (indices into a
    sequence of ``length`` frames) -> the sequence ``(..., length, D)``: every frame the
    ``weights``-weighted mean of the windows that cover it (a frame no window covers is 0)."""
    *lead, n, w, d = x.shape
    if tuple(frames.shape) != (n, w) or tuple(weights.shape) != (w,):
        raise InputError(f"fold_windows: frames must be ({n}, {w}) and weights ({w},), got "
                         f"{tuple(frames.shape)} and {tuple(weights.shape)}")
    flat = x.reshape(-1, n * w, d)
    wts = weights.to(x.device, x.dtype).repeat(n)[None, :, None]
    num = torch.zeros(flat.shape[0], length, d, dtype=x.dtype, device=x.device)
    num.index_add_(1, frames.reshape(-1), flat * wts)
    den = torch.zeros(length, dtype=x.dtype, device=x.device)
    den.index_add_(0, frames.reshape(-1), wts[0, :, 0])
    return (num / den.clamp_min(torch.finfo(x.dtype).tiny)[None, :, None]).reshape(*lead, length, d)
