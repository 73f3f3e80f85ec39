"""REACT metrics: hand-computed values, per-pair reference, identities, named errors."""

from __future__ import annotations

import numpy as np
import pytest

from reactcli.errors import ConfigError, InputError
from reactcli.metrics import core, reference as ref
from reactcli.metrics.core import evaluate_arrays


def _inputs(seed=0, N=4, K=3, T=56, D=25):
    rng = np.random.default_rng(seed)
    P = rng.random((N, K, T, D)).astype(np.float32)
    L = rng.random((N, T, D)).astype(np.float32)
    S = rng.random((N, T, D)).astype(np.float32)
    A = rng.random((N, N)) < 0.5
    np.fill_diagonal(A, True)
    return P, L, S, A


# ---------------------------------------------------------------- hand-computed values


def test_frcorr_by_hand():
    # T=4, D=2. dim 0: x=[1,2,3,4], y=2x: mx=2.5 vx=1.25, my=5 vy=5, r=1,
    # ccc = 2*1*sqrt(1.25)*sqrt(5) / (1.25 + 5 + 2.5^2) = 5 / 12.5 = 0.4.
    # dim 1: listener constant -> r := 0 -> ccc = 0.  CCC = mean = 0.2.
    p = np.array([[1, 7], [2, 8], [3, 7], [4, 9]], dtype=np.float32)
    l_good = np.array([[2, 3], [4, 3], [6, 3], [8, 3]], dtype=np.float32)
    l_bad = -l_good  # dim 0: r = -1 -> ccc = -5 / (1.25 + 5 + 7.5^2) < 0
    P = np.stack([p, p])[None]  # N=1, K=2
    L = np.stack([l_good, l_bad])
    A = np.array([[1, 1]], dtype=bool)
    official, per_sample = core.frcorr(P, L[:, :, :], np.array([[True, True]]))
    # max over the two candidates picks 0.2 for each of the K=2 samples: sum = 0.4.
    assert official == pytest.approx(0.4, abs=1e-8)
    assert per_sample == pytest.approx(0.2, abs=1e-8)
    assert ref.ccc(l_good, p) == pytest.approx(0.2, abs=1e-8)
    del A


def test_frdist_single_group_by_hand():
    # 1-d DTW x=[0,1,2], y=[0,2]: costs [[0,4],[1,1],[4,0]];
    # D: D00=0 D01=4 / D10=1 D11=1+0=1 / D20=5 D21=0+min(1,5,1)=1 -> sqrt(1) = 1.
    x = np.array([0, 1, 2], dtype=np.float32)[:, None]
    y = np.array([0, 2], dtype=np.float32)[:, None]
    from reactcli.kernels.dtw import dtw_pairs

    assert dtw_pairs(x[None], y[None])[0] == pytest.approx(1.0)
    # FRdist with two candidates: one at distance 1 (the y above, length-matched with a repeat)
    # and an identical copy (distance 0): min -> 0 for the copy.
    P = np.array([0, 1, 2], dtype=np.float32).reshape(1, 1, 3, 1).repeat(2, axis=0)
    L = np.stack([np.array([0, 2, 2], np.float32), np.array([0, 1, 2], np.float32)])[:, :, None]
    A = np.array([[1, 0], [1, 1]], dtype=bool)
    # row 0: only L[0] = [0,2,2]: costs [[0,4,4],[1,1,1],[4,0,0]] -> best path 0+1+0+0 = 1 -> 1.
    # row 1: min(1, DTW to itself = 0) = 0.  FRdist = mean(1, 0) = 0.5 (K=1).
    official, per_sample = core.frdist(P, L, A, feature="tdmm")
    assert official == pytest.approx(0.5)
    assert per_sample == pytest.approx(0.5)


def test_diversity_by_hand():
    # FRDiv: one item, K=2, T=1, D=2: ||[0,0]-[1,2]||^2 = 5, both orders: 10 / (2*1*1*2) = 2.5
    P = np.array([[[[0, 0]], [[1, 2]]]], dtype=np.float32)
    assert core.frdiv(P) == pytest.approx(2.5)
    # FRDvs: N=2, K=1, T=1, D=1, values 0 and 3: (9 + 9) / (2*1*1*1*1) = 9
    Q = np.array([[[[0.0]]], [[[3.0]]]], dtype=np.float32)
    assert core.frdvs(Q) == pytest.approx(9.0)
    # FRVar: [1,2,3] over time, ddof=1 -> 1; [0,0,3] -> var = 3; mean = 2
    R = np.array([[[[1, 0], [2, 0], [3, 3]]]], dtype=np.float32)
    assert core.frvar(R) == pytest.approx(2.0)


# ---------------------------------------------------------------- reference on random inputs


