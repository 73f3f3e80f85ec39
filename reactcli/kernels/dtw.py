"""Exact, unconstrained DTW over many pairs at once (numba on CPU, an optional torch path for GPU).

Definition (what ``tslearn.metrics.dtw`` returns and what the REACT evaluation uses): local cost
``||x_t - y_s||^2`` (squared Euclidean over the feature dims), the classic recursion
``D[t, s] = c[t, s] + min(D[t-1, s], D[t, s-1], D[t-1, s-1])`` with no window, and the result is
``sqrt(D[T1-1, T2-1])``.

Why the kernel is shaped the way it is. FRdist needs, for every generated sample ``P[k, i]``, the
DTW to each of its ~20 appropriate real reactions, so each real reaction meets ~200 samples. The
DP has a serial dependency along both time axes, so SIMD cannot run *inside* one DP; it runs
*across* pairs. One work unit is one *broadcast* series ``b`` (its frames are the DP rows) against
``lanes`` *lane* series laid out as ``Sf[d, t * lanes + lane]`` (lanes innermost, contiguous), so
every scalar operation of the recursion is one vector operation with ``b``'s value broadcast.
:func:`dtw_one_to_many` picks the orientation that pads fewer lanes: for FRdist the real reaction
is broadcast and the samples it meets fill the lanes. Feature groups (the emotion protocol's AUs /
valence-arousal / expressions) are handled in the same unit, each with its own DP.

* Lanes = the float32 width of one SIMD register (:data:`VECTOR_LANES`: 16 with AVX-512, 8 with
  AVX2), detected at import; each width is its own compiled (and cached) kernel.
* The recursion loop indexes its row views only with ``i`` and ``i + lanes``: numba wraps
  possibly negative indices (``i - lanes``), which keeps LLVM from vectorising, and a single view
  per DP row gives LLVM the exact dependency distance. (The kernel before issue 32 indexed
  ``i - LANES``; its recursion ran as scalar code.)
* The 2-dim (valence/arousal) and 8-dim (expression) costs are computed inside the recursion loop
  instead of in a separate pass over a cost row.
* Distinct-frame cost tables. A DP row's local costs depend only on the broadcast frame of that
  row. When a series has few distinct frames in a group (the real listeners' 15 AUs are 0/1, so a
  30 s clip has ~20-180 distinct AU patterns instead of 750 frames), the cost row of each distinct
  frame is computed once per unit and tile, and the recursion reads it for every row with that
  frame. Frames are compared by their exact float32 bits, so this is exact for any input; a group
  whose series has more than ``table_fraction`` x frames distinct values (continuous data, e.g. a
  model's AU probabilities) computes every row directly.
* Column tiles outside, rows inside: a unit's recursion runs tile by tile (:data:`TILE` lane-series
  frames), all rows of a tile at once, handing each row's last column to the next tile. A tile's
  lane values, cost tables and two DP rows stay in L1/L2.

Arithmetic is float32 like the official evaluation (which also feeds float32 data). Every local
cost is computed with the same float32 operations in the same order as the textbook form
(``e = x - y``, dims four at a time as ``(e0^2 + e1^2) + (e2^2 + e3^2)`` added to a running sum,
then the leftover dims one by one; ``(x - y)^2 == (y - x)^2`` exactly), with no fused
multiply-add; ``min`` is exact. Results are therefore bit-identical to a plain float32
row-by-row recursion, and to the kernel before issue 32, whatever the orientation, lane count or
table path (the tests check exact equality). The accumulated cost over at most ``T1 + T2`` cells
keeps a relative error around 1e-6 against float64, far below anything reported.

Ideas measured for issue 32 and not used on CPU (``benchmarks/bench_dtw_ideas.py``):

* Local costs as ``|x|^2 + |y|^2 - 2 x.y`` (matrix products): inside the fused loop the
  expression group got no faster on the AVX-512 machine (0.88x), the form cancels when x and y
  are close (~2e-5 relative on DTW values of near-copies in float32, 1e-7 on random pairs) and
  the values would no longer be bit-identical. :func:`dtw_torch` offers it for GPUs
  (``cost="gram"``).
* Exact early abandoning of a candidate once a lower bound on its distance exceeds the best one
  found for its sample. Replayed exactly with each sample's minimum known in advance (the most
  favourable case), a pair needs 50% of its DP rows before the DP row minimum exceeds it, but a
  16-lane unit stops only when all its lanes can, and needs 85% (61% with the later rows'
  smallest costs of every group added, which no cheap bound knows). An implementation with a
  coarse-DTW ordering and the AU table's row minima skipped 2.4% of the rows: not kept.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from numba import get_num_threads, njit, prange, set_num_threads

from reactcli.errors import InputError

#: Lane-series frames per column tile (TILE * lanes floats per cost row / DP row of a tile).
TILE = 128
#: Default cap on distinct frames (as a fraction of the series length) for the cost-table path.
TABLE_FRACTION = 0.25


def _detect_lanes() -> int:
    """float32 lanes of one SIMD register on the host CPU (what numba compiles for)."""
    try:
        import llvmlite.binding as llvm

        feats = llvm.get_host_cpu_features()
    except Exception:  # pragma: no cover - llvmlite always ships with numba
        return 8
    if feats.get("avx512f", False):
        return 16
    if feats.get("avx", False) or feats.get("avx2", False):
        return 8
    return 4


#: SIMD width in float32 lanes used by default: 16 with AVX-512, 8 with AVX2, 4 otherwise.
VECTOR_LANES = _detect_lanes()
#: Lane counts a caller may ask for (results never depend on it; only speed does).
SUPPORTED_LANES = (4, 8, 16)


@njit(cache=True, nogil=True)
def _row_costs(dst, Sf, wt, n, b, lo, hi):  # pragma: no cover - compiled
    """dst[w] = sum_{d in [lo, hi)} (Sf[d, wt + w] - b[d])^2 for w < n in float32, in the order
    dims four at a time ``acc + ((e0^2 + e1^2) + (e2^2 + e3^2))``, then single dims ``acc + e^2``
    (acc starting at 0). Two quads per pass halve the read-modify-write of ``dst``.
    """
    d = lo
    first = True
    while hi - d >= 8:
        x0, x1, x2, x3 = Sf[d, wt:wt + n], Sf[d + 1, wt:wt + n], Sf[d + 2, wt:wt + n], Sf[d + 3, wt:wt + n]
        x4, x5, x6, x7 = Sf[d + 4, wt:wt + n], Sf[d + 5, wt:wt + n], Sf[d + 6, wt:wt + n], Sf[d + 7, wt:wt + n]
        v0, v1, v2, v3 = b[d], b[d + 1], b[d + 2], b[d + 3]
        v4, v5, v6, v7 = b[d + 4], b[d + 5], b[d + 6], b[d + 7]
        if first:
            for w in range(n):
                e0, e1, e2, e3 = x0[w] - v0, x1[w] - v1, x2[w] - v2, x3[w] - v3
                e4, e5, e6, e7 = x4[w] - v4, x5[w] - v5, x6[w] - v6, x7[w] - v7
                dst[w] = (((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3))
                          + ((e4 * e4 + e5 * e5) + (e6 * e6 + e7 * e7)))
        else:
            for w in range(n):
                e0, e1, e2, e3 = x0[w] - v0, x1[w] - v1, x2[w] - v2, x3[w] - v3
                e4, e5, e6, e7 = x4[w] - v4, x5[w] - v5, x6[w] - v6, x7[w] - v7
                dst[w] = ((dst[w] + ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)))
                          + ((e4 * e4 + e5 * e5) + (e6 * e6 + e7 * e7)))
        first = False
        d += 8
    if hi - d >= 4:
        x0, x1, x2, x3 = Sf[d, wt:wt + n], Sf[d + 1, wt:wt + n], Sf[d + 2, wt:wt + n], Sf[d + 3, wt:wt + n]
        v0, v1, v2, v3 = b[d], b[d + 1], b[d + 2], b[d + 3]
        if first:
            for w in range(n):
                e0, e1, e2, e3 = x0[w] - v0, x1[w] - v1, x2[w] - v2, x3[w] - v3
                dst[w] = (e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)
        else:
            for w in range(n):
                e0, e1, e2, e3 = x0[w] - v0, x1[w] - v1, x2[w] - v2, x3[w] - v3
                dst[w] = dst[w] + ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3))
        first = False
        d += 4
    if hi - d >= 2:
        x0, x1 = Sf[d, wt:wt + n], Sf[d + 1, wt:wt + n]
        v0, v1 = b[d], b[d + 1]
        if first:
            for w in range(n):
                e0, e1 = x0[w] - v0, x1[w] - v1
                dst[w] = e0 * e0 + e1 * e1
        else:
            for w in range(n):
                e0, e1 = x0[w] - v0, x1[w] - v1
                dst[w] = (dst[w] + e0 * e0) + e1 * e1
        first = False
        d += 2
    if hi - d == 1:
        x0 = Sf[d, wt:wt + n]
        v0 = b[d]
        if first:
            for w in range(n):
                e0 = x0[w] - v0
                dst[w] = e0 * e0
        else:
            for w in range(n):
                e0 = x0[w] - v0
                dst[w] = dst[w] + e0 * e0


@njit(cache=True, nogil=True)
def _enter_row(q, left_s, L):  # pragma: no cover - compiled
    """q[0:L] = the row's value in the column left of the tile."""
    for lane in range(L):
        q[lane] = left_s[lane]


