"""FRSyn: time-lagged cross-correlation between each generated sample and its speaker.

For a lag l the pairs are ``(x[t], y[t - l])`` over all valid t (``x[l:]`` with ``y[:-l]`` for
l > 0, ``x[:l]`` with ``y[-l:]`` for l < 0). Per dim the Pearson correlation of those windows is
computed from windowed sums: the sums of x, x^2 (suffix or prefix sums), of y, y^2, and the lagged
products ``sum_t x[t] y[t-l]``, which a compiled kernel produces for all 99 lags in one pass over
the data. Inputs are centred per channel first (Pearson is shift-invariant) so the sum formulas do
not cancel catastrophically.

Constant windows (Pearson undefined) are detected exactly, not by a variance threshold, from the
lengths of the constant prefix and suffix of every channel: the official code gets NaN exactly when
a window is constant, and the compatibility mode must reproduce which lags those are.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, fastmath=False, cache=True, nogil=True)
def _lagged_products(P, S, max_lag, out):  # pragma: no cover - compiled
    """out[n, k, li, d] = sum_t P[n, k, t, d] * S[n, t - l, d] for l = li - max_lag (valid t)."""
    N, K, T, D = P.shape
    n_lags = 2 * max_lag + 1
    for job in prange(N * K):
        n = job // K
        k = job % K
        x = P[n, k]
        y = S[n]
        for li in range(n_lags):
            lag = li - max_lag
            t_lo = lag if lag > 0 else 0
            t_hi = T + lag if lag < 0 else T
            acc = out[n, k, li]
            for d in range(D):
                acc[d] = 0.0
            for t in range(t_lo, t_hi):
                for d in range(D):
                    acc[d] += x[t, d] * y[t - lag, d]


def _constant_runs(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lengths of the constant prefix and constant suffix along axis -2 (time) of ``a``."""
    T = a.shape[-2]
    diff_next = a[..., 1:, :] != a[..., :-1, :]  # (..., T-1, D)
    any_change = diff_next.any(axis=-2)
    first_change = np.where(any_change, np.argmax(diff_next, axis=-2), T - 1)
    last_change = np.where(any_change, T - 2 - np.argmax(diff_next[..., ::-1, :], axis=-2), -1)
    prefix = first_change + 1  # a[:prefix] constant
    suffix = T - (last_change + 1)  # a[T-suffix:] constant
    return prefix, suffix