@pytest.mark.parametrize("compat", ["default", "official"])
def test_matches_per_pair_reference(compat):
    P, L, S, A = _inputs(seed=3)
    P[0, 0, :, 3] = 0.5  # a constant channel (FRSyn NaN quirk)
    S[1, :30, 2] = 1.0  # constant only in some windows
    res = evaluate_arrays(P, L, S, A, compat=compat)
    assert res["FRCorr"] == pytest.approx(ref.frcorr(P, L, A), rel=1e-9)
    assert res["FRCorr_per_sample"] == pytest.approx(ref.frcorr(P, L, A) / 3, rel=1e-9)
    assert res["FRdist"] == pytest.approx(ref.frdist(P, L, A, dtw_fn=ref.dtw_rowwise), rel=1e-5)
    assert res["FRDiv"] == pytest.approx(ref.frdiv(P), rel=1e-9)
    assert res["FRDvs"] == pytest.approx(ref.frdvs(P), rel=1e-9)
    assert res["FRVar"] == pytest.approx(ref.frvar(P), rel=1e-9)
    assert res["FRSyn"] == pytest.approx(ref.frsyn(P, S, compat=compat))


def test_tdmm_feature_single_dtw():
    P, L, S, A = _inputs(seed=4, D=6)
    res = evaluate_arrays(P, L, S, A, feature="tdmm", metrics=("FRdist",))
    assert res["FRdist"] == pytest.approx(ref.frdist(P, L, A, feature="tdmm", dtw_fn=ref.dtw_rowwise),
                                          rel=1e-5)


def test_only_frsyn_differs_between_compat_modes():
    P, L, S, A = _inputs(seed=5)
    P[:, :, :, 0] = 0.25  # constant channel everywhere: official picks lag index 0 -> 49
    a = evaluate_arrays(P, L, S, A, compat="default")
    b = evaluate_arrays(P, L, S, A, compat="official")
    for key in ("FRCorr", "FRCorr_per_sample", "FRdist", "FRdist_per_sample", "FRDiv", "FRDvs", "FRVar"):
        assert a[key] == b[key], key
    assert b["FRSyn"] == 49.0
    assert a["FRSyn"] != 49.0


# ---------------------------------------------------------------- identities


def test_uniform_noise_identities():
    rng = np.random.default_rng(7)
    P = rng.random((16, 10, 100, 25)).astype(np.float32)
    assert core.frvar(P) == pytest.approx(1 / 12, rel=0.02)
    assert core.frdiv(P) == pytest.approx(1 / 6, rel=0.02)
    assert core.frdvs(P) == pytest.approx(1 / 6, rel=0.02)


def test_copying_the_listener_gives_zero_distance_and_max_corr():
    P, L, S, A = _inputs(seed=8)
    P[:] = L[:, None]
    res = evaluate_arrays(P, L, S, A)
    assert res["FRdist"] == 0.0
    # CCC(x, x) = 2 var / (2 var + 1e-8) ~ 1 per dim -> sum over K = 3
    assert res["FRCorr"] == pytest.approx(3.0, abs=1e-6)


# ---------------------------------------------------------------- named errors


def test_errors_are_named():
    P, L, S, A = _inputs(seed=9)
    with pytest.raises(InputError, match="listener: expected shape"):
        evaluate_arrays(P, L[:, :-1], S, A)
    A2 = A.copy()
    A2[2] = False
    with pytest.raises(InputError, match="row 2 has no appropriate"):
        evaluate_arrays(P, L, S, A2)
    P2 = P.copy()
    P2[1, 0, 3, 4] = np.nan
    with pytest.raises(InputError, match=r"predictions: non-finite value nan at index \(1, 0, 3, 4\)"):
        evaluate_arrays(P2, L, S, A)
    with pytest.raises(InputError, match="K = 1"):
        evaluate_arrays(P[:, :1], L, S, A)
    res = evaluate_arrays(P[:, :1], L, S, A, allow_single_sample=True, metrics=("FRDiv",))
    assert res["FRDiv"] == 0.0
    with pytest.raises(InputError, match="too short for the FRSyn lag window"):
        evaluate_arrays(P[:, :, :50], L[:, :50], S[:, :50], A)
    with pytest.raises(InputError, match="D = 25"):
        evaluate_arrays(P[..., :6], L[..., :6], S[..., :6], A)
    with pytest.raises(ConfigError, match="compat"):
        evaluate_arrays(P, L, S, A, compat="nope")
    with pytest.raises(InputError, match="entries must be 0 or 1"):
        evaluate_arrays(P, L, S, A * 2)


def test_report_keys_and_frrea_unavailable():
    P, L, S, A = _inputs(seed=10)
    res = evaluate_arrays(P, L, S, A)
    for key in ("FRCorr", "FRCorr_per_sample", "FRdist", "FRdist_per_sample", "FRDiv", "FRDvs",
                "FRVar", "FRSyn", "FRRea", "protocol", "K", "N", "T", "D", "compat",
                "reactcli_version", "timings_s"):
        assert key in res
    assert res["FRRea"] is None and "unavailable" in res["FRRea_note"]
    assert evaluate_arrays(P, L, S, A, fid=12.5, metrics=("FRVar",))["FRRea"] == 12.5
