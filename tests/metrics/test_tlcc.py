"""The compiled TLCC kernel against the per-lag, per-channel Pearson reference (reference.py).

Random inputs with the awkward cases built in: whole constant channels, channels constant only
over a prefix or suffix (so only some lags' windows are constant), a speaker with constant runs,
float32 and float64 inputs, a short T where the outermost windows are only a few frames long.
"""

from __future__ import annotations

import numpy as np
import pytest

from reactcli.metrics import reference as ref
from reactcli.metrics.tlcc import frsyn_scores, tlcc_sums


def _inputs(seed: int, N: int = 4, K: int = 3, T: int = 120, D: int = 6, dtype=np.float32):
    rng = np.random.default_rng(seed)
    # Smoothed noise, so the correlation curves have real peaks rather than flat noise.
    S = np.cumsum(rng.standard_normal((N, T, D)), axis=1)
    P = np.empty((N, K, T, D))
    for n in range(N):
        for k in range(K):
            lag = int(rng.integers(-20, 21))
            P[n, k] = np.roll(S[n], lag, axis=0) + 0.5 * rng.standard_normal((T, D))
    P[0, 0, :, 1] = 0.25  # whole channel constant: undefined at every lag
    P[1, 1, :70, 2] = 3.0  # constant prefix: windows x[:T+l] constant for l <= -50
    P[1, 2, -65:, 0] = -1.0  # constant suffix: x[l:] constant for l >= 55 (only with T > 104)
    P[2, 0, -80:, 3] = 2.0  # constant suffix reaching into the lag window
    S[2, :60, 4] = 0.5  # speaker constant prefix
    S[3, -90:, 5] = 1.5  # speaker constant suffix
    return P.astype(dtype), S.astype(dtype)


def _ref_best(curve: np.ndarray, compat: str) -> int | None:
    """Lag index the reference picks (None: no defined lag), mirroring reference.tlcc_score."""
    if compat == "official":
        return int(np.argmax(curve.mean(axis=1)))
    ok = ~np.isnan(curve).all(axis=1)
    if not ok.any():
        return None
    with np.errstate(all="ignore"):
        mean = np.where(ok, np.nanmean(curve, axis=1), -np.inf)
    return int(np.argmax(mean))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T", [120, 56])
def test_sums_match_reference_curves(dtype, T):
    P, S = _inputs(seed=11, T=T, dtype=dtype)
    r_sum, n_def = tlcc_sums(P, S, 49)
    N, K = P.shape[:2]
    for n in range(N):
        for k in range(K):
            curve = ref.tlcc_curve(P[n, k], S[n], 49)  # (99, D), NaN where a window is constant
            defined = ~np.isnan(curve)
            np.testing.assert_array_equal(n_def[n, k], defined.sum(axis=1))  # exact detection
            np.testing.assert_allclose(r_sum[n, k], np.where(defined, curve, 0.0).sum(axis=1),
                                       rtol=0, atol=1e-10)


@pytest.mark.parametrize("compat", ["default", "official"])
@pytest.mark.parametrize("seed", [0, 1])
def test_scores_and_lags_match_reference(compat, seed):
    P, S = _inputs(seed=seed)
    scores, best = frsyn_scores(P, S, max_lag=49, compat=compat)
    N, K = P.shape[:2]
    ks = 1 if compat == "official" else K
    assert scores.shape == best.shape == (N, ks)
    for n in range(N):
        for k in range(ks):
            want = _ref_best(ref.tlcc_curve(P[n, k], S[n], 49), compat)
            assert best[n, k] == want, (n, k)
            assert scores[n, k] == ref.tlcc_score(P[n, k], S[n], compat=compat), (n, k)
    assert np.isfinite(scores).all()
    if compat == "official":
        # By hand: item 0 has a whole constant channel -> lag -49 (index 0) is NaN -> 49. Item 2's
        # x[40:] is constant -> the first NaN lag is +40. Item 3's speaker y[30:] is constant
        # -> lags -49..-30 are NaN -> 49.
        assert scores[0, 0] == 49.0 and best[2, 0] == 49 + 40 and scores[3, 0] == 49.0


def test_frsyn_mean_matches_reference_both_modes():
    P, S = _inputs(seed=2, N=4, K=3, T=80)
    for compat in ("default", "official"):
        scores, _ = frsyn_scores(P, S, compat=compat)
        assert float(np.nanmean(scores)) == ref.frsyn(P, S, compat=compat)


def test_integer_inputs_are_accepted_as_float64():
    rng = np.random.default_rng(6)
    S = rng.integers(0, 5, size=(2, 70, 3))
    P = np.stack([np.roll(S, 4, axis=1), rng.integers(0, 5, size=(2, 70, 3))], axis=1)
    a = frsyn_scores(P, S)
    b = frsyn_scores(P.astype(np.float64), S.astype(np.float64))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