@njit(cache=True, nogil=True)
def _leave_row(q, left_s, n, L):  # pragma: no cover - compiled
    """The row's last column in the tile becomes the next tile's left column."""
    for lane in range(L):
        left_s[lane] = q[n + lane]


def _make_kernel(lanes: int):
    """The lane kernel compiled for ``lanes`` float32 lanes (a compile-time constant, so LLVM
    vectorises the recursion with the exact dependency distance)."""
    L = lanes

    @njit(parallel=True, fastmath=False, cache=True, nogil=True)
    def kernel(Bs, Ss, unit_b, unit_s, bounds, gslot, use_tab, pid, rep, npat, out):  # pragma: no cover
        """For each unit u: DTW of Bs[unit_b[u]] against the L series Ss[unit_s[u, :]].

        Bs: (Mb, TB, D) float32 broadcast series (DP rows); Ss: (Ms, TS, D) float32 lane series
        (DP columns); unit_s entries < 0 are padding (the lane repeats the unit's first series and
        the caller ignores it). bounds: (G+1,) group boundaries over D. gslot: (G,) table slot of
        each group or -1; use_tab, pid, rep, npat: the distinct-frame tables of the broadcast
        series (:func:`frame_tables`). out: (U, G, L) float64 receives sqrt of the accumulated cost.
        """
        n_units = unit_b.shape[0]
        TB = Bs.shape[1]
        TS = Ss.shape[1]
        D = Bs.shape[2]
        G = bounds.shape[0] - 1
        NT = rep.shape[1]
        Pmax = rep.shape[2]
        W = TS * L
        WT = TILE * L
        inf = np.float32(np.inf)
        for u in prange(n_units):
            j = unit_b[u]
            b = Bs[j]
            # The unit's lane series with lanes innermost: Sf[d, t * L + lane].
            ms = np.empty(L, dtype=np.int64)
            for lane in range(L):
                ms[lane] = unit_s[u, lane] if unit_s[u, lane] >= 0 else unit_s[u, 0]
            Sf = np.empty((D, W), dtype=np.float32)
            for t in range(TS):
                for d in range(D):
                    for lane in range(L):
                        Sf[d, t * L + lane] = Ss[ms[lane], t, d]
            tabs = np.empty((NT, Pmax, WT), dtype=np.float32)
            # left[g, s]: D[s, last column of the previous tile] per lane (inf before the first).
            left = np.full((G, TB, L), inf, dtype=np.float32)
            rows = np.empty((G, 2, WT + L), dtype=np.float32)
            C = np.empty(WT, dtype=np.float32)
            for wt in range(0, W, WT):
                n = min(W, wt + WT) - wt
                # Cost rows of the broadcast series' distinct frames over this tile's columns.
                for g in range(G):
                    ts = gslot[g]
                    if ts >= 0 and use_tab[j, ts]:
                        for p in range(npat[j, ts]):
                            _row_costs(tabs[ts, p], Sf, wt, n, b[rep[j, ts, p]], bounds[g], bounds[g + 1])
                for g in range(G):
                    ts = gslot[g]
                    lo = bounds[g]
                    width = bounds[g + 1] - lo
                    # Two DP rows (previous, current) over the tile's columns, with the column left
                    # of the tile in front: row -1 is inf, except D[-1, -1] = 0 on the first tile.
                    ra = rows[g, 0, :n + L]
                    rb = rows[g, 1, :n + L]
                    for i in range(n + L):
                        ra[i] = inf
                    if wt == 0:
                        for lane in range(L):
                            ra[lane] = 0.0
                    lf = left[g]
                    # In every recursion loop below, p is the previous row and q the current one,
                    # both indexed by i and i + L only (see the module docstring).
                    if ts >= 0 and use_tab[j, ts]:
                        tg = tabs[ts]
                        pj = pid[j, ts]
                        for s in range(TB):
                            p, q = (ra, rb) if s % 2 == 0 else (rb, ra)
                            _enter_row(q, lf[s], L)
                            cr = tg[pj[s], :n]
                            for i in range(n):
                                m = min(p[i + L], p[i])
                                m = min(m, q[i])
                                q[i + L] = cr[i] + m
                            _leave_row(q, lf[s], n, L)
                    elif width == 2:
                        # Valence/arousal: the cost is computed inside the recursion.
                        x0 = Sf[lo, wt:wt + n]
                        x1 = Sf[lo + 1, wt:wt + n]
                        for s in range(TB):
                            p, q = (ra, rb) if s % 2 == 0 else (rb, ra)
                            _enter_row(q, lf[s], L)
                            v0 = b[s, lo]
                            v1 = b[s, lo + 1]
                            for i in range(n):
                                e0 = x0[i] - v0
                                e1 = x1[i] - v1
                                m = min(p[i + L], p[i])
                                m = min(m, q[i])
                                q[i + L] = (e0 * e0 + e1 * e1) + m
                            _leave_row(q, lf[s], n, L)
                    elif width == 8:
                        # Expression probabilities: the cost is computed inside the recursion.
                        x0 = Sf[lo, wt:wt + n]
                        x1 = Sf[lo + 1, wt:wt + n]
                        x2 = Sf[lo + 2, wt:wt + n]
                        x3 = Sf[lo + 3, wt:wt + n]
                        x4 = Sf[lo + 4, wt:wt + n]
                        x5 = Sf[lo + 5, wt:wt + n]
                        x6 = Sf[lo + 6, wt:wt + n]
                        x7 = Sf[lo + 7, wt:wt + n]
                        for s in range(TB):
                            p, q = (ra, rb) if s % 2 == 0 else (rb, ra)
                            _enter_row(q, lf[s], L)
                            bs = b[s]
                            v0, v1, v2, v3 = bs[lo], bs[lo + 1], bs[lo + 2], bs[lo + 3]
                            v4, v5, v6, v7 = bs[lo + 4], bs[lo + 5], bs[lo + 6], bs[lo + 7]
                            for i in range(n):
                                e0, e1, e2, e3 = x0[i] - v0, x1[i] - v1, x2[i] - v2, x3[i] - v3
                                e4, e5, e6, e7 = x4[i] - v4, x5[i] - v5, x6[i] - v6, x7[i] - v7
                                c = (((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3))
                                     + ((e4 * e4 + e5 * e5) + (e6 * e6 + e7 * e7)))
                                m = min(p[i + L], p[i])
                                m = min(m, q[i])
                                q[i + L] = c + m
                            _leave_row(q, lf[s], n, L)
                    else:
                        cc = C[:n]
                        for s in range(TB):
                            p, q = (ra, rb) if s % 2 == 0 else (rb, ra)
                            _enter_row(q, lf[s], L)
                            _row_costs(cc, Sf, wt, n, b[s], lo, bounds[g + 1])
                            for i in range(n):
                                m = min(p[i + L], p[i])
                                m = min(m, q[i])
                                q[i + L] = cc[i] + m
                            _leave_row(q, lf[s], n, L)
            for g in range(G):
                for lane in range(L):
                    out[u, g, lane] = np.sqrt(np.float64(left[g, TB - 1, lane]))

    return kernel


