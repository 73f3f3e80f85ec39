"""Compiled FRCorr / stats / diversity kernels against the per-pair reference (reference.py)."""

from __future__ import annotations

import numpy as np
import pytest

from reactcli.metrics import core
from reactcli.metrics import reference as ref


def _inputs(seed: int, N: int = 6, K: int = 3, T: int = 90, D: int = 25, dtype=np.float32):
    rng = np.random.default_rng(seed)
    P = rng.random((N, K, T, D)).astype(dtype)
    L = rng.random((N, T, D)).astype(dtype)
    # Listeners correlated with some predictions so the max over candidates is not noise.
    L[1] = (P[1, 0] + 0.1 * rng.random((T, D))).astype(dtype)
    P[0, 1, :, 4] = 0.7  # constant prediction channel: r := 0 for it
    P[2, :, :, 0] = 100.25  # constant in every sample, large offset
    L[3, :, 7] = 0.3  # constant listener channel
    L[:, :, 24] = 0.0  # a dim constant in every listener
    A = rng.random((N, N)) < 0.4
    np.fill_diagonal(A, True)
    if N > 5:
        A[4] = False
        A[4, [0, 5]] = True  # ragged rows: candidate lists padded with -1
    return P, L, A


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_frcorr_matches_reference_with_constant_channels(dtype):
    P, L, A = _inputs(seed=1, dtype=dtype)
    official, per_sample = core.frcorr(P, L, A)
    want = ref.frcorr(P, L, A)
    assert official == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert per_sample == pytest.approx(want / P.shape[1], rel=1e-12, abs=1e-12)


def test_frcorr_per_pair_values_match_reference():
    # Single candidate per row: FRCorr's max is trivial, so the sum exposes every CCC term.
    P, L, _ = _inputs(seed=2, N=4, K=2)
    A = np.eye(4, dtype=bool)[[1, 3, 0, 2]]
    got, _ = core.frcorr(P, L, A)
    want = sum(ref.ccc(L[np.flatnonzero(A[k])[0]], P[k, i]) for k in range(4) for i in range(2)) / 4
    assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.float32])
def test_frcorr_and_frdist_accept_any_zero_one_matrix_dtype(dtype):
    """The public kernels take the matrix as loaded from .npy (uint8 used to fail: unsigned row sums)."""
    P, L, A = _inputs(seed=3)
    assert core.candidate_lists(A.astype(dtype)).tolist() == core.candidate_lists(A).tolist()
    assert core.frcorr(P, L, A.astype(dtype)) == core.frcorr(P, L, A)
    assert core.frdist(P, L, A.astype(dtype)) == core.frdist(P, L, A)


def test_seq_stats_exact_zero_variance_for_constant_channels():
    P, _, _ = _inputs(seed=3)
    st = core.seq_stats(P)
    assert (st.m2[2, :, 0] == 0.0).all() and (st.mean[2, :, 0] == 100.25).all()
    assert st.m2[0, 1, 4] == 0.0
    x = P.astype(np.float64)
    np.testing.assert_allclose(st.mean, x.mean(axis=2), rtol=1e-13)
    np.testing.assert_allclose(st.m2, ((x - x.mean(axis=2, keepdims=True)) ** 2).sum(axis=2),
                               rtol=1e-12)


def test_diversity_matches_reference():
    P, _, _ = _inputs(seed=4, N=5, K=4, T=40)
    assert core.frdiv(P) == pytest.approx(ref.frdiv(P), rel=1e-12)
    assert core.frdvs(P) == pytest.approx(ref.frdvs(P), rel=1e-12)
    assert core.frdiv(P.astype(np.float64)) == pytest.approx(ref.frdiv(P), rel=1e-12)
