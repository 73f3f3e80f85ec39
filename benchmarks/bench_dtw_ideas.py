"""What each DTW idea of issue 32 gains, measured on one FRdist-shaped input.

    python benchmarks/bench_dtw_ideas.py            # N=64 items (same density as REACT: ~21 x 10
                                                    # samples per real reaction), K=10, T=750
    python benchmarks/bench_dtw_ideas.py --n 32 --prune-items 1

Each variant computes the DTW of every FRdist pair of the input (``core.frdist``'s pairs) and
prints its process CPU seconds per pair (the machine is shared; CPU time says more than wall time)
and whether its values equal the first variant's bit for bit:

1. ``before``: the kernel before issue 32 (``benchmarks/dtw_before.py``): 8 lanes, candidates in
   the lanes, every local cost computed directly, a recursion loop left scalar by LLVM.
2. ``vectorised``: today's kernel restricted to the old layout (8 lanes, query broadcast, no
   tables): vectorised recursion, 2- and 8-dim costs inside it, column tiles outside.
3. ``16 lanes``: the same with 16 lanes (AVX-512): ~21 candidates per query pad to 32 lanes.
4. ``candidate broadcast``: 16 lanes, real reactions broadcast and the ~210 samples that meet
   each of them in the lanes (little padding).
5. ``+ AU tables`` (today's default on AVX-512): the 0/1 AU group reads its costs from a table of
   each real reaction's distinct AU patterns.
6. ``AVX2 default``: 5. with 8 lanes (what an AVX2 machine runs).

Then two ideas not used on CPU, measured separately:

* matrix-product ("gram") local costs ``|x|^2 + |y|^2 - 2 x.y`` for the 8-dim expression group,
  timed as the fused cost-and-recursion loop against today's direct loop (same numba code shape),
  and their error: the torch path's DTW values, gram vs direct, in float32;
* exact early abandoning: for a few items, the exact float64 DP of each pair is replayed row by
  row with its true minimum known in advance (the most favourable case), and the rows a pair
  needs before its lower bound exceeds that minimum are counted, for two valid bounds: the DP row
  minimum, and that plus the later rows' smallest local costs (all groups: more than any cheap
  bound can know).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from numba import njit, prange

from reactcli.metrics import core
from reactcli.kernels import dtw

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dtw_before  # noqa: E402
from bench_metrics import make_inputs  # noqa: E402

GROUPS = list(core.EMOTION_GROUPS)
WEIGHTS = np.asarray(core.EMOTION_WEIGHTS)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn, repeats: int):
    """(result, best CPU seconds, wall seconds of that run) over ``repeats`` runs."""
    best = None
    for _ in range(repeats):
        c0, t0 = cpu_seconds(), time.perf_counter()
        out = fn()
        c, w = cpu_seconds() - c0, time.perf_counter() - t0
        if best is None or c < best[1]:
            best = (out, c, w)
    return best


L_MICRO = 16


@njit(fastmath=False, cache=True)
def _micro_direct(Dr, Sf, b, n, reps):  # pragma: no cover - compiled
    """Today's fused expression-group loop (8 dims, cost inside the recursion)."""
    L = L_MICRO
    for _ in range(reps):
        for r in range(b.shape[0]):
            x0, x1, x2, x3 = Sf[0, :n], Sf[1, :n], Sf[2, :n], Sf[3, :n]
            x4, x5, x6, x7 = Sf[4, :n], Sf[5, :n], Sf[6, :n], Sf[7, :n]
            v0, v1, v2, v3, v4, v5, v6, v7 = b[r, 0], b[r, 1], b[r, 2], b[r, 3], b[r, 4], b[r, 5], b[r, 6], b[r, 7]
            p = Dr[r % 2, :n + L]
            q = Dr[1 - r % 2, :n + L]
            for i in range(n):
                e0, e1, e2, e3 = x0[i] - v0, x1[i] - v1, x2[i] - v2, x3[i] - v3
                e4, e5, e6, e7 = x4[i] - v4, x5[i] - v5, x6[i] - v6, x7[i] - v7
                c = ((e0 * e0 + e1 * e1) + (e2 * e2 + e3 * e3)) + ((e4 * e4 + e5 * e5) + (e6 * e6 + e7 * e7))
                m = min(p[i + L], p[i])
                m = min(m, q[i])
                q[i + L] = c + m