_KERNELS: dict[int, object] = {}


def _kernel(lanes: int):
    if lanes not in SUPPORTED_LANES:
        raise InputError(f"DTW lanes must be one of {SUPPORTED_LANES}, got {lanes}")
    if lanes not in _KERNELS:
        _KERNELS[lanes] = _make_kernel(lanes)
    return _KERNELS[lanes]


@njit(parallel=True, cache=True, nogil=True)
def _distinct_frames(bits, bounds, cap, pid, rep, npat, use):  # pragma: no cover - compiled
    """Distinct frames of every series in every group, compared by their exact float32 bits.

    bits: (M, T, D) uint32 view of the series. For series m and group g: pid[m, g, t] = id of
    frame t's pattern, rep[m, g, p] = first frame with pattern p, npat[m, g] = number of patterns,
    use[m, g] = npat <= cap (otherwise the walk stops early and pid/rep are incomplete). Frames are
    sorted by a hash; equal hashes are checked against the current pattern's frame, so a hash
    collision can only split a pattern in two (harmless), never merge two different frames.
    """
    M, T, D = bits.shape
    G = bounds.shape[0] - 1
    for m in prange(M):
        keys = np.empty(T, dtype=np.uint64)
        for g in range(G):
            lo = bounds[g]
            hi = bounds[g + 1]
            for t in range(T):
                h = np.uint64(14695981039346656037)
                for d in range(lo, hi):
                    h = (h ^ np.uint64(bits[m, t, d])) * np.uint64(1099511628211)
                keys[t] = h
            order = np.argsort(keys)
            n = 0
            cur = -1
            ok = True
            for k in range(T):
                t = order[k]
                same = cur >= 0 and keys[t] == keys[cur]
                if same:
                    for d in range(lo, hi):
                        if bits[m, t, d] != bits[m, cur, d]:
                            same = False
                            break
                if not same:
                    if n >= cap:
                        ok = False
                        break
                    rep[m, g, n] = t
                    n += 1
                    cur = t
                pid[m, g, t] = n - 1
            npat[m, g] = n
            use[m, g] = ok