def lagged_correlations(
    P: np.ndarray, S: np.ndarray, max_lag: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-dim Pearson r for every sample, lag and dim.

    Args:
        P: (N, K, T, D) generated samples; S: (N, T, D) speakers.
        max_lag: lags run over ``-max_lag..max_lag``.

    Returns:
        ``(r, undefined)``: r of shape (N, K, 2*max_lag+1, D) float64 (0 where undefined) and a
        boolean mask of the same shape, True where either window is constant (Pearson undefined).
    """
    N, K, T, D = P.shape
    lags = np.arange(-max_lag, max_lag + 1)
    n = (T - np.abs(lags)).astype(np.float64)  # (L,)
    Pc = np.ascontiguousarray(P - P.mean(axis=2, keepdims=True, dtype=np.float64), dtype=np.float64)
    Sc = np.ascontiguousarray(S - S.mean(axis=1, keepdims=True, dtype=np.float64), dtype=np.float64)
    sxy = np.empty((N, K, lags.size, D), dtype=np.float64)
    _lagged_products(Pc, Sc, max_lag, sxy)
    # Window sums. For lag l >= 0: x[l:], y[:T-l]; for l < 0: x[:T+l], y[-l:].
    zero = np.zeros_like(Pc[:, :, :1])
    cx = np.concatenate([zero, np.cumsum(Pc, axis=2)], axis=2)  # (N,K,T+1,D)
    cxx = np.concatenate([zero, np.cumsum(Pc * Pc, axis=2)], axis=2)
    zs = np.zeros_like(Sc[:, :1])
    cy = np.concatenate([zs, np.cumsum(Sc, axis=1)], axis=1)  # (N,T+1,D)
    cyy = np.concatenate([zs, np.cumsum(Sc * Sc, axis=1)], axis=1)
    x_lo = np.maximum(lags, 0)
    x_hi = np.where(lags < 0, T + lags, T)
    y_lo = x_lo - lags
    y_hi = x_hi - lags
    sx = cx[:, :, x_hi] - cx[:, :, x_lo]  # (N,K,L,D)
    sxx = cxx[:, :, x_hi] - cxx[:, :, x_lo]
    sy = (cy[:, y_hi] - cy[:, y_lo])[:, None]  # (N,1,L,D)
    syy = (cyy[:, y_hi] - cyy[:, y_lo])[:, None]
    nn = n[None, None, :, None]
    cov = nn * sxy - sx * sy
    vx = nn * sxx - sx * sx
    vy = nn * syy - sy * sy
    # Exact constancy of each window from constant prefix/suffix run lengths.
    px, qx = _constant_runs(P)  # (N,K,D)
    py, qy = _constant_runs(S)  # (N,D)
    # x window [x_lo, x_hi): constant iff it lies inside the constant prefix or suffix.
    xl = x_lo[None, None, :, None]
    xh = x_hi[None, None, :, None]
    x_const = (xh <= px[:, :, None, :]) | (xl >= T - qx[:, :, None, :])
    yl = y_lo[None, :, None]
    yh = y_hi[None, :, None]
    y_const = ((yh <= py[:, None, :]) | (yl >= T - qy[:, None, :]))[:, None]
    undefined = x_const | y_const
    denom = np.sqrt(np.maximum(vx, 0.0) * np.maximum(vy, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(undefined | (denom == 0), 0.0, cov / np.where(denom == 0, 1.0, denom))
    return np.clip(r, -1.0, 1.0), undefined


def frsyn_scores(
    P: np.ndarray,
    S: np.ndarray,
    *,
    max_lag: int = 49,
    compat: str = "default",
    chunk: int = 64,
) -> tuple[np.ndarray, np.ndarray]:
    """|best lag| per generated sample.

    Args:
        P: (N, K, T, D); S: (N, T, D).
        max_lag: lag window half-width (49 = 2 s at 25 fps, minus one, as in the official code).
        compat: ``"default"``: all K samples, constant channels left out of the per-lag mean
            (nan-mean); a lag with no defined channel is skipped; a sample with no defined lag gets
            NaN (reported as undefined by the caller). ``"official"``: only sample 0 of each item,
            and the NaN quirk: if any channel of a lag is undefined the lag's mean is NaN and
            ``np.argmax`` returns the first NaN index, i.e. the first such lag wins.
        chunk: items per batch (bounds the float64 temporaries to ~chunk*K*T*D*8*4 bytes).

    Returns:
        ``(scores, lags_idx)``: scores (N, K') float64 (K' = K, or 1 in official mode) and the
        chosen lag index into ``-max_lag..max_lag``.
    """
    if compat == "official":
        P = P[:, :1]
    N = P.shape[0]
    if N > chunk:
        parts = [frsyn_scores(P[a : a + chunk], S[a : a + chunk], max_lag=max_lag, compat=compat,
                              chunk=chunk) for a in range(0, N, chunk)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    r, undefined = lagged_correlations(P, S, max_lag)
    D = r.shape[-1]
    if compat == "official":
        any_nan = undefined.any(axis=-1)  # (N,K',L)
        mean_r = r.mean(axis=-1)
        first_nan = np.argmax(any_nan, axis=-1)
        best = np.where(any_nan.any(axis=-1), first_nan, np.argmax(mean_r, axis=-1))
        scores = np.abs(best - max_lag).astype(np.float64)
        return scores, best
    n_def = D - undefined.sum(axis=-1)  # (N,K,L)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_r = np.where(n_def > 0, r.sum(axis=-1) / np.maximum(n_def, 1), -np.inf)
    best = np.argmax(mean_r, axis=-1)
    scores = np.abs(best - max_lag).astype(np.float64)
    no_lag = (n_def == 0).all(axis=-1)
    scores[no_lag] = np.nan
    return scores, best