@njit(fastmath={"contract"}, cache=True)
def _micro_gram(Dr, Sf, xx, b, bb, n, reps):  # pragma: no cover - compiled
    """The same loop with gram costs (|x|^2 precomputed per column, fused multiply-adds allowed)."""
    L = L_MICRO
    two = np.float32(2.0)
    zero = np.float32(0.0)
    for _ in range(reps):
        for r in range(b.shape[0]):
            x0, x1, x2, x3 = Sf[0, :n], Sf[1, :n], Sf[2, :n], Sf[3, :n]
            x4, x5, x6, x7 = Sf[4, :n], Sf[5, :n], Sf[6, :n], Sf[7, :n]
            v0, v1, v2, v3, v4, v5, v6, v7 = b[r, 0], b[r, 1], b[r, 2], b[r, 3], b[r, 4], b[r, 5], b[r, 6], b[r, 7]
            yy = bb[r]
            p = Dr[r % 2, :n + L]
            q = Dr[1 - r % 2, :n + L]
            for i in range(n):
                dot = x0[i] * v0 + x1[i] * v1 + x2[i] * v2 + x3[i] * v3
                dot = dot + x4[i] * v4 + x5[i] * v5 + x6[i] * v6 + x7[i] * v7
                c = max((xx[i] + yy) - two * dot, zero)
                m = min(p[i + L], p[i])
                m = min(m, q[i])
                q[i + L] = c + m