def frame_tables(series: np.ndarray, bounds: np.ndarray, table_fraction: float = TABLE_FRACTION):
    """The distinct-frame tables of ``series`` (M, T, D) for the kernel (see the module docstring).

    Returns (gslot, use, pid, rep, npat): ``gslot[g]`` is the table slot of group g or -1 when no
    series uses a table for it; the other arrays are indexed by slot. ``table_fraction <= 0``
    disables tables.
    """
    M, T, _ = series.shape
    G = bounds.shape[0] - 1
    cap = int(table_fraction * T)
    if cap < 1 or M == 0:
        return (np.full(G, -1, np.int64), np.zeros((M, 0), np.bool_), np.zeros((M, 0, 1), np.int32),
                np.zeros((M, 0, 1), np.int32), np.zeros((M, 0), np.int32))
    pid = np.zeros((M, G, T), np.int32)
    rep = np.zeros((M, G, cap), np.int32)
    npat = np.zeros((M, G), np.int32)
    use = np.zeros((M, G), np.bool_)
    _distinct_frames(np.ascontiguousarray(series, dtype=np.float32).view(np.uint32), bounds, cap,
                     pid, rep, npat, use)
    used = use.any(axis=0)
    gslot = np.where(used, np.cumsum(used) - 1, -1).astype(np.int64)
    pmax = max(1, int(npat[:, used][use[:, used]].max()) if used.any() else 1)
    return (gslot, np.ascontiguousarray(use[:, used]), np.ascontiguousarray(pid[:, used]),
            np.ascontiguousarray(rep[:, used, :pmax]), np.ascontiguousarray(npat[:, used]))


