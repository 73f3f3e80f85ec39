"""Straightforward per-pair implementations of the REACT metrics, written from the definitions.

These loop in Python like the official evaluation does. They exist to check the vectorised code
(tests) and to measure the speed-up (benchmarks/bench_metrics.py); never use them for real runs.
"""

from __future__ import annotations

import numpy as np

EMOTION_GROUPS = ((0, 15, 1.0 / 15.0), (15, 17, 1.0), (17, 25, 1.0 / 8.0))


def ccc(x: np.ndarray, y: np.ndarray) -> float:
    """CCC of two (T, D) sequences, mean over dims (Pearson NaN -> 0, population stats)."""
    vals = []
    for d in range(x.shape[1]):
        a = x[:, d].astype(np.float64)
        b = y[:, d].astype(np.float64)
        ma, mb = a.mean(), b.mean()
        va, vb = a.var(), b.var()
        sa, sb = a.std(), b.std()
        r = 0.0 if sa == 0 or sb == 0 else float(((a - ma) * (b - mb)).mean() / (sa * sb))
        vals.append(2 * r * sa * sb / (va + vb + (ma - mb) ** 2 + 1e-8))
    return float(np.mean(vals))


def dtw(x: np.ndarray, y: np.ndarray) -> float:
    """Textbook O(T1*T2) DTW, squared-Euclidean local cost, sqrt of the accumulated cost."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    T1, T2 = len(x), len(y)
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    D = np.full((T1 + 1, T2 + 1), np.inf)
    D[0, 0] = 0.0
    for i in range(1, T1 + 1):
        for j in range(1, T2 + 1):
            D[i, j] = cost[i - 1, j - 1] + min(D[i - 1, j], D[i, j - 1], D[i - 1, j - 1])
    return float(np.sqrt(D[T1, T2]))


def dtw_rowwise(x: np.ndarray, y: np.ndarray) -> float:
    """Same DTW, with the inner loop vectorised per row (still one pair at a time)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    cost = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    prev = np.concatenate([[0.0], np.full(len(y), np.inf)])
    for i in range(len(x)):
        cur = np.empty_like(prev)
        cur[0] = np.inf
        best_ud = np.minimum(prev[1:], prev[:-1]) + cost[i]
        for j in range(1, len(y) + 1):
            cur[j] = min(best_ud[j - 1], cur[j - 1] + cost[i, j - 1])
        prev = cur
    return float(np.sqrt(prev[-1]))


def pair_distance(p: np.ndarray, l: np.ndarray, feature: str = "emotion", dtw_fn=dtw) -> float:
    if feature == "emotion":
        return sum(w * dtw_fn(p[:, lo:hi], l[:, lo:hi]) for lo, hi, w in EMOTION_GROUPS)
    return dtw_fn(p, l)


def frcorr(P, L, A) -> float:
    N, K = P.shape[:2]
    total = 0.0
    for k in range(N):
        js = np.flatnonzero(A[k])
        total += sum(max(ccc(L[j], P[k, i]) for j in js) for i in range(K))
    return total / N


def frdist(P, L, A, feature: str = "emotion", dtw_fn=dtw) -> float:
    N, K = P.shape[:2]
    total = 0.0
    for k in range(N):
        js = np.flatnonzero(A[k])
        total += sum(min(pair_distance(P[k, i], L[j], feature, dtw_fn) for j in js) for i in range(K))
    return total / N


def frdiv(P) -> float:
    N, K, T, D = P.shape
    out = []
    for k in range(N):
        s = 0.0
        for a in range(K):
            for b in range(K):
                if a != b:
                    s += float(((P[k, a].astype(np.float64) - P[k, b]) ** 2).sum())
        out.append(s / (K * (K - 1) * T * D))
    return float(np.mean(out))


def frdvs(P) -> float:
    N, K, T, D = P.shape
    s = 0.0
    for i in range(K):
        for k in range(N):
            for k2 in range(N):
                if k != k2:
                    s += float(((P[k, i].astype(np.float64) - P[k2, i]) ** 2).sum())
    return s / (N * (N - 1) * K * T * D)


def frvar(P) -> float:
    return float(np.var(P.astype(np.float64), axis=2, ddof=1).mean())


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if (a == a[0]).all() or (b == b[0]).all():
        return float("nan")
    a = a.astype(np.float64) - a.mean()
    b = b.astype(np.float64) - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def tlcc_curve(x: np.ndarray, y: np.ndarray, max_lag: int = 49) -> np.ndarray:
    """(2*max_lag+1, D) Pearson per lag and dim, NaN for constant windows."""
    out = []
    for lag in range(-max_lag, max_lag + 1):
        if lag > 0:
            xs, ys = x[lag:], y[:-lag]
        elif lag < 0:
            xs, ys = x[:lag], y[-lag:]
        else:
            xs, ys = x, y
        out.append([_pearson(xs[:, d], ys[:, d]) for d in range(x.shape[1])])
    return np.asarray(out)


def tlcc_score(x, y, max_lag: int = 49, compat: str = "default") -> float:
    r = tlcc_curve(x, y, max_lag)
    if compat == "official":
        mean = r.mean(axis=1)  # NaN if any channel is NaN
        peak = int(np.argmax(mean))  # numpy: the first NaN wins
    else:
        with np.errstate(all="ignore"):
            ok = ~np.isnan(r).all(axis=1)
            if not ok.any():
                return float("nan")
            mean = np.where(ok, np.nanmean(np.where(np.isnan(r), np.nan, r), axis=1), -np.inf)
        peak = int(np.argmax(mean))
    return float(abs(max_lag - peak))


def frsyn(P, S, compat: str = "default", max_lag: int = 49) -> float:
    N, K = P.shape[:2]
    ks = 1 if compat == "official" else K
    scores = [tlcc_score(P[k, i], S[k], max_lag, compat) for k in range(N) for i in range(ks)]
    return float(np.nanmean(scores))