def gram_idea(P: np.ndarray, L: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    n = 128 * L_MICRO
    Sf = rng.random((8, n)).astype(np.float32)
    b = rng.random((64, 8)).astype(np.float32)
    xx = (Sf.astype(np.float32) ** 2).sum(0).astype(np.float32)
    bb = (b ** 2).sum(1).astype(np.float32)
    Dr = np.zeros((2, n + L_MICRO), np.float32)
    _micro_direct(Dr, Sf, b, n, 1)
    _micro_gram(Dr, Sf, xx, b, bb, n, 1)
    reps = 200
    _, c_d, _ = timed(lambda: _micro_direct(Dr, Sf, b, n, reps), 3)
    _, c_g, _ = timed(lambda: _micro_gram(Dr, Sf, xx, b, bb, n, reps), 3)
    cells = reps * 64 * n / L_MICRO
    print(f"gram costs, 8-dim group, fused loop: direct {c_d / cells * 1e9:.2f} ns, gram {c_g / cells * 1e9:.2f} ns "
          f"per 16-lane cell (x{c_d / c_g:.2f}); this group is ~half of a unit's time")
    try:
        import torch
    except ImportError:  # pragma: no cover
        print("gram error: torch not installed")
        return
    x = torch.from_numpy(P[:4, 0, :200].copy())
    y = torch.from_numpy(L[:4, :200].copy())
    near = y + 0.01 * torch.from_numpy(rng.standard_normal(tuple(y.shape)).astype(np.float32))
    for name, a in (("random pairs", x), ("near-copies (1% noise)", near)):
        d = dtw.dtw_torch(a, y, groups=GROUPS).numpy()
        g = dtw.dtw_torch(a, y, groups=GROUPS, cost="gram").numpy()
        print(f"gram error, float32, {name}: max relative difference of DTW values {np.max(np.abs(g / d - 1)):.2g} "
              f"(per group {np.abs(g / d - 1).max(axis=0).round(9).tolist()})")


@njit(parallel=True, cache=True)
def _row_minima(X, Y, qi, cj, lo, hi, rowmin_D, rowmin_c):  # pragma: no cover - compiled
    """Exact float64 DP of each pair (rows = candidate frames): per row, min_t D[s, t] and min_t c[s, t]."""
    for k in prange(qi.shape[0]):
        x = X[qi[k]]
        y = Y[cj[k]]
        T1 = x.shape[0]
        prev = np.full(T1 + 1, np.inf)
        prev[0] = 0.0
        cur = np.empty(T1 + 1)
        for s in range(y.shape[0]):
            cur[0] = np.inf
            md = np.inf
            mc = np.inf
            for t in range(T1):
                c = 0.0
                for d in range(lo, hi):
                    e = x[t, d] - y[s, d]
                    c += e * e
                v = c + min(prev[t + 1], prev[t], cur[t])
                cur[t + 1] = v
                md = min(md, v)
                mc = min(mc, c)
            rowmin_D[k, s] = md
            rowmin_c[k, s] = mc
            prev, cur = cur, prev


def prune_idea(P: np.ndarray, L: np.ndarray, A: np.ndarray, items: int, lanes: int) -> None:
    N, K, T, D = P.shape
    cand = core.candidate_lists(A[:items])
    qi, cj = [], []
    for k in range(items):
        for i in range(K):
            for j in cand[k][cand[k] >= 0]:
                qi.append(k * K + i)
                cj.append(j)
    qi, cj = np.asarray(qi), np.asarray(cj)
    X = P[:items].reshape(-1, T, D).astype(np.float64)
    Y = L.astype(np.float64)
    t0 = time.perf_counter()
    rd = np.empty((len(GROUPS), qi.size, T))
    rc = np.empty_like(rd)
    for g, (lo, hi) in enumerate(GROUPS):
        _row_minima(X, Y, qi, cj, lo, hi, rd[g], rc[g])
    final = (np.sqrt(rd[:, :, -1]) * WEIGHTS[:, None]).sum(0)  # the last row's min is D[T-1, T-1]
    best = np.array([final[qi == q].min() for q in qi])
    rest = np.concatenate([np.cumsum(rc[:, :, ::-1], axis=2)[:, :, ::-1][:, :, 1:], np.zeros_like(rc[:, :, :1])],
                          axis=2)
    print(f"early abandoning ({qi.size} pairs of {items} items, exact float64 replay in "
          f"{time.perf_counter() - t0:.0f} s); distance / the sample's minimum: quantiles 10/50/90% "
          f"{np.quantile(final / best, [0.1, 0.5, 0.9]).round(2).tolist()}")
    for name, lb in (("DP row minimum", rd), ("row minimum + later rows' smallest costs", rd + rest)):
        bound = (np.sqrt(lb) * WEIGHTS[:, None, None]).sum(0)
        over = bound > best[:, None]
        need = np.where(over.any(1), over.argmax(1) + 1, T)
        # Units: lanes share a real reaction and stop only when every lane can (lanes in pair order).
        unit_rows = 0
        for j in np.unique(cj):
            idx = np.flatnonzero(cj == j)
            for a in range(0, idx.size, lanes):
                unit_rows += need[idx[a:a + lanes]].max() * lanes
        n_slots = sum(-(-np.sum(cj == j) // lanes) * lanes for j in np.unique(cj))
        print(f"  bound = {name}: DP rows needed with the true minimum known in advance: "
              f"{need.mean() / T:.1%} per pair, {unit_rows / (n_slots * T):.1%} in units of {lanes} lanes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--t", type=int, default=750)
    ap.add_argument("--per-row", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2, help="runs per variant (the lowest CPU time is kept)")
    ap.add_argument("--prune-items", type=int, default=2, help="items replayed for early abandoning (0: skip)")
    args = ap.parse_args()

    P, L, S, A = make_inputs(args.n, args.k, args.t, args.per_row)
    N, K, T, D = P.shape
    cand = np.repeat(core.candidate_lists(A), K, axis=0)
    X = P.reshape(N * K, T, D)
    pairs = int((cand >= 0).sum())
    print(f"machine: {os.cpu_count()} cores, DTW lanes {dtw.VECTOR_LANES} by default; load average "
          f"{os.getloadavg()[0]:.2f}; input N={N} K={K} T={T}: {pairs} FRdist pairs, "
          f"{pairs / L.shape[0]:.0f} samples per real reaction")

    variants = [
        ("before issue 32", lambda: dtw_before.dtw_one_to_many(X, L, cand, groups=GROUPS)),
        ("vectorised (8 lanes, query broadcast, no tables)",
         lambda: dtw.dtw_one_to_many(X, L, cand, groups=GROUPS, lanes=8, orientation="x", table_fraction=0)),
        ("16 lanes (query broadcast, no tables)",
         lambda: dtw.dtw_one_to_many(X, L, cand, groups=GROUPS, lanes=16, orientation="x", table_fraction=0)),
        ("candidate broadcast (16 lanes, no tables)",
         lambda: dtw.dtw_one_to_many(X, L, cand, groups=GROUPS, lanes=16, orientation="y", table_fraction=0)),
        ("+ AU tables (16 lanes: today's default on AVX-512)",
         lambda: dtw.dtw_one_to_many(X, L, cand, groups=GROUPS, lanes=16, orientation="y")),
        ("AVX2 default (8 lanes, candidate broadcast, AU tables)",
         lambda: dtw.dtw_one_to_many(X, L, cand, groups=GROUPS, lanes=8, orientation="y")),
    ]
    # Compile / load every kernel on a small problem first.
    small = (X[:2], L, cand[:2, :3])
    dtw_before.dtw_one_to_many(*small, groups=GROUPS)
    for lanes in (8, 16):
        dtw.dtw_one_to_many(*small, groups=GROUPS, lanes=lanes)
    ref = None
    base = None
    print(f"{'variant':58s} {'CPU s':>8s} {'wall s':>8s} {'us CPU/pair':>12s} {'vs before':>10s}  values")
    for name, fn in variants:
        out, c, w = timed(fn, args.repeats)
        if ref is None:
            ref, base = out, c
        same = bool(np.array_equal(out, ref, equal_nan=True))
        print(f"{name:58s} {c:8.2f} {w:8.2f} {c / pairs * 1e6:12.0f} {base / c:9.2f}x  "
              f"{'bit-identical' if same else 'DIFFERENT'}")
    print(f"load average after the variants: {os.getloadavg()[0]:.2f}")
    gram_idea(P, L)
    if args.prune_items:
        prune_idea(P, L, A, args.prune_items, dtw.VECTOR_LANES)


if __name__ == "__main__":
    main()
