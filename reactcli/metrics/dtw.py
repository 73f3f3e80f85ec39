"""Exact, unconstrained DTW over many pairs at once (numba on CPU, an optional torch path for GPU).

Definition (what ``tslearn.metrics.dtw`` returns and what the REACT evaluation uses): local cost
``||x_t - y_s||^2`` (squared Euclidean over the feature dims), the classic recursion
``D[t, s] = c[t, s] + min(D[t-1, s], D[t, s-1], D[t-1, s-1])`` with no window, and the result is
``sqrt(D[T1-1, T2-1])``.

Why the kernel is shaped the way it is. FRdist needs, for every generated sample ``P[k, i]``, the
DTW to each of its ~20 appropriate real reactions, so each real reaction meets ~200 samples. The
DP has a serial dependency along both time axes, so SIMD cannot run *inside* one DP; it runs
*across* pairs. One work unit is one *broadcast* series ``b`` (its frames are the DP rows) against
``lanes`` *lane* series laid out as ``Sf[d, t * lanes + lane]`` (lanes innermost and contiguous),
so every scalar operation of the recursion becomes one vector operation, with the value of ``b``
broadcast. For FRdist the broadcast series is the real reaction and the lanes are the samples it
meets (``dtw_one_to_many`` picks whichever orientation pads fewer lanes). Feature groups (the
emotion protocol's AUs / valence-arousal / expressions) are handled in the same pass, each with its
own DP.

* Lanes = the float32 width of one SIMD register on this CPU (:data:`VECTOR_LANES`: 16 with
  AVX-512, 8 with AVX2), detected at import; each width is its own compiled (and cached) kernel.
* Every array index in the recursion loop is the loop counter or counter + lanes: numba wraps
  negative indices, and a possibly negative index (``i - lanes``) stops LLVM from vectorising.
  (The previous kernel indexed ``i - LANES`` and ran its recursion in scalar code.)
* Distinct-frame cost tables. A DP row's local costs depend only on the broadcast frame of that
  row. When a series has few distinct frames in a group (the real listeners' 15 AUs are 0/1, so a
  30 s clip has ~20-150 distinct AU patterns instead of 750 frames), the cost row of each distinct
  frame is computed once per unit and the DP reads it for every row with that frame. Frames are
  compared by their exact float32 bits, so this is exact for any input; a group whose series has
  more than ``table_fraction`` x rows distinct frames (continuous data) falls back to computing
  every row directly.
* Rows are processed in strips of :data:`STRIP` and columns in tiles of :data:`TILE` frames, so a
  tile's lane values, cost rows and DP rows stay in L1/L2.

Arithmetic is float32 like the official evaluation (which also feeds float32 data). Every local
cost is computed with the same float32 operations in the same order as the textbook form
(``e = x - y``, dims four at a time as ``(e0^2 + e1^2) + (e2^2 + e3^2)`` added to a running sum,
then the leftover dims one by one), with no fused multiply-add; ``min`` is exact, so results are
bit-identical to a plain float32 row-by-row recursion whichever orientation, lane width or table
path is used (the tests check exact equality). The accumulated cost over at most ``T1 + T2``
cells keeps a relative error around 1e-6 against float64, far below anything reported.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from numba import get_num_threads, njit, prange, set_num_threads

from reactcli.errors import InputError

#: DP rows processed together (each tile of lane values is loaded once per strip).
STRIP = 4
#: Lane-series frames per cache tile (TILE * lanes floats per cost/DP row of a tile).
TILE = 256
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
    """dst[w] = sum_{d in [lo, hi)} (Sf[d, wt + w] - b[d])^2 for w < n, float32, in the order
    dims four at a time ``acc + ((e0^2 + e1^2) + (e2^2 + e3^2))`` then single dims ``acc + e^2``
    (acc starting at 0). Quads are taken two per pass to halve the read-modify-write of ``dst``.
    """
    d = lo
    first = True
    while hi - d >= 8:
        x0 = Sf[d, wt:wt + n]; x1 = Sf[d + 1, wt:wt + n]; x2 = Sf[d + 2, wt:wt + n]
        x3 = Sf[d + 3, wt:wt + n]; x4 = Sf[d + 4, wt:wt + n]; x5 = Sf[d + 5, wt:wt + n]
        x6 = Sf[d + 6, wt:wt + n]; x7 = Sf[d + 7, wt:wt + n]
        v0 = b[d]; v1 = b[d + 1]; v2 = b[d + 2]; v3 = b[d + 3]
        v4 = b[d + 4]; v5 = b[d + 5]; v6 = b[d + 6]; v7 = b[d + 7]
        if first:
            for w in range(n):
                e0 = x0[w] - v0; e1 = x1[w] - v1; e2 = x2[w] - v2; e3 = x3[w] - v3
                e4 = x4[w] - v4; e5 = x5[w] - v5; e6 = x6[w] - v6; e7 = x7[w] - v7
                dst[w] = ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)) + ((e4 * e4 + e5 * e5) + (e6 * e6 + e7 * e7))
        else:
            for w in range(n):
                e0 = x0[w] - v0; e1 = x1[w] - v1; e2 = x2[w] - v2; e3 = x3[w] - v3
                e4 = x4[w] - v4; e5 = x5[w] - v5; e6 = x6[w] - v6; e7 = x7[w] - v7
                dst[w] = (dst[w] + ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3))) + ((e4 * e4 + e5 * e5) + (e6 * e6 + e7 * e7))
        first = False
        d += 8
    if hi - d >= 4:
        x0 = Sf[d, wt:wt + n]; x1 = Sf[d + 1, wt:wt + n]; x2 = Sf[d + 2, wt:wt + n]
        x3 = Sf[d + 3, wt:wt + n]
        v0 = b[d]; v1 = b[d + 1]; v2 = b[d + 2]; v3 = b[d + 3]
        if first:
            for w in range(n):
                e0 = x0[w] - v0; e1 = x1[w] - v1; e2 = x2[w] - v2; e3 = x3[w] - v3
                dst[w] = (e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)
        else:
            for w in range(n):
                e0 = x0[w] - v0; e1 = x1[w] - v1; e2 = x2[w] - v2; e3 = x3[w] - v3
                dst[w] = dst[w] + ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3))
        first = False
        d += 4
    if hi - d >= 2:
        x0 = Sf[d, wt:wt + n]; x1 = Sf[d + 1, wt:wt + n]
        v0 = b[d]; v1 = b[d + 1]
        if first:
            for w in range(n):
                e0 = x0[w] - v0; e1 = x1[w] - v1
                dst[w] = e0 * e0 + e1 * e1
        else:
            for w in range(n):
                e0 = x0[w] - v0; e1 = x1[w] - v1
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
def _weighted(d, weights):  # pragma: no cover - compiled
    """sum_g weights[g] * d[g], added left to right (the order every caller uses)."""
    v = weights[0] * d[0]
    for g in range(1, d.shape[0]):
        v = v + weights[g] * d[g]
    return v


#: Relative margin on the float32 rounding of the remaining rows' costs (see _all_lanes_worse).
_REST_MARGIN = 1e-3


@njit(cache=True, nogil=True)
def _table_rest(tabs, pid, npat, use_tab, gslot, TS, L, rest):  # pragma: no cover - compiled
    """rest[g, s, lane] = sum_{s' > s} min_t tabs[slot, pid[slot, s'], t * L + lane] (float64)."""
    G = gslot.shape[0]
    TB = rest.shape[1]
    for g in range(G):
        ts = gslot[g]
        if ts < 0 or not use_tab[ts]:
            continue
        P = npat[ts]
        rmin = np.empty((P, L))
        for p in range(P):
            row = tabs[ts, p]
            for lane in range(L):
                rmin[p, lane] = row[lane]
            for t in range(1, TS):
                for lane in range(L):
                    v = row[t * L + lane]
                    if v < rmin[p, lane]:
                        rmin[p, lane] = v
        for lane in range(L):
            rest[g, TB - 1, lane] = 0.0
        for s in range(TB - 2, -1, -1):
            for lane in range(L):
                rest[g, s, lane] = rest[g, s + 1, lane] + rmin[pid[ts, s + 1], lane]


@njit(cache=True, nogil=True)
def _all_lanes_worse(Dr, rest, s, weights, best, ids, TS, L):  # pragma: no cover - compiled
    """True when, in every real lane, a lower bound on the final weighted distance exceeds best.

    Per group, the DP value at the final cell is at least ``min_t D[s, t]`` (every path crosses
    row s and costs are >= 0; float32 rounding is monotone, so this holds exactly for the
    computed values), and at least the float32 sum of that and, for each later row, the row's
    smallest cost (``rest``; dropping or lowering terms of a float32 sum of non-negative terms
    never raises it). That float32 sum is at least its exact value times (1 - rows * 2^-24), so
    the exact sum enters with a margin of :data:`_REST_MARGIN`, far larger than that. sqrt, the
    non-negative weights and the sum are monotone in float64 and the comparison is strict, so a
    lane's minimum (whose value is <= best) is never abandoned.
    """
    G = Dr.shape[0]
    d = np.empty(G)
    for lane in range(L):
        m = ids[lane]
        if m < 0:
            continue
        for g in range(G):
            row = Dr[g, 0]
            lo = row[L + lane]
            for t in range(1, TS):
                v = row[(t + 1) * L + lane]
                if v < lo:
                    lo = v
            lb = max(np.float64(lo), (np.float64(lo) + rest[g, s, lane]) * (1.0 - _REST_MARGIN))
            d[g] = np.sqrt(lb)
        if not (_weighted(d, weights) > best[m]):
            return False
    return True


def _make_kernel(lanes: int):
    """The lane kernel compiled for ``lanes`` float32 lanes (a compile-time constant, so LLVM
    vectorises the recursion with the exact dependency distance)."""
    L = lanes

    @njit(parallel=True, fastmath=False, cache=True, nogil=True)
    def kernel(Bs, Ss, unit_b, unit_s, bounds, gslot, use_tab, pid, rep, npat,
               weights, best, best_ids, check_every, out, rows_done):  # pragma: no cover - compiled
        """For each unit u: DTW of Bs[unit_b[u]] against the L series Ss[unit_s[u, :]].

        Bs: (Mb, TB, D) float32 broadcast series (DP rows); Ss: (Ms, TS, D) float32 lane series
        (DP columns); unit_s entries < 0 are padding (the lane repeats the unit's first series and
        the caller ignores it). bounds: (G+1,) group boundaries over D. gslot: (G,) table slot of
        each group or -1; use_tab, pid, rep, npat: the distinct-frame tables of the broadcast
        series (see :func:`_distinct_frames`). out: (U, G, L) float64 receives sqrt of the cost.

        Early abandoning (``check_every > 0``): lane ``(u, lane)`` belongs to the minimum number
        ``best_ids[u, lane]`` (-1: padding), and ``best[i]`` is an upper bound on minimum i, the
        smallest weighted distance ``sum_g weights[g] * out[., g, .]`` over its pairs (+inf if
        none is known yet). Every ``check_every`` strips, a lower bound on each lane's final
        weighted distance is formed (:func:`_all_lanes_worse`); once it exceeds ``best`` in every lane
        the unit stops and its ``out`` is +inf (none of its pairs can be the minimum). A finished
        unit lowers ``best`` of its lanes. ``rows_done[u]`` counts the DP rows computed.
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
            Sf = np.empty((D, W), dtype=np.float32)
            m0 = unit_s[u, 0]
            for lane in range(L):
                m = unit_s[u, lane]
                if m < 0:
                    m = m0
                for t in range(TS):
                    for d in range(D):
                        Sf[d, t * L + lane] = Ss[m, t, d]
            # Cost rows of the broadcast series' distinct frames, for the groups that use tables.
            tabs = np.empty((NT, Pmax, W), dtype=np.float32)
            for g in range(G):
                ts = gslot[g]
                if ts < 0 or not use_tab[j, ts]:
                    continue
                for p in range(npat[j, ts]):
                    _row_costs(tabs[ts, p], Sf, 0, W, b[rep[j, ts, p]], bounds[g], bounds[g + 1])
            # Pruning: rest[g, s, lane] = sum over rows after s of the row's smallest cost
            # (tables only: a directly computed row is not known in advance; 0 otherwise).
            rest = np.zeros((G, TB if check_every > 0 else 1, L))
            if check_every > 0:
                _table_rest(tabs, pid[j], npat[j], use_tab[j], gslot, TS, L, rest)
            # Dr[g, r]: DP row s0 - 1 + r of the current strip (r = 0: the previous strip's last
            # row), with one leading column (t = -1); row -1 is inf except D[-1, -1] = 0.
            Dr = np.full((G, STRIP + 1, W + L), inf, dtype=np.float32)
            for g in range(G):
                for lane in range(L):
                    Dr[g, 0, lane] = 0.0
            C = np.empty((STRIP, WT), dtype=np.float32)
            abandoned = False
            strips = 0
            rows_done[u] = TB
            for s0 in range(0, TB, STRIP):
                h = min(STRIP, TB - s0)
                for g in range(G):
                    for r in range(1, h + 1):
                        for lane in range(L):
                            Dr[g, r, lane] = inf
                for wt in range(0, W, WT):
                    n = min(W, wt + WT) - wt
                    for g in range(G):
                        ts = gslot[g]
                        tab = ts >= 0 and use_tab[j, ts]
                        lo = bounds[g]
                        width = bounds[g + 1] - lo
                        pair = not tab and width == 2
                        octet = not tab and width == 8
                        for r in range(h):
                            # One view per DP row, indexed by i and i + L only: LLVM then knows
                            # the exact dependency distance (L) and vectorises over the lanes.
                            p = Dr[g, r, wt:wt + n + L]
                            q = Dr[g, r + 1, wt:wt + n + L]
                            if pair:
                                # Two dims (valence/arousal): the cost is cheap enough to compute
                                # inside the recursion, saving a pass over a cost row.
                                x0 = Sf[lo, wt:wt + n]
                                x1 = Sf[lo + 1, wt:wt + n]
                                v0 = b[s0 + r, lo]
                                v1 = b[s0 + r, lo + 1]
                                for i in range(n):
                                    e0 = x0[i] - v0
                                    e1 = x1[i] - v1
                                    m = min(p[i + L], p[i])
                                    m = min(m, q[i])
                                    q[i + L] = (e0 * e0 + e1 * e1) + m
                                continue
                            if octet:
                                # Eight dims (expression probabilities): cost inside the recursion.
                                x0 = Sf[lo, wt:wt + n]; x1 = Sf[lo + 1, wt:wt + n]
                                x2 = Sf[lo + 2, wt:wt + n]; x3 = Sf[lo + 3, wt:wt + n]
                                x4 = Sf[lo + 4, wt:wt + n]; x5 = Sf[lo + 5, wt:wt + n]
                                x6 = Sf[lo + 6, wt:wt + n]; x7 = Sf[lo + 7, wt:wt + n]
                                v0 = b[s0 + r, lo]; v1 = b[s0 + r, lo + 1]
                                v2 = b[s0 + r, lo + 2]; v3 = b[s0 + r, lo + 3]
                                v4 = b[s0 + r, lo + 4]; v5 = b[s0 + r, lo + 5]
                                v6 = b[s0 + r, lo + 6]; v7 = b[s0 + r, lo + 7]
                                for i in range(n):
                                    e0 = x0[i] - v0; e1 = x1[i] - v1; e2 = x2[i] - v2; e3 = x3[i] - v3
                                    e4 = x4[i] - v4; e5 = x5[i] - v5; e6 = x6[i] - v6; e7 = x7[i] - v7
                                    c = (((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3))
                                         + ((e4 * e4 + e5 * e5) + (e6 * e6 + e7 * e7)))
                                    m = min(p[i + L], p[i])
                                    m = min(m, q[i])
                                    q[i + L] = c + m
                                continue
                            if tab:
                                cc = tabs[ts, pid[j, ts, s0 + r], wt:wt + n]
                            else:
                                cc = C[r, :n]
                                _row_costs(cc, Sf, wt, n, b[s0 + r], lo, bounds[g + 1])
                            for i in range(n):
                                m = min(p[i + L], p[i])
                                m = min(m, q[i])
                                q[i + L] = cc[i] + m
                for g in range(G):
                    for i in range(W + L):
                        Dr[g, 0, i] = Dr[g, h, i]
                strips += 1
                if check_every > 0 and strips % check_every == 0 and s0 + h < TB:
                    if _all_lanes_worse(Dr, rest, s0 + h - 1, weights, best, best_ids[u], TS, L):
                        abandoned = True
                        rows_done[u] = s0 + h
                        break
            if abandoned:
                for g in range(G):
                    for lane in range(L):
                        out[u, g, lane] = np.inf
                continue
            for g in range(G):
                for lane in range(L):
                    out[u, g, lane] = np.sqrt(np.float64(Dr[g, 0, W + lane]))
            if check_every > 0:
                # Another thread may lower best[m] at the same time and one update can be lost:
                # best[m] then stays the value of another computed pair, still a valid bound.
                for lane in range(L):
                    m = best_ids[u, lane]
                    if m >= 0:
                        v = _weighted(out[u, :, lane], weights)
                        if v < best[m]:
                            best[m] = v

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
    each real reaction meets ~200 samples), otherwise the query is broadcast and its candidates
    fill the lanes. ``unit_b`` (U,), ``unit_s`` (U, lanes) padded with -1, for each pair its unit
    and lane, and ``query_ids`` (U, lanes): the query of each lane (-1: padding).
    """

    def __init__(self, cand: np.ndarray, lanes: int, orientation: str = "auto",
                 priority: np.ndarray | None = None) -> None:
        mi, ci = np.nonzero(cand >= 0)
        yj = cand[mi, ci]
        if orientation == "auto":
            # Pick the orientation that pads fewer lanes (ties: broadcast the candidates).
            units_y = int(np.sum(-(-np.bincount(yj) // lanes)))
            units_x = int(np.sum(-(-np.bincount(mi) // lanes)))
            orientation = "y" if units_y <= units_x else "x"
        self.broadcast_y = orientation == "y"
        key, other = (yj, mi) if self.broadcast_y else (mi, yj)
        # Pairs sharing a broadcast series fill its units in order of ``priority`` (if given).
        order = np.argsort(key, kind="stable") if priority is None else np.lexsort((priority[mi, ci], key))
        key_s = key[order]
        starts = np.flatnonzero(np.r_[True, key_s[1:] != key_s[:-1]]) if key_s.size else np.zeros(0, int)
        counts = np.diff(np.r_[starts, key_s.size])
        pos = np.arange(key_s.size) - np.repeat(starts, counts)
        first_unit = np.r_[0, np.cumsum(-(-counts // lanes))[:-1]] if counts.size else np.zeros(0, int)
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
        self.query_ids = np.full((n_units, lanes), -1, dtype=np.int64)
        self.query_ids[unit, pos % lanes] = self.pair_m


def _with_threads(num_threads: int | None, fn):
    old = get_num_threads()
    if num_threads is not None:
        set_num_threads(max(1, min(int(num_threads), os.cpu_count() or 1)))
    try:
        return fn()
    finally:
        set_num_threads(old)


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
        lanes: SIMD lanes per work unit (default :data:`VECTOR_LANES`); results do not depend on it.
        table_fraction: distinct-frame cost tables are used for a (series, group) with at most
            this fraction of distinct frames; 0 disables them. Results do not depend on it.
        orientation: ``"auto"``, ``"y"`` (candidates broadcast, queries in lanes) or ``"x"``;
            results do not depend on it.

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
    units = _Units(cand, lanes, orientation)
    out = np.full(cand.shape + (G,), np.nan)
    if units.unit_b.size == 0:
        return out
    B, S = (Y, X) if units.broadcast_y else (X, Y)
    tables = frame_tables(B, bounds, table_fraction)
    res = np.empty((units.unit_b.size, G, lanes), dtype=np.float64)
    rows = np.empty(units.unit_b.size, dtype=np.int64)
    _with_threads(num_threads, lambda: kernel(B, S, units.unit_b, units.unit_s, bounds, *tables, np.ones(G),
                                              np.empty(0), units.unit_s, 0, res, rows))
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


#: Frames averaged per step in the coarse DTW that orders the pruned search (:func:`dtw_min_weighted`).
COARSE_FACTOR = 10
#: The pruned search checks its bound every this many strips of DP rows.
CHECK_EVERY = 2


def _coarse(a: np.ndarray, factor: int) -> np.ndarray:
    T = a.shape[1] // factor * factor
    return a[:, :T].reshape(a.shape[0], T // factor, factor, a.shape[2]).mean(axis=2, dtype=np.float32)


def _weighted_np(d: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum_g weights[g] * d[..., g], added left to right like the kernel's ``_weighted``."""
    v = weights[0] * d[..., 0]
    for g in range(1, d.shape[-1]):
        v = v + weights[g] * d[..., g]
    return v


