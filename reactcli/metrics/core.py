"""The REACT challenge metrics on in-memory arrays (definitions: spec/metrics.md).

Inputs everywhere: ``P`` (N, K, T, D) generated reactions, ``L`` (N, T, D) real listener
reactions, ``S`` (N, T, D) speaker behaviour, ``A`` (N, N) 0/1 appropriateness
(``A[k, j] = 1``: ``L[j]`` is an appropriate reaction to speaker item k).

Work is shared where the definitions allow it: per-sequence means/variances are computed once
(FRCorr needs them per (item, sample, dim), FRVar is the same centred sum of squares with ddof=1),
the three emotion-group DTWs of a pair are computed in one pass (see :mod:`reactcli.kernels.dtw`),
and FRDiv/FRDvs use the identity ``sum_{a,b} ||x_a - x_b||^2 = 2 n sum_a ||x_a - mean||^2`` instead
of forming all pairs.

Choices the spec leaves open, made here and documented:

* K = 1 makes FRDiv 0 by definition and usually means a sampler was run without ``--num-samples``.
  :func:`evaluate_arrays` raises :class:`InputError` for K = 1 unless the caller passes
  ``allow_single_sample=True``, in which case FRDiv is reported as 0.0, as metrics.md defines.
* FRDvs divides by N (N - 1): N < 2 is an input error.
* FRSyn (default mode): a sample whose every lag has only constant channels has no defined score;
  it is left out of the mean and counted in ``FRSyn_undefined_samples``. If every sample is
  undefined FRSyn is ``None`` with a note, never NaN.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from numba import njit, prange

import reactcli
from reactcli.errors import ConfigError, InputError
from reactcli.kernels.dtw import dtw_one_to_many
from reactcli.metrics.naturalness import CONTINUOUS_DIMS, HEADLINE, naturalness
from reactcli.metrics.tlcc import _as_float, _dot, frsyn_scores

#: Emotion protocol: (dim range, weight) per DTW group: 15 AUs, valence/arousal, 8 expressions.
EMOTION_GROUPS: tuple[tuple[int, int], ...] = ((0, 15), (15, 17), (17, 25))
EMOTION_WEIGHTS: tuple[float, ...] = (1.0 / 15.0, 1.0, 1.0 / 8.0)
#: FRSyn lag half-width: lags -49..49 (2 s at 25 fps, as the official ``range(-49, 50)``).
MAX_LAG = 49
FEATURES = ("emotion", "tdmm")
COMPAT_MODES = ("default", "official")

PROTOCOLS = {
    "emotion": "REACT emotion protocol (D=25: 15 AUs, valence/arousal, 8 expression probs); "
    "FRdist = DTW(AU)/15 + DTW(VA) + DTW(expr)/8",
    "tdmm": "3DMM protocol (ReactFace style): FRdist = one DTW over all D dims",
}


@dataclass
class SeqStats:
    """Per-sequence statistics over time, shared by FRCorr and FRVar.

    Attributes:
        mean: (..., D) temporal mean (float64).
        m2: (..., D) centred sum of squares ``sum_t (x_t - mean)^2``; population variance is
            ``m2 / T`` (CCC), unbiased variance ``m2 / (T - 1)`` (FRVar).
    """

    mean: np.ndarray
    m2: np.ndarray


@njit(parallel=True, cache=True, nogil=True)
def _stats_kernel(x, mean, m2):  # pragma: no cover - compiled
    """mean[m, d], m2[m, d] of the (M, T, D) sequences x: float64, two passes (centre, square).

    The time sums run sequentially with the d loop innermost (contiguous, vectorised across
    channels without reassociation), so a channel of T equal float32 values sums exactly to T v
    and its mean is exactly v.
    """
    M, T, D = x.shape
    for m in prange(M):
        s = np.zeros(D)
        for t in range(T):
            for d in range(D):
                s[d] += x[m, t, d]
        for d in range(D):
            s[d] /= T
        q = np.zeros(D)
        for t in range(T):
            for d in range(D):
                c = x[m, t, d] - s[d]
                q[d] += c * c
        for d in range(D):
            mean[m, d] = s[d]
            m2[m, d] = q[d]


def seq_stats(x: np.ndarray, chunk: int = 64) -> SeqStats:
    """Temporal mean and centred sum of squares of (..., T, D) sequences, in float64.

    Centring before squaring keeps a constant channel's variance exactly 0 (the mean of equal
    float32 values is exact in float64), which FRCorr relies on to detect constant channels.
    One compiled pass per sequence reads the float32 data in place (no float64 copy of the
    input); ``chunk`` is kept for API compatibility and unused.
    """
    del chunk
    lead = x.shape[:-2]
    flat = _as_float(x).reshape((-1,) + x.shape[-2:])
    mean = np.empty((flat.shape[0], x.shape[-1]))
    m2 = np.empty_like(mean)
    _stats_kernel(flat, mean, m2)
    return SeqStats(mean.reshape(lead + (x.shape[-1],)), m2.reshape(lead + (x.shape[-1],)))


def candidate_lists(A: np.ndarray) -> np.ndarray:
    """(N, Jmax) int64 indices of the appropriate reactions of each row, padded with -1.

    Any 0/1 dtype is accepted (an appropriateness matrix loaded from ``.npy`` is often uint8,
    whose row sums are unsigned and would not index)."""
    A = np.asarray(A, dtype=bool)
    counts = A.sum(axis=1)
    jmax = int(counts.max())
    cand = np.full((A.shape[0], jmax), -1, dtype=np.int64)
    rows, cols = np.nonzero(A)
    pos = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
    cand[rows, pos] = cols
    return cand


@njit(parallel=True, cache=True, nogil=True)
def _centre_transpose(x, mean, out):  # pragma: no cover - compiled
    """out[n, d, t] = x[n, t, d] - mean[n, d] in float64 (time contiguous for the dot products)."""
    N, T, D = x.shape
    for n in prange(N):
        for t in range(T):
            for d in range(D):
                out[n, d, t] = x[n, t, d] - mean[n, d]


@njit(parallel=True, cache=True, nogil=True)
def _ccc_kernel(P, p_mean, p_var, Lt, l_mean, l_var, cand, out):  # pragma: no cover - compiled
    """out[n, k, c] = mean over d of CCC(L[cand[n, c]], P[n, k]) (-inf where cand < 0).

    P: (N, K, T, D) float32/float64; p_mean, p_var: (N, K, D); Lt: (M, D, T) float64 listener
    sequences already centred with l_mean (M, D), l_var: (M, D) population variances; cand:
    (N, J) candidate indices padded with -1. Each item's samples are centred and transposed to
    (D, K, T) once, so every covariance is a contiguous float64 dot product over time and a
    listener channel stays in L1 while it meets the K samples. Per dim the formula is exactly the
    vectorised one it replaces: r = cov / (sx sy) (0 when sx sy = 0, the official NaN -> 0),
    ccc = 2 r sx sy / (vx + vy + (mx - my)^2 + 1e-8).
    """
    N, K, T, D = P.shape
    J = cand.shape[1]
    for n in prange(N):
        xt = np.empty((D, K, T))
        for k in range(K):
            for t in range(T):
                for d in range(D):
                    xt[d, k, t] = P[n, k, t, d] - p_mean[n, k, d]
        acc = np.zeros((K, J))
        for d in range(D):
            for c in range(J):
                j = cand[n, c]
                if j < 0:
                    continue
                y = Lt[j, d]
                vy = l_var[j, d]
                sy = np.sqrt(vy)
                my = l_mean[j, d]
                for k in range(K):
                    vx = p_var[n, k, d]
                    sx = np.sqrt(vx)
                    sxy = sx * sy
                    r = 0.0
                    if sxy > 0:
                        r = (_dot(xt[d, k], y) / T) / sxy
                    dm = p_mean[n, k, d] - my
                    acc[k, c] += 2.0 * r * sx * sy / (vx + vy + dm * dm + 1e-8)
        for k in range(K):
            for c in range(J):
                out[n, k, c] = acc[k, c] / D if cand[n, c] >= 0 else -np.inf


def frcorr_items(
    P: np.ndarray,
    L: np.ndarray,
    A: np.ndarray,
    *,
    p_stats: SeqStats | None = None,
    l_stats: SeqStats | None = None,
) -> np.ndarray:
    """Per-item FRCorr terms ``sum_i max_{j in A[k]} CCC(L[j], P[k, i])``, shape (N,) float64.

    Their mean is :func:`frcorr`; paired comparisons of two runs (:mod:`reactcli.metrics.compare`)
    and item subsets read them directly. Means and variances come from :func:`seq_stats`
    (computed once and shared with FRVar); the cross-covariances of all (item, sample, candidate,
    dim) quadruples are float64 dot products over time in one compiled pass
    (:func:`_ccc_kernel`), which forms no (item, candidate, T, D) gather: the centred listeners are
    laid out (N, D, T) once and read in place.
    """
    N, K, T, D = P.shape
    P = _as_float(P)
    ps = p_stats or seq_stats(P)
    ls = l_stats or seq_stats(L)
    cand = candidate_lists(A)
    Lt = np.empty((L.shape[0], D, T))
    _centre_transpose(_as_float(L), np.ascontiguousarray(ls.mean, dtype=np.float64), Lt)
    ccc = np.empty((N, K, cand.shape[1]))
    _ccc_kernel(P, np.ascontiguousarray(ps.mean), np.ascontiguousarray(ps.m2 / T), Lt,
                np.ascontiguousarray(ls.mean), np.ascontiguousarray(ls.m2 / T), cand, ccc)
    return ccc.max(axis=2).sum(axis=1)


def frcorr(
    P: np.ndarray,
    L: np.ndarray,
    A: np.ndarray,
    *,
    p_stats: SeqStats | None = None,
    l_stats: SeqStats | None = None,
    chunk: int = 32,
) -> tuple[float, float]:
    """FRCorr: ``mean_k sum_i max_{j in A[k]} CCC(L[j], P[k, i])``; returns (official, per-sample).

    The mean of :func:`frcorr_items`. ``chunk`` is kept for API compatibility and unused.
    """
    del chunk
    official = float(frcorr_items(P, L, A, p_stats=p_stats, l_stats=l_stats).mean())
    return official, official / P.shape[1]


def frdist_items(
    P: np.ndarray,
    L: np.ndarray,
    A: np.ndarray,
    *,
    feature: str = "emotion",
    num_threads: int | None = None,
) -> np.ndarray:
    """Per-item FRdist terms ``sum_i min_{j in A[k]} weighted-DTW(P[k, i], L[j])``, shape (N,)."""
    N, K, T, D = P.shape
    groups, weights = _dtw_groups(feature, D)
    cand = candidate_lists(A)
    X = P.reshape(N * K, T, D)
    cand_rep = np.repeat(cand, K, axis=0)
    d = dtw_one_to_many(X, L, cand_rep, groups=groups, num_threads=num_threads)  # (NK, J, G)
    total = (d * np.asarray(weights)).sum(axis=-1)
    total = np.where(cand_rep >= 0, total, np.inf)
    return total.min(axis=1).reshape(N, K).sum(axis=1)


def frdist(
    P: np.ndarray,
    L: np.ndarray,
    A: np.ndarray,
    *,
    feature: str = "emotion",
    num_threads: int | None = None,
) -> tuple[float, float]:
    """FRdist: ``mean_k sum_i min_{j in A[k]} weighted-DTW(P[k, i], L[j])``; (official, per-sample).

    The mean of :func:`frdist_items`."""
    official = float(frdist_items(P, L, A, feature=feature, num_threads=num_threads).mean())
    return official, official / P.shape[1]


def _dtw_groups(feature: str, D: int):
    if feature == "emotion":
        return list(EMOTION_GROUPS), list(EMOTION_WEIGHTS)
    return [(0, D)], [1.0]


@njit(parallel=True, cache=True, nogil=True)
def _frdiv_kernel(P, out):  # pragma: no cover - compiled
    """out[n] = sum_{k,t,d} (P[n,k,t,d] - mean_k P[n,:,t,d])^2 in float64."""
    N, K, T, D = P.shape
    for n in prange(N):
        mu = np.zeros((T, D))
        for k in range(K):
            for t in range(T):
                for d in range(D):
                    mu[t, d] += P[n, k, t, d]
        for t in range(T):
            for d in range(D):
                mu[t, d] /= K
        total = 0.0
        for k in range(K):
            q = np.zeros(D)
            for t in range(T):
                for d in range(D):
                    c = P[n, k, t, d] - mu[t, d]
                    q[d] += c * c
            for d in range(D):
                total += q[d]
        out[n] = total


@njit(parallel=True, cache=True, nogil=True)
def _frdvs_kernel(P, out):  # pragma: no cover - compiled
    """out[k, t] = sum_{n,d} (P[n,k,t,d] - mean_n P[:,k,t,d])^2 in float64 (parallel over (k, t))."""
    N, K, T, D = P.shape
    for kt in prange(K * T):
        k = kt // T
        t = kt % T
        mu = np.zeros(D)
        for n in range(N):
            for d in range(D):
                mu[d] += P[n, k, t, d]
        for d in range(D):
            mu[d] /= N
        q = np.zeros(D)
        for n in range(N):
            for d in range(D):
                c = P[n, k, t, d] - mu[d]
                q[d] += c * c
        s = 0.0
        for d in range(D):
            s += q[d]
        out[k, t] = s


@njit(parallel=True, cache=True, nogil=True)
def _spread_items_kernel(P, mu, out):  # pragma: no cover - compiled
    """out[n] = sum_{k,t,d} (P[n,k,t,d] - mu[k,t,d])^2 in float64 (parallel over items)."""
    N, K, T, D = P.shape
    for n in prange(N):
        total = 0.0
        for k in range(K):
            for t in range(T):
                for d in range(D):
                    c = P[n, k, t, d] - mu[k, t, d]
                    total += c * c
        out[n] = total


def frdiv_items(P: np.ndarray) -> np.ndarray:
    """Per-item FRDiv terms ``sum_{a != b} ||P[k,a] - P[k,b]||^2 / (K (K-1) T D)``, shape (N,);
    their mean is :func:`frdiv` (up to float rounding); zeros when K = 1."""
    N, K, T, D = P.shape
    if K == 1:
        return np.zeros(N)
    per_item = np.empty(N)
    _frdiv_kernel(_as_float(P), per_item)
    return 2.0 * K * per_item / (K * (K - 1) * T * D)


def frdvs_items(P: np.ndarray) -> np.ndarray:
    """Per-item FRDvs terms, shape (N,): item n's share ``2 N sum_{k,t,d} (P[n,k,t,d] -
    mean_n' P[n',k,t,d])^2 / ((N-1) K T D)`` of the cross-item spread; their mean is :func:`frdvs`
    (up to float rounding). High: the item's reactions are far from the other items' (not
    collapsed onto a mean reaction)."""
    N, K, T, D = P.shape
    P = _as_float(P)
    mu = P.mean(axis=0, dtype=np.float64)
    q = np.empty(N)
    _spread_items_kernel(P, np.ascontiguousarray(mu), q)
    return 2.0 * N * q / ((N - 1) * K * T * D)


def frvar_items(P: np.ndarray, *, p_stats: SeqStats | None = None) -> np.ndarray:
    """Per-item FRVar terms: the unbiased variance over time averaged over K and D, shape (N,)."""
    T = P.shape[2]
    ps = p_stats or seq_stats(P)
    return (ps.m2 / (T - 1)).mean(axis=(1, 2))


def frdiv(P: np.ndarray, chunk: int = 64) -> float:
    """FRDiv (S-MSE): ``mean_k sum_{a != b} ||P[k,a] - P[k,b]||^2 / (K (K-1) T D)``; 0 when K = 1.

    Uses ``sum_{a,b} ||x_a - x_b||^2 = 2 K sum_a ||x_a - mean||^2`` per item, in one compiled
    float64 pass over the data (``chunk`` is kept for API compatibility and unused).
    """
    del chunk
    N, K, T, D = P.shape
    if K == 1:
        return 0.0
    per_item = np.empty(N)
    _frdiv_kernel(_as_float(P), per_item)
    return 2.0 * K * float(per_item.sum()) / (N * K * (K - 1) * T * D)


def frdvs(P: np.ndarray, chunk: int = 64) -> float:
    """FRDvs: ``sum_i sum_{k != k'} ||P[k,i] - P[k',i]||^2 / (N (N-1) K T D)``.

    Same identity as :func:`frdiv`, across items for each (sample, frame); one compiled float64
    pass (``chunk`` is kept for API compatibility and unused).
    """
    del chunk
    N, K, T, D = P.shape
    per_frame = np.empty((K, T))
    _frdvs_kernel(_as_float(P), per_frame)
    return 2.0 * N * float(per_frame.sum()) / (N * (N - 1) * K * T * D)


def frvar(P: np.ndarray, *, p_stats: SeqStats | None = None) -> float:
    """FRVar: unbiased (ddof=1) variance over time, averaged over N, K and D."""
    T = P.shape[2]
    ps = p_stats or seq_stats(P)
    return float((ps.m2 / (T - 1)).mean())


def frsyn(P: np.ndarray, S: np.ndarray, *, compat: str = "default") -> tuple[float | None, int]:
    """FRSyn: mean |best lag| (see :func:`reactcli.metrics.tlcc.frsyn_scores`).

    Returns (value or None if no sample is defined, number of undefined samples).
    """
    scores, _ = frsyn_scores(P, S, max_lag=MAX_LAG, compat=compat)
    undefined = int(np.isnan(scores).sum())
    if undefined == scores.size:
        return None, undefined
    return float(np.nanmean(scores)), undefined


def _first_bad(a: np.ndarray) -> tuple[int, ...] | None:
    bad = ~np.isfinite(a)
    if not bad.any():
        return None
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), a.shape))


def validate_inputs(
    pred: Any,
    listener: Any,
    speaker: Any,
    appropriate: Any,
    *,
    feature: str = "emotion",
    compat: str = "default",
    allow_single_sample: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Check shapes and values; return float32 P, L, S and a bool A. Raises InputError/ConfigError."""
    if feature not in FEATURES:
        raise ConfigError(f"feature must be one of {FEATURES}, got {feature!r}")
    if compat not in COMPAT_MODES:
        raise ConfigError(f"compat must be one of {COMPAT_MODES}, got {compat!r}")
    P = np.asarray(pred)
    L = np.asarray(listener)
    S = np.asarray(speaker)
    A = np.asarray(appropriate)
    if P.ndim != 4:
        raise InputError(f"predictions: expected shape (N, K, T, D), got {P.shape}")
    N, K, T, D = P.shape
    for name, arr in (("listener", L), ("speaker", S)):
        if arr.shape != (N, T, D):
            raise InputError(
                f"{name}: expected shape (N, T, D) = {(N, T, D)} to match predictions {P.shape}, "
                f"got {arr.shape}"
            )
    if A.shape != (N, N):
        raise InputError(f"appropriateness matrix: expected shape ({N}, {N}), got {A.shape}")
    if N < 2:
        raise InputError(f"predictions: FRDvs needs at least 2 items, got N = {N}")
    if feature == "emotion" and D != 25:
        raise InputError(f"predictions: the emotion protocol needs D = 25 dims, got D = {D} "
                         "(use feature='tdmm' for a single DTW over all dims)")
    if T - MAX_LAG < 2:
        raise InputError(f"predictions: T = {T} frames is too short for the FRSyn lag window "
                         f"-{MAX_LAG}..{MAX_LAG} (need T >= {MAX_LAG + 2})")
    if K == 1 and not allow_single_sample:
        raise InputError("predictions: K = 1 sample per item; FRDiv (diversity among samples) is "
                         "undefined in spirit (0 by definition). Generate K > 1 samples, or pass "
                         "allow_single_sample=True to report FRDiv = 0")
    for name, arr in (("predictions", P), ("listener", L), ("speaker", S)):
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise InputError(f"{name}: expected real numbers, got dtype {arr.dtype}")
        bad = _first_bad(arr)
        if bad is not None:
            raise InputError(f"{name}: non-finite value {arr[bad]} at index {bad}")
    if not np.isin(A, (0, 1)).all():
        raise InputError("appropriateness matrix: entries must be 0 or 1")
    empty = np.flatnonzero(A.sum(axis=1) == 0)
    if empty.size:
        raise InputError(f"appropriateness matrix: row {int(empty[0])} has no appropriate reaction "
                         f"({empty.size} empty row(s) in total: {empty[:10].tolist()})")
    as32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    return as32(P), as32(L), as32(S), A.astype(bool)


