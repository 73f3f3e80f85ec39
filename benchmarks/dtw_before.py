"""The DTW kernel as it was before issue 32 (commit 0bfc367), kept to time it in the same run.

``benchmarks/bench_metrics.py`` times this kernel on a subset of rows next to the current
:mod:`reactcli.kernels.dtw`, prints the ratio and checks that the values are equal. It is the
reactcli kernel of that commit, unchanged except for its imports and this docstring: 8 fp32 lanes
(two AVX2 vectors), candidates in the lanes, every local cost computed directly, and a recursion
loop that indexes ``i - LANES`` (numba wraps possibly negative indices, so LLVM left that loop
scalar). Not used by reactcli itself.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from numba import get_num_threads, njit, prange, set_num_threads

from reactcli.errors import InputError
from reactcli.kernels.dtw import _as_f32_series, _group_bounds

#: SIMD width in float32 lanes for one work unit (two AVX2 vectors). A constant so numba unrolls.
LANES = 8
#: DP rows whose local costs are computed together (each candidate column is loaded once per strip).
STRIP = 4
#: Candidate columns per cache tile (TILE * LANES floats per cost/DP row of a tile).
TILE = 64


@njit(parallel=True, fastmath=False, cache=True, nogil=True)
def _dtw_lane_kernel(X, Y, unit_x, unit_y, bounds, out):  # pragma: no cover - compiled
    """For each unit u: DTW of X[unit_x[u]] against the LANES series Y[unit_y[u, :]].

    X: (Mx, T1, D) float32; Y: (My, T2, D) float32; unit_y entries < 0 are padding (their lane
    repeats the unit's first series and the caller ignores its result). bounds: (G+1,) int64
    group boundaries over D. out: (U, G, LANES) float64 receives sqrt of the accumulated cost.

    The DP runs in strips of STRIP rows, and each strip column tile by column tile (TILE columns
    x LANES lanes): first the local costs of the strip's rows in the tile, then the recursion of
    those rows in the tile. Everything a tile touches (its candidate values, cost rows and DP rows)
    stays in L1/L2 instead of streaming whole 750-column rows through L2 once per dim quad; each
    loaded candidate value is used for all STRIP rows. Per cell the arithmetic (and its order) is
    exactly that of the plain recursion, so results are bit-identical to a row-by-row kernel.
    """
    n_units = unit_x.shape[0]
    T1 = X.shape[1]
    T2 = Y.shape[1]
    D = X.shape[2]
    G = bounds.shape[0] - 1
    W = T2 * LANES
    WT = TILE * LANES
    inf = np.float32(np.inf)
    for u in prange(n_units):
        x = X[unit_x[u]]
        # Candidate block with lanes innermost: Yf[d, s * LANES + lane].
        Yf = np.empty((D, W), dtype=np.float32)
        first_valid = unit_y[u, 0]
        for lane in range(LANES):
            j = unit_y[u, lane]
            if j < 0:
                j = first_valid
            for s in range(T2):
                for d in range(D):
                    Yf[d, s * LANES + lane] = Y[j, s, d]
        # Dr[g, r]: DP row t0 - 1 + r of the current strip (r = 0 is the previous strip's last
        # row), with one leading column (s = -1); row -1 is inf except D[-1, -1] = 0.
        Dr = np.full((G, STRIP + 1, W + LANES), inf, dtype=np.float32)
        for g in range(G):
            for lane in range(LANES):
                Dr[g, 0, lane] = 0.0
        C = np.empty((G, STRIP, WT), dtype=np.float32)
        for t0 in range(0, T1, STRIP):
            h = min(STRIP, T1 - t0)
            for g in range(G):
                for r in range(1, h + 1):
                    for lane in range(LANES):
                        Dr[g, r, lane] = inf
            for wt in range(0, W, WT):
                n = min(W, wt + WT) - wt
                # Local costs C[g, r, w] = sum_d (x[t0+r, d] - Yf[d, wt+w])^2, dims four at a
                # time ((e0^2 + e1^2) + (e2^2 + e3^2) added to the running sum), then singles.
                for g in range(G):
                    lo = bounds[g]
                    hi = bounds[g + 1]
                    for r in range(h):
                        for w in range(n):
                            C[g, r, w] = 0.0
                    d = lo
                    while d + 4 <= hi:
                        y0 = Yf[d, wt:wt + n]
                        y1 = Yf[d + 1, wt:wt + n]
                        y2 = Yf[d + 2, wt:wt + n]
                        y3 = Yf[d + 3, wt:wt + n]
                        if h == 4:
                            a0 = x[t0, d]; a1 = x[t0, d + 1]; a2 = x[t0, d + 2]; a3 = x[t0, d + 3]
                            b0 = x[t0 + 1, d]; b1 = x[t0 + 1, d + 1]; b2 = x[t0 + 1, d + 2]; b3 = x[t0 + 1, d + 3]
                            c0 = x[t0 + 2, d]; c1 = x[t0 + 2, d + 1]; c2 = x[t0 + 2, d + 2]; c3 = x[t0 + 2, d + 3]
                            f0 = x[t0 + 3, d]; f1 = x[t0 + 3, d + 1]; f2 = x[t0 + 3, d + 2]; f3 = x[t0 + 3, d + 3]
                            r0 = C[g, 0]
                            r1 = C[g, 1]
                            r2 = C[g, 2]
                            r3 = C[g, 3]
                            for w in range(n):
                                v0 = y0[w]
                                v1 = y1[w]
                                v2 = y2[w]
                                v3 = y3[w]
                                e0 = a0 - v0; e1 = a1 - v1; e2 = a2 - v2; e3 = a3 - v3
                                r0[w] += (e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)
                                e0 = b0 - v0; e1 = b1 - v1; e2 = b2 - v2; e3 = b3 - v3
                                r1[w] += (e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)
                                e0 = c0 - v0; e1 = c1 - v1; e2 = c2 - v2; e3 = c3 - v3
                                r2[w] += (e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)
                                e0 = f0 - v0; e1 = f1 - v1; e2 = f2 - v2; e3 = f3 - v3
                                r3[w] += (e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)
                        else:
                            for r in range(h):
                                a0 = x[t0 + r, d]; a1 = x[t0 + r, d + 1]
                                a2 = x[t0 + r, d + 2]; a3 = x[t0 + r, d + 3]
                                rr = C[g, r]
                                for w in range(n):
                                    e0 = a0 - y0[w]; e1 = a1 - y1[w]; e2 = a2 - y2[w]; e3 = a3 - y3[w]
                                    rr[w] += (e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)
                        d += 4
                    while d < hi:
                        y0 = Yf[d, wt:wt + n]
                        for r in range(h):
                            a0 = x[t0 + r, d]
                            rr = C[g, r]
                            for w in range(n):
                                e0 = a0 - y0[w]
                                rr[w] += e0 * e0
                        d += 1
                # The recursion for the strip's rows inside this tile. Along the flattened
                # (s, lane) axis the only serial dependency is on the element LANES back (same
                # lane, previous column), so the loop vectorises; the tile's left neighbour
                # column was finished with the previous tile.
                for g in range(G):
                    if h == 4:
                        # All four rows in one pass: row r + 1 at column i needs row r at i and
                        # i - LANES, both already done, so the four serial chains overlap instead
                        # of each waiting on its own load-min-add latency in turn.
                        q0 = Dr[g, 0]
                        q1 = Dr[g, 1]
                        q2 = Dr[g, 2]
                        q3 = Dr[g, 3]
                        q4 = Dr[g, 4]
                        k0 = C[g, 0]
                        k1 = C[g, 1]
                        k2 = C[g, 2]
                        k3 = C[g, 3]
                        for i in range(wt + LANES, wt + n + LANES):
                            o = i - LANES - wt
                            m = min(q0[i], q0[i - LANES])
                            m = min(m, q1[i - LANES])
                            q1[i] = k0[o] + m
                            m = min(q1[i], q1[i - LANES])
                            m = min(m, q2[i - LANES])
                            q2[i] = k1[o] + m
                            m = min(q2[i], q2[i - LANES])
                            m = min(m, q3[i - LANES])
                            q3[i] = k2[o] + m
                            m = min(q3[i], q3[i - LANES])
                            m = min(m, q4[i - LANES])
                            q4[i] = k3[o] + m
                    else:
                        for r in range(h):
                            pp = Dr[g, r]
                            cp = Dr[g, r + 1]
                            cc = C[g, r]
                            for i in range(wt + LANES, wt + n + LANES):
                                m = min(pp[i], pp[i - LANES])
                                m = min(m, cp[i - LANES])
                                cp[i] = cc[i - LANES - wt] + m
            for g in range(G):
                for i in range(W + LANES):
                    Dr[g, 0, i] = Dr[g, h, i]
        for g in range(G):
            for lane in range(LANES):
                out[u, g, lane] = np.sqrt(np.float64(Dr[g, 0, W + lane]))


def _run_kernel(X, Y, unit_x, unit_y, bounds, num_threads: int | None) -> np.ndarray:
    out = np.empty((unit_x.shape[0], bounds.shape[0] - 1, LANES), dtype=np.float64)
    if unit_x.shape[0] == 0:
        return out
    old = get_num_threads()
    if num_threads is not None:
        set_num_threads(max(1, min(int(num_threads), os.cpu_count() or 1)))
    try:
        _dtw_lane_kernel(X, Y, unit_x, unit_y, bounds, out)
    finally:
        set_num_threads(old)
    return out


def dtw_one_to_many(
    X: np.ndarray,
    Y: np.ndarray,
    candidates: np.ndarray,
    *,
    groups: Sequence[tuple[int, int]] | None = None,
    num_threads: int | None = None,
) -> np.ndarray:
    """DTW of every query ``X[m]`` against each of its candidates ``Y[candidates[m, c]]``.

    Args:
        X: (M, T1, D) queries.
        Y: (My, T2, D) candidate series.
        candidates: (M, C) int indices into ``Y``; entries < 0 mean "no candidate" (result NaN).
        groups: contiguous ``(lo, hi)`` feature-dim ranges, one DTW per group (default: one group
            over all dims).
        num_threads: numba threads (default: numba's current setting).

    Returns:
        (M, C, G) float64 DTW values (sqrt of the accumulated squared-Euclidean cost).
    """
    X = _as_f32_series(X, "X")
    Y = _as_f32_series(Y, "Y")
    cand = np.asarray(candidates, dtype=np.int64)
    if cand.ndim != 2 or cand.shape[0] != X.shape[0]:
        raise InputError(f"candidates: expected shape ({X.shape[0]}, C), got {cand.shape}")
    if X.shape[2] != Y.shape[2]:
        raise InputError(f"DTW: feature dims differ (X has {X.shape[2]}, Y has {Y.shape[2]})")
    if cand.size and cand.max() >= Y.shape[0]:
        raise InputError(f"candidates: index {cand.max()} out of range for {Y.shape[0]} series")
    bounds = _group_bounds(groups, X.shape[2])
    M, C = cand.shape
    n_blocks = -(-C // LANES) if C else 0
    padded = np.full((M, n_blocks * LANES), -1, dtype=np.int64)
    padded[:, :C] = cand
    # Compact each row's valid candidates to the front so padding sits at the end of a block.
    order = np.argsort(padded < 0, axis=1, kind="stable")
    padded = np.take_along_axis(padded, order, axis=1)
    blocks = padded.reshape(M, n_blocks, LANES)
    # Only blocks with at least one real candidate become work units.
    valid_block = blocks[:, :, 0] >= 0
    mi, bi = np.nonzero(valid_block)
    unit_x = mi.astype(np.int64)
    unit_y = np.ascontiguousarray(blocks[mi, bi])
    res = _run_kernel(X, Y, unit_x, unit_y, bounds, num_threads)  # (U, G, LANES)
    out = np.full((M, n_blocks * LANES, bounds.shape[0] - 1), np.nan)
    lane_idx = (bi[:, None] * LANES + np.arange(LANES)[None, :])
    out[mi[:, None], lane_idx] = np.transpose(res, (0, 2, 1))
    out[padded < 0] = np.nan
    # Undo the compaction so results line up with the caller's candidate columns.
    unsorted = np.empty_like(out)
    np.put_along_axis(unsorted, order[:, :, None], out, axis=1)
    return unsorted[:, :C]