def dtw_min_weighted(
    X: np.ndarray,
    Y: np.ndarray,
    candidates: np.ndarray,
    *,
    weights: Sequence[float],
    groups: Sequence[tuple[int, int]] | None = None,
    num_threads: int | None = None,
    lanes: int | None = None,
    table_fraction: float = TABLE_FRACTION,
    prune: bool = False,
    stats: dict | None = None,
) -> np.ndarray:
    """For every query m: ``min_c sum_g weights[g] * DTW_g(X[m], Y[candidates[m, c]])``.

    The FRdist inner term. The result is exactly the minimum over all candidates of the per-pair
    values of :func:`dtw_one_to_many` weighted and summed left to right over the groups; with
    ``prune`` (default) most of the work on candidates that cannot be the minimum is skipped:

    1. A coarse DTW (series averaged over :data:`COARSE_FACTOR` frames, ~1% of the work)
       estimates every pair; it only orders the search, it never decides a value.
    2. Each query's most promising candidate is computed in full: its value is an upper bound
       ``best`` on the query's minimum.
    3. The other pairs run in units whose lanes are ordered by estimated ratio to that bound, so
       that a unit's lanes tend to be hopeless together; a unit stops as soon as a lower bound
       on every lane's final value exceeds its ``best`` (see ``_all_lanes_worse``), and a
       finished unit lowers ``best``. A query's minimum is never stopped, so the result is exact.

    Args:
        X, Y, candidates, groups, num_threads, lanes, table_fraction: as in
            :func:`dtw_one_to_many`.
        weights: (G,) non-negative weight of each group.
        prune: skip hopeless candidates (exact); False computes every pair.
        stats: if a dict is given, it receives the pruning counts (pairs, DP rows done and
            possible, seconds per phase).

    Returns:
        (M,) float64; +inf for a query without candidates.
    """
    import time

    X = _as_f32_series(X, "X")
    Y = _as_f32_series(Y, "Y")
    cand = np.asarray(candidates, dtype=np.int64)
    if cand.ndim != 2 or cand.shape[0] != X.shape[0]:
        raise InputError(f"candidates: expected shape ({X.shape[0]}, C), got {cand.shape}")
    bounds = _group_bounds(groups, X.shape[2])
    G = bounds.shape[0] - 1
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (G,) or not np.all(np.isfinite(w)) or np.any(w < 0):
        raise InputError(f"DTW weights: expected {G} finite non-negative numbers, got {weights!r}")
    M = X.shape[0]
    valid = cand >= 0
    if not prune or cand.shape[1] < 2:
        d = dtw_one_to_many(X, Y, cand, groups=groups, num_threads=num_threads, lanes=lanes,
                            table_fraction=table_fraction)
        v = np.where(valid, _weighted_np(d, w), np.inf)
        return v.min(axis=1) if cand.shape[1] else np.full(M, np.inf)
    lanes = VECTOR_LANES if lanes is None else int(lanes)
    info = {"pairs": int(valid.sum())}
    t0 = time.perf_counter()
    if min(X.shape[1], Y.shape[1]) >= 2 * COARSE_FACTOR:
        est = _weighted_np(dtw_one_to_many(_coarse(X, COARSE_FACTOR), _coarse(Y, COARSE_FACTOR), cand,
                                           groups=groups, num_threads=num_threads, lanes=lanes,
                                           table_fraction=0.0), w)
    else:
        est = np.zeros(cand.shape)
    est = np.where(valid, est, np.inf)
    info["coarse_s"] = time.perf_counter() - t0
    first = np.argmin(est, axis=1)
    has = valid.any(axis=1)
    cand_a = np.full((M, 1), -1, dtype=np.int64)
    cand_a[has, 0] = cand[has, first[has]]
    cand_b = cand.copy()
    cand_b[np.arange(M), first] = -1
    # Estimated ratio of each remaining pair to its query's most promising candidate.
    ratio = est / np.maximum(est[np.arange(M), first], 1e-30)[:, None]
    best = np.full(M, np.inf)
    value = np.full(M, np.inf)
    B_, S_ = Y, X
    kernel = _kernel(lanes)
    tables = {}
    for phase, (cnd, prio) in (("a", (cand_a, None)), ("b", (cand_b, ratio))):
        t0 = time.perf_counter()
        units = _Units(cnd, lanes, "auto", priority=prio)
        if units.unit_b.size == 0:
            info[f"phase_{phase}_s"] = 0.0
            continue
        B, S = (B_, S_) if units.broadcast_y else (S_, B_)
        key = "y" if units.broadcast_y else "x"
        if key not in tables:
            tables[key] = frame_tables(B, bounds, table_fraction)
        res = np.empty((units.unit_b.size, G, lanes), dtype=np.float64)
        rows = np.empty(units.unit_b.size, dtype=np.int64)
        _with_threads(num_threads, lambda: kernel(B, S, units.unit_b, units.unit_s, bounds, *tables[key], w,
                                                  best, units.query_ids, CHECK_EVERY, res, rows))
        v = _weighted_np(res[units.pair_unit, :, units.pair_lane], w)
        np.minimum.at(value, units.pair_m, v)
        info[f"phase_{phase}_s"] = time.perf_counter() - t0
        info[f"phase_{phase}_units"] = int(units.unit_b.size)
        info[f"phase_{phase}_rows_done"] = int(rows.sum())
        info[f"phase_{phase}_rows_total"] = int(units.unit_b.size) * B.shape[1]
    if stats is not None:
        stats.update(info)
    return value


def dtw_torch(x, y, *, groups: Sequence[tuple[int, int]] | None = None, cost: str = "direct"):
    """Batched DTW in torch by anti-diagonal wavefront (for GPUs; same definition as the kernel).

    Args:
        x: (B, T1, D) tensor; y: (B, T2, D) tensor (pairs x[b], y[b]).
        groups: as in :func:`dtw_one_to_many`.
        cost: ``"direct"`` (default): local costs as ``sum_d (x_d - y_d)^2``, materialising a
            (B, T1, T2, dims) difference tensor per group. ``"gram"``: as
            ``|x|^2 + |y|^2 - 2 x.y`` with one batched matrix product per group (what a GPU does
            fastest), clamped at 0. The gram form cancels when x and y are close: per cell its
            absolute error is a few units of round-off times ``|x|^2 + |y|^2``. On the emotion
            protocol's data (values in [-1, 1]) in float32 the DTW values stay within 1e-5
            relative of the direct form (``tests/metrics/test_dtw_paths.py`` checks this bound);
            in float64 within 1e-12.

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
