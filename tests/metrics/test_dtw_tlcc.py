"""DTW kernel vs the textbook recursion; torch wavefront vs numba; TLCC lag recovery."""

from __future__ import annotations

import numpy as np
import pytest

from reactcli.metrics import reference as ref
from reactcli.kernels.dtw import dtw_one_to_many, dtw_pairs, dtw_torch
from reactcli.metrics.tlcc import frsyn_scores


def test_dtw_matches_textbook_recursion_unequal_lengths_and_groups():
    rng = np.random.default_rng(0)
    X = rng.random((5, 23, 6)).astype(np.float32)
    Y = rng.random((5, 17, 6)).astype(np.float32)
    groups = [(0, 1), (1, 5), (5, 6)]
    got = dtw_pairs(X, Y, groups=groups)
    for m in range(5):
        for g, (lo, hi) in enumerate(groups):
            assert got[m, g] == pytest.approx(ref.dtw(X[m, :, lo:hi], Y[m, :, lo:hi]), rel=1e-5)


def test_one_to_many_handles_ragged_candidates_and_many_lanes():
    rng = np.random.default_rng(1)
    X = rng.random((3, 30, 4)).astype(np.float32)
    Y = rng.random((20, 30, 4)).astype(np.float32)
    cand = np.full((3, 11), -1)
    cand[0, :11] = np.arange(11)  # more than one lane block
    cand[1, [0, 5]] = [19, 3]  # padding in the middle
    cand[2, 10] = 7
    got = dtw_one_to_many(X, Y, cand)
    for m in range(3):
        for c in range(11):
            if cand[m, c] < 0:
                assert np.isnan(got[m, c, 0])
            else:
                assert got[m, c, 0] == pytest.approx(ref.dtw(X[m], Y[cand[m, c]]), rel=1e-5)


def test_torch_wavefront_matches_numba():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    X = rng.random((4, 19, 5)).astype(np.float32)
    Y = rng.random((4, 26, 5)).astype(np.float32)
    groups = [(0, 3), (3, 5)]
    a = dtw_pairs(X, Y, groups=groups)
    b = dtw_torch(torch.from_numpy(X).double(), torch.from_numpy(Y).double(), groups=groups).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-5)


def test_tlcc_recovers_known_lag():
    rng = np.random.default_rng(3)
    T, D = 300, 4
    S = rng.standard_normal((1, T, D))
    P = np.empty((1, 2, T, D))
    P[0, 0, 7:] = S[0, :-7]  # P[t] = S[t - 7] -> best lag +7
    P[0, 0, :7] = rng.standard_normal((7, D))
    P[0, 1, :-12] = S[0, 12:]  # P[t] = S[t + 12] -> best lag -12
    P[0, 1, -12:] = rng.standard_normal((12, D))
    scores, best = frsyn_scores(P, S, max_lag=49)
    assert scores.tolist() == [[7.0, 12.0]]
    assert (best - 49).tolist() == [[7, -12]]


def test_tlcc_constant_channel_quirk():
    rng = np.random.default_rng(4)
    T, D = 200, 3
    S = rng.standard_normal((1, T, D))
    P = np.empty((1, 2, T, D))
    P[0, 0, 3:] = S[0, :-3]
    P[0, 0, :3] = 0.0
    P[0, 0, :, 1] = 2.0  # constant channel: Pearson NaN at every lag
    P[0, 1] = rng.standard_normal((T, D))
    default, _ = frsyn_scores(P, S, max_lag=49)
    official, _ = frsyn_scores(P, S, max_lag=49, compat="official")
    assert default[0, 0] == 3.0  # the constant channel is ignored
    assert official.shape == (1, 1)  # first sample only
    assert official[0, 0] == 49.0  # first NaN lag (index 0 = lag -49) wins
    assert official[0, 0] == ref.tlcc_score(P[0, 0], S[0], compat="official")
    assert default[0, 0] == ref.tlcc_score(P[0, 0], S[0])


def test_tlcc_fully_constant_sample_is_undefined_not_a_number():
    S = np.random.default_rng(5).standard_normal((1, 80, 2))
    P = np.ones((1, 1, 80, 2))
    scores, _ = frsyn_scores(P, S, max_lag=49)
    assert np.isnan(scores[0, 0])