def _as_f32_series(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim != 3:
        raise InputError(f"{name}: expected a (M, T, D) array of series, got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float32)


def _group_bounds(groups: Sequence[tuple[int, int]] | None, D: int) -> np.ndarray:
    if groups is None:
        return np.array([0, D], dtype=np.int64)
    bounds = [groups[0][0]]
    for lo, hi in groups:
        if lo != bounds[-1] or hi <= lo:
            raise InputError(f"DTW groups must be contiguous, increasing (lo, hi) ranges; got {groups}")
        bounds.append(hi)
    if bounds[0] != 0 or bounds[-1] != D:
        raise InputError(f"DTW groups {groups} must cover feature dims 0..{D}")
    return np.asarray(bounds, dtype=np.int64)


class _Units:
    """Pairs (query m, candidate column c) packed into work units of ``lanes`` lane series.

    ``broadcast_y``: the candidate series is broadcast and the queries fill the lanes (FRdist:
    each real reaction meets ~200 samples); otherwise the query is broadcast and its candidates
    fill the lanes. ``unit_b`` (U,), ``unit_s`` (U, lanes) padded with -1, and for each pair
    (``pair_m``, ``pair_c``) its ``pair_unit`` and ``pair_lane``.
    """

    def __init__(self, cand: np.ndarray, lanes: int, orientation: str = "auto") -> None:
        mi, ci = np.nonzero(cand >= 0)
        yj = cand[mi, ci]
        if orientation == "auto":
            # The orientation that pads fewer lanes (ties: broadcast the candidates).
            units_y = int(np.sum(-(-np.bincount(yj) // lanes)))
            units_x = int(np.sum(-(-np.bincount(mi) // lanes)))
            orientation = "y" if units_y <= units_x else "x"
        self.broadcast_y = orientation == "y"
        key, other = (yj, mi) if self.broadcast_y else (mi, yj)
        order = np.argsort(key, kind="stable")
        key_s = key[order]
        starts = np.flatnonzero(np.r_[True, key_s[1:] != key_s[:-1]]) if key_s.size else np.zeros(0, np.int64)
        counts = np.diff(np.r_[starts, key_s.size])
        pos = np.arange(key_s.size) - np.repeat(starts, counts)
        first_unit = np.r_[0, np.cumsum(-(-counts // lanes))[:-1]] if counts.size else np.zeros(0, np.int64)
        unit = np.repeat(first_unit, counts) + pos // lanes
        n_units = int(unit[-1]) + 1 if unit.size else 0
        self.unit_b = np.zeros(n_units, dtype=np.int64)
        self.unit_b[unit] = key_s
        self.unit_s = np.full((n_units, lanes), -1, dtype=np.int64)
        self.unit_s[unit, pos % lanes] = other[order]
        self.pair_m = mi[order]
        self.pair_c = ci[order]
        self.pair_unit = unit
        self.pair_lane = pos % lanes


def dtw_one_to_many(
    X: np.ndarray,
    Y: np.ndarray,
    candidates: np.ndarray,
    *,
    groups: Sequence[tuple[int, int]] | None = None,
    num_threads: int | None = None,
    lanes: int | None = None,
    table_fraction: float = TABLE_FRACTION,
    orientation: str = "auto",
) -> np.ndarray:
    """DTW of every query ``X[m]`` against each of its candidates ``Y[candidates[m, c]]``.

    Args:
        X: (M, T1, D) queries.
        Y: (My, T2, D) candidate series.
        candidates: (M, C) int indices into ``Y``; entries < 0 mean "no candidate" (result NaN).
        groups: contiguous ``(lo, hi)`` feature-dim ranges, one DTW per group (default: one group
            over all dims).
        num_threads: numba threads (default: numba's current setting).
        lanes: SIMD lanes per work unit (default :data:`VECTOR_LANES`, one of
            :data:`SUPPORTED_LANES`).
        table_fraction: a (series, group) with at most this fraction of distinct frames reads its
            local costs from a table of its distinct frames; 0 disables tables.
        orientation: ``"auto"`` (fewest padded lanes), ``"y"`` (candidates broadcast, queries in
            the lanes) or ``"x"`` (queries broadcast).

    ``lanes``, ``table_fraction`` and ``orientation`` change the speed, never the values (see the
    module docstring).

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
    if orientation not in ("auto", "x", "y"):
        raise InputError(f"DTW orientation must be 'auto', 'x' or 'y', got {orientation!r}")
    bounds = _group_bounds(groups, X.shape[2])
    G = bounds.shape[0] - 1
    lanes = VECTOR_LANES if lanes is None else int(lanes)
    kernel = _kernel(lanes)
    out = np.full(cand.shape + (G,), np.nan)
    units = _Units(cand, lanes, orientation)
    if units.unit_b.size == 0:
        return out
    B, S = (Y, X) if units.broadcast_y else (X, Y)
    tables = frame_tables(B, bounds, table_fraction)
    res = np.empty((units.unit_b.size, G, lanes), dtype=np.float64)
    old = get_num_threads()
    if num_threads is not None:
        set_num_threads(max(1, min(int(num_threads), os.cpu_count() or 1)))
    try:
        kernel(B, S, units.unit_b, units.unit_s, bounds, *tables, res)
    finally:
        set_num_threads(old)
    out[units.pair_m, units.pair_c] = res[units.pair_unit, :, units.pair_lane]
    return out


def dtw_pairs(
    X: np.ndarray,
    Y: np.ndarray,
    *,
    groups: Sequence[tuple[int, int]] | None = None,
    num_threads: int | None = None,
) -> np.ndarray:
    """DTW of ``X[m]`` against ``Y[m]`` for every m; returns (M, G) (or (M,) with one group)."""
    X = _as_f32_series(X, "X")
    Y = _as_f32_series(Y, "Y")
    if X.shape[0] != Y.shape[0]:
        raise InputError(f"dtw_pairs: X has {X.shape[0]} series but Y has {Y.shape[0]}")
    cand = np.arange(X.shape[0], dtype=np.int64)[:, None]
    res = dtw_one_to_many(X, Y, cand, groups=groups, num_threads=num_threads)[:, 0, :]
    return res[:, 0] if groups is None else res


def dtw_torch(x, y, *, groups: Sequence[tuple[int, int]] | None = None, cost: str = "direct"):
    """Batched DTW in torch by anti-diagonal wavefront (for GPUs; same definition as the kernel).

    Args:
        x: (B, T1, D) tensor; y: (B, T2, D) tensor (pairs x[b], y[b]).
        groups: as in :func:`dtw_one_to_many`.
        cost: ``"direct"`` (default): local costs as ``sum_d (x_d - y_d)^2``, materialising a
            (B, T1, T2, dims) difference tensor per group. ``"gram"``: as
            ``|x|^2 + |y|^2 - 2 x.y`` with one batched matrix product per group (what a GPU does
            fastest), clamped at 0. The gram form cancels when x and y are close: per cell its
            absolute error is a few units of round-off times ``|x|^2 + |y|^2``. On emotion data
            in float32 the DTW values differ from the direct form by ~1e-7 relative for unrelated
            series and ~2e-5 for near-copies (1% noise); ``tests/metrics/test_dtw_paths.py``
            holds them to 1e-5 and 1e-3, and float64 to 1e-12.

    Returns:
        (B, G) tensor of DTW values.

    Cells on one anti-diagonal ``t + s = q`` depend only on diagonals ``q-1`` and ``q-2``, so each
    diagonal is one vectorised step over (batch, group, cells); ``T1 + T2 - 1`` steps in total.
    The full local-cost tensor (B, G, T1, T2) is materialised, so batch size is bounded by memory.
    No GPU was available when this path was last changed (issue 32): it is verified on CPU only.
    """
    import torch

    if cost not in ("direct", "gram"):
        raise InputError(f"dtw_torch cost must be 'direct' or 'gram', got {cost!r}")
    B, T1, D = x.shape
    T2 = y.shape[1]
    bounds = _group_bounds(groups, D).tolist()
    costs = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        xg, yg = x[:, :, lo:hi], y[:, :, lo:hi]
        if cost == "direct":
            # Exact squared differences (torch.cdist may use the matmul expansion, which is not).
            costs.append(((xg[:, :, None, :] - yg[:, None, :, :]) ** 2).sum(-1))
        else:
            xx = (xg * xg).sum(-1)[:, :, None]
            yy = (yg * yg).sum(-1)[:, None, :]
            costs.append(torch.baddbmm(xx + yy, xg, yg.transpose(1, 2), alpha=-2.0).clamp_(min=0.0))
    C = torch.stack(costs, dim=1)  # (B, G, T1, T2)
    G = C.shape[1]
    inf = torch.tensor(float("inf"), dtype=C.dtype, device=C.device)
    # Diagonal q holds cells t in [max(0, q-T2+1), min(q, T1-1)]; store indexed by t (length T1).
    prev2 = torch.full((B, G, T1), float("inf"), dtype=C.dtype, device=C.device)
    prev1 = torch.full((B, G, T1), float("inf"), dtype=C.dtype, device=C.device)
    t_all = torch.arange(T1, device=C.device)
    for q in range(T1 + T2 - 1):
        s_all = q - t_all
        valid = (s_all >= 0) & (s_all < T2)
        s_c = s_all.clamp(0, T2 - 1)
        c = C[:, :, t_all, s_c]  # (B, G, T1)
        if q == 0:
            best = torch.zeros_like(c)
        else:
            # up: (t-1, s) on diagonal q-1 at index t-1; left: (t, s-1) on q-1 at index t;
            # diag: (t-1, s-1) on q-2 at index t-1.
            up = torch.cat([inf.expand(B, G, 1), prev1[:, :, :-1]], dim=2)
            left = prev1
            diag = torch.cat([inf.expand(B, G, 1), prev2[:, :, :-1]], dim=2)
            best = torch.minimum(torch.minimum(up, left), diag)
        cur = torch.where(valid, c + best, inf)
        prev2, prev1 = prev1, cur
    return prev1[:, :, T1 - 1].sqrt()
