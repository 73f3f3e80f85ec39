"""Benchmark the six REACT metrics at REACT size, with today's and the pre-issue-32 DTW kernel.

    python benchmarks/bench_metrics.py                  # N=1612, K=10, T=750, D=25, ~21 appropriate/row
    python benchmarks/bench_metrics.py --n 64           # quick run
    python benchmarks/bench_metrics.py --baseline-rows 16 --reference-items old_items.npy

One run prints:

* the machine: cores, SIMD lanes of the DTW kernel (16 with AVX-512, 8 with AVX2), load average;
* the six metrics at full size through :func:`reactcli.metrics.core.evaluate_arrays` (the path of
  ``reactcli evaluate``; two calls, FRdist and the other five, so that FRdist's CPU time is known
  on its own), each metric's wall time and the process CPU time;
* the DTW kernel as it was before issue 32 (``benchmarks/dtw_before.py``) timed on the first
  ``--baseline-rows`` rows, extrapolated to all rows, the ratio to today's FRdist, and the largest
  relative difference of the per-item FRdist terms on those rows (the kernels are bit-identical,
  so it should print 0);
* with ``--reference-items``, the largest relative difference of all per-item FRdist terms against
  values saved from an earlier run (e.g. the pre-issue-32 kernel on the whole input);
* the per-pair reference (Python loops like the official code) on a few pairs, extrapolated.

Inputs are realistic-ish: binary AUs, valence/arousal in [-1, 1], softmax expression probabilities,
all smoothed over time so DTW paths and TLCC peaks are not degenerate. P is drawn from the same
generator as L independently of it ("random predictions", not model-like ones).

On a shared machine wall time says as much about the neighbours as about the code: the load
average is printed before and after, next to the process CPU seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

from reactcli.metrics import core
from reactcli.kernels import dtw
from reactcli.metrics import reference as ref

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dtw_before  # noqa: E402  (the kernel before issue 32, kept next to this file)


def make_inputs(n: int, k: int, t: int, per_row: int, seed: int = 0):
    rng = np.random.default_rng(seed)

    def sequences(shape):
        # Random walks smoothed in time, then mapped to the three emotion blocks.
        z = rng.standard_normal(shape + (25,)).astype(np.float32)
        z = np.cumsum(z, axis=-2) / np.sqrt(np.arange(1, shape[-1] + 1, dtype=np.float32))[:, None]
        out = np.empty_like(z)
        out[..., :15] = (z[..., :15] > 0.5).astype(np.float32)
        out[..., 15:17] = np.tanh(z[..., 15:17] / 2)
        e = np.exp(z[..., 17:25] - z[..., 17:25].max(axis=-1, keepdims=True))
        out[..., 17:25] = e / e.sum(axis=-1, keepdims=True)
        return out

    L = sequences((n, t))
    S = sequences((n, t))
    P = np.empty((n, k, t, 25), np.float32)
    for a in range(0, n, 64):
        P[a : a + 64] = sequences((min(64, n - a), k, t))
    A = np.zeros((n, n), dtype=bool)
    for row in range(n):
        A[row, rng.choice(n, size=min(per_row, n), replace=False)] = True
        A[row, row] = True
    return P, L, S, A


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def host_cpu() -> str:
    try:
        import llvmlite.binding as llvm

        return llvm.get_host_cpu_name()
    except Exception:  # pragma: no cover
        return platform.processor() or "?"


def frdist_items_before(P: np.ndarray, L: np.ndarray, A: np.ndarray, num_threads: int | None) -> np.ndarray:
    """Per-item FRdist terms with the pre-issue-32 kernel and formula."""
    N, K, T, D = P.shape
    cand = np.repeat(core.candidate_lists(A), K, axis=0)
    d = dtw_before.dtw_one_to_many(P.reshape(N * K, T, D), L, cand, groups=list(core.EMOTION_GROUPS),
                                   num_threads=num_threads)
    total = np.where(cand >= 0, (d * np.asarray(core.EMOTION_WEIGHTS)).sum(axis=-1), np.inf)
    return total.min(axis=1).reshape(N, K).sum(axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1612)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--t", type=int, default=750)
    ap.add_argument("--per-row", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--baseline-rows", type=int, default=8,
                    help="rows on which the pre-issue-32 kernel is timed (0: skip)")
    ap.add_argument("--reference-items", type=Path, default=None,
                    help=".npy of per-item FRdist terms from an earlier run on the same input")
    ap.add_argument("--save-items", type=Path, default=None, help="save today's per-item FRdist terms")
    args = ap.parse_args()

    print(f"machine: {os.cpu_count()} cores, {host_cpu()}, DTW kernel lanes {dtw.VECTOR_LANES} fp32 "
          f"(16 = AVX-512, 8 = AVX2), load average {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    P, L, S, A = make_inputs(args.n, args.k, args.t, args.per_row)
    print(f"inputs N={args.n} K={args.k} T={args.t} D=25, {A.sum(1).mean():.1f} appropriate/row, "
          f"{int(A.sum()) * args.k} FRdist pairs (built in {time.perf_counter() - t0:.1f} s)")
    # Warm up (numba compile or cache load) on a tiny problem so timings exclude compilation.
    t0 = time.perf_counter()
    small = make_inputs(3, 2, 60, 2, seed=1)
    core.evaluate_arrays(*small)
    if args.baseline_rows:
        frdist_items_before(small[0][:1], small[1], small[3][:1], args.threads)
    print(f"warm-up (compile/cache load): {time.perf_counter() - t0:.1f} s")

    # All six metrics, as `reactcli evaluate` computes them, in two calls (FRdist, then the other
    # five) so that FRdist's CPU time is known on its own.
    load0 = os.getloadavg()[0]
    full: dict = {"timings_s": {}}
    cpu_of: dict[str, float] = {}
    wall = cpu = 0.0
    for part in (("FRdist",), ("FRCorr", "FRDiv", "FRDvs", "FRVar", "FRSyn")):
        c0, t0 = cpu_seconds(), time.perf_counter()
        res = core.evaluate_arrays(P, L, S, A, num_threads=args.threads, metrics=part)
        w, c = time.perf_counter() - t0, cpu_seconds() - c0
        wall, cpu = wall + w, cpu + c
        cpu_of[" + ".join(part)] = c
        timings = {**full["timings_s"], **res["timings_s"]}
        full.update(res)
        full["timings_s"] = timings
    for key in ("FRCorr", "FRCorr_per_sample", "FRdist", "FRdist_per_sample", "FRDiv", "FRDvs", "FRVar", "FRSyn"):
        print(f"  {key:18s} = {full[key]}")
    for name in ("stats", "FRCorr", "FRdist", "FRDiv", "FRDvs", "FRVar", "FRSyn"):
        print(f"time {name:8s} {full['timings_s'][name]:8.2f} s wall")
    for name, c in cpu_of.items():
        print(f"CPU  {name}: {c:.1f} s (calls to evaluate_arrays, input checks included)")
    print(f"time TOTAL    {wall:8.2f} s wall (all six metrics; target <= 120 s, moonshot 60 s), "
          f"{cpu:.1f} s CPU (CPU/wall {cpu / wall:.2f} on {os.cpu_count()} cores), "
          f"load average {load0:.2f} before, {os.getloadavg()[0]:.2f} after")
    t_frdist = full["timings_s"]["FRdist"]
    c_frdist = cpu_of["FRdist"]

    if args.reference_items is not None or args.save_items is not None:
        items = core.frdist_items(P, L, A, num_threads=args.threads)
        assert float(items.mean()) == full["FRdist"]
        if args.save_items is not None:
            np.save(args.save_items, items)
        if args.reference_items is not None:
            old = np.load(args.reference_items)
            print(f"FRdist per-item terms vs {args.reference_items}: max relative difference "
                  f"{np.max(np.abs(items / old - 1)):.3g}; FRdist {items.mean()!r} vs {old.mean()!r} "
                  f"(relative {abs(items.mean() / old.mean() - 1):.3g})")

    if args.baseline_rows:
        rows = min(args.baseline_rows, args.n)
        pairs = int(A[:rows].sum()) * args.k
        c0, t0 = cpu_seconds(), time.perf_counter()
        before = frdist_items_before(P[:rows], L, A[:rows], args.threads)
        t_b, c_b = time.perf_counter() - t0, cpu_seconds() - c0
        now = core.frdist_items(P[:rows], L, A[:rows], num_threads=args.threads)
        extrap = t_b * args.n / rows
        extrap_cpu = c_b * args.n / rows
        print(f"before issue 32 (benchmarks/dtw_before.py): FRdist on {rows} rows ({pairs} pairs) "
              f"{t_b:.2f} s wall, {c_b:.2f} s CPU -> {extrap:.1f} s wall, {extrap_cpu:.1f} s CPU "
              f"extrapolated to all rows (load {os.getloadavg()[0]:.2f}); today's FRdist {t_frdist:.1f} s wall, "
              f"{c_frdist:.1f} s CPU -> ratio {extrap / t_frdist:.1f}x wall, {extrap_cpu / c_frdist:.1f}x CPU; "
              f"per-item terms on those rows: max relative difference "
              f"{np.max(np.abs(now / before - 1)):.3g} (bit-identical: {bool(np.array_equal(now, before))})")

    # Reference (per pair, Python loops like the official code) on a subset, extrapolated.
    n_pairs_total = int(A.sum()) * args.k
    t0 = time.perf_counter()
    ref.pair_distance(P[0, 0], L[np.flatnonzero(A[0])[0]], dtw_fn=ref.dtw_rowwise)
    t_pair = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref.tlcc_score(P[0, 0], S[0])
    t_tlcc = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref.frcorr(P[:2], L, A[:2])
    t_corr = (time.perf_counter() - t0) / 2 * args.n
    ref_total = t_pair * n_pairs_total + t_tlcc * args.n * args.k + t_corr
    print(f"reference: {t_pair * 1e3:.0f} ms per FRdist pair (row-vectorised numpy DTW), "
          f"{t_tlcc * 1e3:.0f} ms per TLCC sample, FRCorr {t_corr:.0f} s extrapolated")
    print(f"reference extrapolated total {ref_total / 3600:.2f} h vs vectorised {wall:.1f} s "
          f"-> ratio {ref_total / wall:.0f}x")


if __name__ == "__main__":
    main()
