"""FRSyn: time-lagged cross-correlation between each generated sample and its speaker.

For a lag l the pairs are ``(x[t], y[t - l])`` over all valid t (``x[l:]`` with ``y[:-l]`` for
l > 0, ``x[:l]`` with ``y[-l:]`` for l < 0). Per dim the Pearson correlation of those windows is
computed from windowed sums: the sums of x, x^2, y, y^2 over the window (differences of prefix
sums) and the lagged products ``sum_t x[t] y[t-l]``. Inputs are centred per channel first (Pearson
is shift-invariant) so the sum formulas do not cancel catastrophically; all sums are float64.

Constant windows (Pearson undefined) are detected exactly, not by a variance threshold, from the
lengths of the constant prefix and suffix of every channel of the *original* values: the official
code gets NaN exactly when a window is constant, and the compatibility mode must reproduce which
lags those are.

Why one compiled kernel does everything per item: the work is ~99 lags x T x D multiply-adds per
sample, but everything derived from it (window sums, Pearson, the mean over dims) is small. An
earlier version produced the lagged products for all samples with a kernel whose inner loop ran
over the 25 dims with the (T, D) layout and then did the Pearson algebra in numpy on
(chunk, K, lags, D) float64 arrays, including full cumulative sums along a strided time axis; the
numpy part cost more than the products. Here each item is transposed once to (D, T) (time
contiguous), every lagged product is a contiguous dot product (vectorised with reassociation,
float64 accumulators), and the Pearson values are reduced over dims immediately, so the only
outputs are per (item, sample, lag) sums. No (N, K, lags, D) array is ever formed.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(fastmath={"reassoc", "contract"}, cache=True, nogil=True)
def _dot(x, y):  # pragma: no cover - compiled
    """sum_t x[t] * y[t] in float64 over two equally long contiguous 1-d arrays.

    Reassociation lets LLVM vectorise the reduction (several partial sums); the arrays must be
    slices, not ``x[offset + t]`` indexing, which keeps numba's negative-index wraparound in the
    loop and blocks vectorisation (measured: ~1 vs ~7 GMAC/s per core).
    """
    s = 0.0
    for t in range(x.shape[0]):
        s += x[t] * y[t]
    return s


@njit(cache=True, nogil=True)
def _centre_channels(a, out, csum, csq, prefix, suffix):  # pragma: no cover - compiled
    """Centre the (T, D) sequence ``a`` per channel into ``out`` (D, T) float64 and fill the prefix
    sums ``csum[d, t] = sum_{s < t} out[d, s]`` and ``csq`` (of squares), both (D, T + 1).

    The mean is a sequential float64 sum over t divided by T, as numpy's ``mean(axis=time)``.
    ``prefix``/``suffix`` (D,) receive the constant prefix and suffix run lengths of the original
    values (a[:prefix] constant, a[T-suffix:] constant; both T for a fully constant channel).
    """
    T, D = a.shape
    for d in range(D):
        m = 0.0
        for t in range(T):
            m += a[t, d]
        m /= T
        s = 0.0
        q = 0.0
        csum[d, 0] = 0.0
        csq[d, 0] = 0.0
        for t in range(T):
            v = a[t, d] - m
            out[d, t] = v
            s += v
            q += v * v
            csum[d, t + 1] = s
            csq[d, t + 1] = q
        first_change = T - 1
        for t in range(T - 1):
            if a[t + 1, d] != a[t, d]:
                first_change = t
                break
        last_change = -1
        for t in range(T - 2, -1, -1):
            if a[t + 1, d] != a[t, d]:
                last_change = t
                break
        prefix[d] = first_change + 1
        suffix[d] = T - (last_change + 1)


@njit(parallel=True, cache=True, nogil=True)
def _tlcc_kernel(P, S, max_lag, r_sum, n_def):  # pragma: no cover - compiled
    """Per item n (in parallel), sample k and lag index li (lag = li - max_lag):

    ``r_sum[n, k, li]`` = sum over dims of Pearson r of the lag's windows (0 for an undefined
    channel, i.e. a constant window, and for a zero denominator, as the vectorised formula did),
    ``n_def[n, k, li]`` = number of dims whose windows are both non-constant.

    P: (N, K, T, D), S: (N, T, D), float32 or float64 (values are used as float64).
    Per item the samples are transposed to (D, K, T) so that for one (dim, lag) the speaker window
    stays in L1 while it is dotted with the K sample windows.
    """
    N, K, T, D = P.shape
    n_lags = 2 * max_lag + 1
    for n in prange(N):
        yc = np.empty((D, T))
        cy = np.empty((D, T + 1))
        cyy = np.empty((D, T + 1))
        py = np.empty(D, dtype=np.int64)
        qy = np.empty(D, dtype=np.int64)
        _centre_channels(S[n], yc, cy, cyy, py, qy)
        xc = np.empty((D, K, T))
        cx = np.empty((K, D, T + 1))
        cxx = np.empty((K, D, T + 1))
        px = np.empty((K, D), dtype=np.int64)
        qx = np.empty((K, D), dtype=np.int64)
        for k in range(K):
            _centre_channels(P[n, k], xc[:, k], cx[k], cxx[k], px[k], qx[k])
        sxy = np.empty((K, n_lags, D))
        for d in range(D):
            for li in range(n_lags):
                lag = li - max_lag
                x_lo = lag if lag > 0 else 0
                x_hi = T + lag if lag < 0 else T
                y = yc[d, x_lo - lag : x_hi - lag]
                for k in range(K):
                    sxy[k, li, d] = _dot(xc[d, k, x_lo:x_hi], y)
        for k in range(K):
            for li in range(n_lags):
                lag = li - max_lag
                x_lo = lag if lag > 0 else 0
                x_hi = T + lag if lag < 0 else T
                y_lo = x_lo - lag
                y_hi = x_hi - lag
                nn = float(x_hi - x_lo)
                acc = 0.0
                cnt = 0
                for d in range(D):
                    x_const = x_hi <= px[k, d] or x_lo >= T - qx[k, d]
                    y_const = y_hi <= py[d] or y_lo >= T - qy[d]
                    if x_const or y_const:
                        continue
                    cnt += 1
                    sx = cx[k, d, x_hi] - cx[k, d, x_lo]
                    sxx = cxx[k, d, x_hi] - cxx[k, d, x_lo]
                    sy = cy[d, y_hi] - cy[d, y_lo]
                    syy = cyy[d, y_hi] - cyy[d, y_lo]
                    cov = nn * sxy[k, li, d] - sx * sy
                    vx = max(nn * sxx - sx * sx, 0.0)
                    vy = max(nn * syy - sy * sy, 0.0)
                    denom = np.sqrt(vx * vy)
                    if denom == 0.0:
                        continue
                    r = cov / denom
                    acc += min(max(r, -1.0), 1.0)
                r_sum[n, k, li] = acc
                n_def[n, k, li] = cnt


def _as_float(a: np.ndarray) -> np.ndarray:
    """C-contiguous float32 or float64 view/copy (the two dtypes the kernel is compiled for)."""
    a = np.asarray(a)
    dtype = a.dtype if a.dtype in (np.float32, np.float64) else np.float64
    return np.ascontiguousarray(a, dtype=dtype)


def tlcc_sums(P: np.ndarray, S: np.ndarray, max_lag: int) -> tuple[np.ndarray, np.ndarray]:
    """Per (item, sample, lag): the sum of Pearson r over dims and the number of defined dims.

    Args:
        P: (N, K, T, D) generated samples; S: (N, T, D) speakers (float32 or float64; others are
            converted to float64).
        max_lag: lags run over ``-max_lag..max_lag``; needs ``T - max_lag >= 1``.

    Returns:
        ``(r_sum, n_def)`` of shape (N, K, 2*max_lag+1): float64 sums over dims of r (an undefined
        channel -- either window constant -- contributes 0 and is not counted in ``n_def``; a
        zero variance product contributes 0 but is counted, as before) and int64 counts.
    """
    P = _as_float(P)
    S = _as_float(S)
    if S.dtype != P.dtype:
        P = P.astype(np.float64)
        S = S.astype(np.float64)
    N, K = P.shape[:2]
    n_lags = 2 * max_lag + 1
    r_sum = np.empty((N, K, n_lags))
    n_def = np.empty((N, K, n_lags), dtype=np.int64)
    _tlcc_kernel(P, S, max_lag, r_sum, n_def)
    return r_sum, n_def


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
        chunk: kept for API compatibility and unused: the compiled kernel works item by item and
            allocates only per-item (D, T) buffers, so no chunking is needed to bound memory.

    Returns:
        ``(scores, lags_idx)``: scores (N, K') float64 (K' = K, or 1 in official mode) and the
        chosen lag index into ``-max_lag..max_lag``.
    """
    del chunk
    P = np.asarray(P)
    if compat == "official":
        P = P[:, :1]
    D = P.shape[-1]
    r_sum, n_def = tlcc_sums(P, S, max_lag)
    if compat == "official":
        any_nan = n_def < D  # (N,K',L)
        mean_r = r_sum / D
        first_nan = np.argmax(any_nan, axis=-1)
        best = np.where(any_nan.any(axis=-1), first_nan, np.argmax(mean_r, axis=-1))
        scores = np.abs(best - max_lag).astype(np.float64)
        return scores, best
    mean_r = np.where(n_def > 0, r_sum / np.maximum(n_def, 1), -np.inf)
    best = np.argmax(mean_r, axis=-1)
    scores = np.abs(best - max_lag).astype(np.float64)
    no_lag = (n_def == 0).all(axis=-1)
    scores[no_lag] = np.nan
    return scores, best
