"""Layers shared by the reaction generators: positional encodings and the alignment bias.

Everything here is a pure function of integer positions, so a window of an online generator can
ask for the encoding / bias of *absolute* frame indices and get exactly what a whole-clip pass
would have used for the same frames. That property is what lets a generator encode the speaker
once per clip and slice it per window (see :mod:`reactcli.models.reactface`).
"""

from __future__ import annotations

import math

import torch

__all__ = ["sinusoidal_encoding", "periodic_encoding", "alignment_bias"]


def sinusoidal_encoding(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer sinusoidal encoding (ReactFace Eq. 4) of arbitrary positions.

    ``P[t, 2i] = sin(t / 10000^(2i/d))``, ``P[t, 2i+1] = cos(t / 10000^(2i/d))``.

    Args:
        positions: ``(L,)`` integer or float positions (absolute frame indices).
        dim: even embedding size ``d``.

    Returns:
        ``(L, dim)`` float32 tensor on ``positions.device``.
    """
    if dim % 2:
        raise ValueError(f"sinusoidal_encoding: dim must be even, got {dim}")
    pos = positions.to(torch.float32).reshape(-1, 1)
    i2 = torch.arange(0, dim, 2, device=positions.device, dtype=torch.float32)
    freq = torch.exp(-math.log(10000.0) * i2 / dim)  # 10000^(-2i/d)
    angle = pos * freq
    out = torch.empty(pos.shape[0], dim, device=positions.device, dtype=torch.float32)
    out[:, 0::2] = torch.sin(angle)
    out[:, 1::2] = torch.cos(angle)
    return out


def periodic_encoding(positions: torch.Tensor, dim: int, period: int) -> torch.Tensor:
    """Periodic positional encoding: the sinusoidal code of ``position mod period``.

    Used for the past listener frames, whose *phase* within a group of ``period`` frames is what
    matters to the alignment bias (which treats ``period`` successive frames as one step); an
    absolute code would also make the encoding of a frame depend on how long the clip has run.
    """
    if period < 1:
        raise ValueError(f"periodic_encoding: period must be >= 1, got {period}")
    return sinusoidal_encoding(torch.remainder(positions.to(torch.long), period), dim)


def alignment_bias(
    query_frames: torch.Tensor,
    key_tokens: torch.Tensor,
    period: int,
    tokens_per_frame: int = 1,
) -> torch.Tensor:
    """Additive attention bias of ReactFace Eq. 11 (ALiBi-like, grouped by ``period``).

    Query ``i`` is a video frame (absolute index), key ``j`` a token at ``tokens_per_frame``
    tokens per frame (1 for visual frames, 2 for 50 Hz audio). Written 0-based, the last token
    of frame ``i`` is ``k*i + k - 1``, so

        ``B[i, j] = -floor((k*i + k - 1 - j) / (k*p))``  if ``j <= k*i + k - 1``, else ``-inf``.

    With ``k = 1`` this is ``B^VIM``; with ``k = 2`` it is ``B^MIM`` (the paper's 1-based
    ``j <= k*i`` is the same condition). The future is ``-inf``: a frame never sees speaker
    behaviour after itself. The paper adds ``B`` *before* the ``1/sqrt(d_k)`` scaling; callers
    that use ``scaled_dot_product_attention`` divide it by ``sqrt(d_k)`` themselves.

    Args:
        query_frames: ``(Lq,)`` absolute frame indices of the queries.
        key_tokens: ``(Lk,)`` absolute token indices of the keys.
        period: ``p``, the number of successive frames treated as one step.
        tokens_per_frame: ``k``.

    Returns:
        ``(Lq, Lk)`` float32 tensor with finite non-positive values and ``-inf``.
    """
    if period < 1 or tokens_per_frame < 1:
        raise ValueError("alignment_bias: period and tokens_per_frame must be >= 1")
    k = tokens_per_frame
    last = query_frames.to(torch.long).reshape(-1, 1) * k + (k - 1)
    dist = last - key_tokens.to(torch.long).reshape(1, -1)
    bias = -torch.div(dist, k * period, rounding_mode="floor").to(torch.float32)
    return bias.masked_fill(dist < 0, float("-inf"))