def evaluate_arrays(pred: Any, listener: Any, speaker: Any, appropriate: Any, **kwargs: Any) -> dict:
    """All REACT metrics as a JSON-ready dict (keyword arguments: :func:`evaluate_with_items`).

    Returns:
        dict with FRCorr (official sum over K), FRCorr_per_sample, FRdist, FRdist_per_sample,
        FRDiv, FRDvs, FRVar, FRSyn, FRRea (+ notes), protocol, feature, compat, N, K, T, D,
        reactcli_version and timings_s per metric; with ``naturalness`` (computed by default, not
        one of the six challenge metrics, see :mod:`reactcli.metrics.naturalness`) the dict
        ``naturalness`` and its headline ratios at the top level (``seam_score``,
        ``velocity_ratio``, ``acceleration_ratio``, ``jerk_ratio``, ``window_variance_ratio``), on
        dims 15:25 for the emotion protocol and all dims otherwise.
    """
    return evaluate_with_items(pred, listener, speaker, appropriate, with_items=False, **kwargs)[0]


def evaluate_with_items(
    pred: Any,
    listener: Any,
    speaker: Any,
    appropriate: Any,
    *,
    feature: str = "emotion",
    compat: str = "default",
    num_threads: int | None = None,
    fid: float | dict | None = None,
    allow_single_sample: bool = False,
    metrics: tuple[str, ...] | None = None,
    with_items: bool = True,
) -> tuple[dict, dict[str, np.ndarray]]:
    """All REACT metrics as a JSON-ready dict, and each metric's per-item terms.

    Args:
        pred, listener, speaker, appropriate: P (N,K,T,D), L (N,T,D), S (N,T,D), A (N,N) 0/1.
        feature: ``"emotion"`` (3 grouped DTWs) or ``"tdmm"`` (one DTW over all dims).
        compat: ``"default"`` or ``"official"``; only FRSyn differs between them.
        num_threads: threads for the compiled DTW/TLCC kernels (default: all).
        fid: a FID result (float, or a dict with key ``"fid"``) for FRRea; None -> unavailable.
        allow_single_sample: accept K = 1 and report FRDiv = 0 (otherwise an InputError).
        metrics: subset of metric names to compute (default: all, ``naturalness`` included).

        with_items: also return the per-item terms of FRDiv, FRDvs, FRVar and FRSyn (FRCorr's and
            FRdist's come at no cost; the others take one more cheap pass each).

    Returns:
        ``(result, items)``: ``result`` as :func:`evaluate_arrays`; ``items`` maps a metric name to
        its (N,) float64 per-item terms: ``FRCorr``, ``FRdist`` (and their ``_per_sample``
        forms), ``FRDiv``, ``FRDvs``, ``FRVar`` (each item's share: their mean is the official
        value, exactly for FRCorr/FRdist, up to float rounding for the others) and ``FRSyn`` (the
        mean |best lag| of the item's defined samples, NaN when none is defined; the official
        FRSyn is the mean over all defined samples, so it weighs items by their defined samples).

        With ``naturalness`` (not one of the six challenge metrics, see
        :mod:`reactcli.metrics.naturalness`) ``result`` also holds the dict ``naturalness`` and its
        headline ratios at the top level (``seam_score``, ``velocity_ratio``, ``acceleration_ratio``,
        ``jerk_ratio``, ``window_variance_ratio``), on dims 15:25 for the emotion protocol and all
        dims otherwise.
    """
    P, L, S, A = validate_inputs(pred, listener, speaker, appropriate, feature=feature,
                                 compat=compat, allow_single_sample=allow_single_sample)
    N, K, T, D = P.shape
    wanted = set(metrics or ("FRCorr", "FRdist", "FRDiv", "FRDvs", "FRVar", "FRSyn", "naturalness"))
    if num_threads is not None:
        from numba import set_num_threads
        import os

        set_num_threads(max(1, min(int(num_threads), os.cpu_count() or 1)))
    timings: dict[str, float] = {}
    result: dict[str, Any] = {}
    items: dict[str, np.ndarray] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        value = fn()
        timings[name] = round(time.perf_counter() - t0, 4)
        return value

    p_stats = None
    if wanted & {"FRCorr", "FRVar"}:
        p_stats = timed("stats", lambda: seq_stats(P))
    if "FRCorr" in wanted:
        # frcorr() is the mean of these terms: the same float as calling it
        terms = timed("FRCorr", lambda: frcorr_items(P, L, A, p_stats=p_stats))
        result["FRCorr"] = float(terms.mean())
        result["FRCorr_per_sample"] = result["FRCorr"] / K
        items["FRCorr"], items["FRCorr_per_sample"] = terms, terms / K
    if "FRdist" in wanted:
        terms = timed("FRdist", lambda: frdist_items(P, L, A, feature=feature, num_threads=num_threads))
        result["FRdist"] = float(terms.mean())
        result["FRdist_per_sample"] = result["FRdist"] / K
        items["FRdist"], items["FRdist_per_sample"] = terms, terms / K
    if "FRDiv" in wanted:
        result["FRDiv"] = timed("FRDiv", lambda: frdiv(P))
        if with_items:
            items["FRDiv"] = frdiv_items(P)
    if "FRDvs" in wanted:
        result["FRDvs"] = timed("FRDvs", lambda: frdvs(P))
        if with_items:
            items["FRDvs"] = frdvs_items(P)
    if "FRVar" in wanted:
        result["FRVar"] = timed("FRVar", lambda: frvar(P, p_stats=p_stats))
        if with_items:
            items["FRVar"] = frvar_items(P, p_stats=p_stats)
    if "FRSyn" in wanted:
        scores, _ = timed("FRSyn", lambda: frsyn_scores(P, S, max_lag=MAX_LAG, compat=compat))
        undefined = int(np.isnan(scores).sum())  # as frsyn()
        value = None if undefined == scores.size else float(np.nanmean(scores))
        result["FRSyn"] = value
        result["FRSyn_undefined_samples"] = undefined
        if value is None:
            result["FRSyn_note"] = "every sample has only constant channels at every lag"
        if with_items:
            defined = (~np.isnan(scores)).sum(axis=1)
            items["FRSyn"] = np.where(defined > 0, np.nansum(scores, axis=1) / np.maximum(defined, 1), np.nan)
    if "naturalness" in wanted:
        nat = timed("naturalness", lambda: naturalness(
            P, L, dims=CONTINUOUS_DIMS if feature == "emotion" else None))
        result["naturalness"] = nat
        result.update({key: nat[key] for key, _, _ in HEADLINE})
    if fid is None:
        result["FRRea"] = None
        result["FRRea_note"] = ("unavailable: FID needs rendered frames and local InceptionV3 "
                                "weights (--inception-weights)")
    else:
        result["FRRea"] = float(fid["fid"] if isinstance(fid, dict) else fid)
    result.update(
        protocol=PROTOCOLS[feature],
        feature=feature,
        compat=compat,
        FRCorr_note="FRCorr is the official sum over the K samples; FRCorr_per_sample = FRCorr / K",
        N=N, K=K, T=T, D=D,
        reactcli_version=reactcli.__version__,
        timings_s=timings,
    )
    return result, items
