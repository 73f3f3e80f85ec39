"""Benchmark the REACT metrics at REACT size against the per-pair reference.

    python benchmarks/bench_metrics.py                 # N=1612, K=10, T=750, D=25, ~20 appropriate
    python benchmarks/bench_metrics.py --n 40          # quick smoke run
    python benchmarks/bench_metrics.py --frdist-rows 64  # time FRdist on 64 rows, extrapolate

Inputs are realistic-ish: binary AUs, valence/arousal in [-1, 1], softmax expression probabilities,
all smoothed over time so DTW paths and TLCC peaks are not degenerate. P is drawn from the same
generator as L independently of it ("random predictions", not model-like ones); FRdist's cost does
not depend on that, since every appropriate pair is computed in full (no pruning).

Timings are wall clock; on a shared machine the FRdist line also prints the process CPU seconds
and the load average, because wall time then says more about the neighbours than about the code.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np

from reactcli.metrics import core
from reactcli.metrics import reference as ref


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1612)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--t", type=int, default=750)
    ap.add_argument("--per-row", type=int, default=20)
    ap.add_argument("--frdist-rows", type=int, default=None, help="time FRdist on this many rows only")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()

    t0 = time.perf_counter()
    P, L, S, A = make_inputs(args.n, args.k, args.t, args.per_row)
    print(f"inputs N={args.n} K={args.k} T={args.t} D=25, {A.sum(1).mean():.1f} appropriate/row "
          f"(built in {time.perf_counter() - t0:.1f} s)")
    # Warm up (numba compile or cache load) on a tiny problem so timings exclude compilation.
    t0 = time.perf_counter()
    small = make_inputs(3, 2, 60, 2, seed=1)
    core.evaluate_arrays(*small)
    print(f"warm-up (compile/cache load): {time.perf_counter() - t0:.1f} s")

    times: dict[str, float] = {}
    full = core.evaluate_arrays(P, L, S, A, num_threads=args.threads,
                                metrics=("FRCorr", "FRDiv", "FRDvs", "FRVar", "FRSyn"))
    times.update({k: v for k, v in full["timings_s"].items()})
    rows = args.frdist_rows or args.n
    sel = np.arange(rows)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    fd, _ = core.frdist(P[sel], L, A[sel], num_threads=args.threads)
    t_fd = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu_fd = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    pairs = int(A[sel].sum()) * args.k
    times["FRdist"] = t_fd * args.n / rows
    print(f"FRdist on {rows} rows: {t_fd:.2f} s for {pairs} pairs x 3 DTWs "
          f"({t_fd / pairs * 1e3:.3f} ms/pair); extrapolated to all rows: {times['FRdist']:.1f} s")
    print(f"FRdist CPU: {cpu_fd:.2f} s ({cpu_fd / pairs * 1e3:.3f} ms/pair, {cpu_fd * args.n / rows:.1f} s "
          f"extrapolated; CPU/wall {cpu_fd / t_fd:.2f} on {os.cpu_count()} cores), load average "
          f"{os.getloadavg()[0]:.2f}")
    for key in ("FRCorr", "FRCorr_per_sample", "FRDiv", "FRDvs", "FRVar", "FRSyn"):
        print(f"  {key:18s} = {full[key]}")
    print(f"  {'FRdist':18s} = {fd}  (rows 0..{rows - 1})")
    total = sum(times.values())
    for k, v in times.items():
        print(f"time {k:8s} {v:8.2f} s")
    print(f"time TOTAL    {total:8.2f} s  (target <= 60 s)")

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
    print(f"reference extrapolated total {ref_total / 3600:.2f} h vs vectorised {total:.1f} s "
          f"-> ratio {ref_total / total:.0f}x")


if __name__ == "__main__":
    main()
