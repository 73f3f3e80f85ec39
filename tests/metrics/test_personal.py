"""Personal appropriateness (reactcli.metrics.personal): matrix rule, hand-checked scores, errors."""

from __future__ import annotations

import numpy as np
import pytest

from reactcli.errors import InputError
from reactcli.metrics.personal import personal_matrix, personal_scores


def _ccc(x: np.ndarray, y: np.ndarray) -> float:
    """Plain-numpy CCC averaged over dims (official convention, ddof 0), independent of core.py."""
    out = []
    for d in range(x.shape[1]):
        a, b = x[:, d].astype(np.float64), y[:, d].astype(np.float64)
        sa, sb = a.std(), b.std()
        r = 0.0 if sa == 0 or sb == 0 else float(np.corrcoef(a, b)[0, 1])
        out.append(2 * r * sa * sb / (a.var() + b.var() + (a.mean() - b.mean()) ** 2 + 1e-8))
    return float(np.mean(out))


def test_matrix_keeps_same_identity_and_diagonal():
    A = np.array([[1, 1, 1, 0],
                  [0, 0, 1, 1],   # row without its own diagonal: the diagonal is added back
                  [1, 0, 1, 1],
                  [1, 1, 1, 1]])
    ids = np.array([7, 7, 3, 3])
    expected = np.array([[1, 1, 0, 0],
                         [0, 1, 0, 0],
                         [0, 0, 1, 1],
                         [0, 0, 1, 1]], bool)
    np.testing.assert_array_equal(personal_matrix(A, ids), expected)


def test_scores_prefer_the_listener_own_style():
    """Two listeners with opposite styles; the challenge A accepts both for every item.

    A 'generic' predictor that outputs the other listener's reaction is perfect on the challenge
    FRCorr (it is an appropriate reaction) but not on the personal one; a 'personal' predictor
    that outputs the own listener's reaction is perfect on both.
    """
    rng = np.random.default_rng(0)
    T, D, K = 80, 3, 2
    base = rng.normal(size=(T, D))
    L = np.stack([base + 1.0, base.copy() * 0.5 + 1.0, -base, -base * 0.5]).astype(np.float32)
    ids = np.array([0, 0, 1, 1])
    A = np.ones((4, 4), int)
    other = np.array([2, 3, 0, 1])
    generic = np.repeat(L[other][:, None], K, axis=1)
    personal = np.repeat(L[:, None], K, axis=1)
    g = personal_scores(generic, L, A, ids, feature="tdmm")
    p = personal_scores(personal, L, A, ids, feature="tdmm")
    assert p["personal_FRCorr"] == pytest.approx(K, abs=1e-6)
    assert p["personal_FRdist"] == pytest.approx(0.0, abs=1e-5)
    # hand/independent reference for the generic one: best CCC among the same-identity reactions
    Ap = personal_matrix(A, ids)
    ref = np.mean([K * max(_ccc(L[j], L[other[k]]) for j in np.flatnonzero(Ap[k])) for k in range(4)])
    assert g["personal_FRCorr"] == pytest.approx(ref, rel=1e-6)
    assert g["personal_FRCorr"] < p["personal_FRCorr"] - 1.0
    assert g["personal_FRdist"] > 1.0
    assert g["personal_FRCorr_per_sample"] == pytest.approx(g["personal_FRCorr"] / K)
    assert (g["personal_references_min"], g["personal_references_max"]) == (2, 2)


def test_item_groups_split_the_mean_and_keep_all_references():
    """Group scores are the same formula over a subset of items; sizes weight them back to the whole."""
    rng = np.random.default_rng(1)
    N, K, T, D = 6, 3, 60, 4
    L = rng.normal(size=(N, T, D)).astype(np.float32)
    P = (L[:, None] + 0.5 * rng.normal(size=(N, K, T, D))).astype(np.float32)
    A = (rng.random((N, N)) < 0.4).astype(int)
    ids = np.array([0, 0, 1, 1, 2, 2])
    seen = np.array([True, False, True, True, False, True])
    res = personal_scores(P, L, A, ids, feature="tdmm", groups={"seen": seen, "unseen": ~seen, "none": np.zeros(N, bool)})
    assert (res["N_seen"], res["N_unseen"], res["N_none"]) == (4, 2, 0)
    assert "personal_FRCorr_none" not in res
    for key in ("personal_FRCorr", "personal_FRdist"):
        whole = (4 * res[f"{key}_seen"] + 2 * res[f"{key}_unseen"]) / N
        assert whole == pytest.approx(res[key], rel=1e-6)
    # a subset item is scored against all N reactions: item 1's only same-identity reference
    # besides itself is item 0, which is not in the 'unseen' subset
    Ap = personal_matrix(A, ids)
    ref = np.mean([sum(max(_ccc(L[j], P[k, i]) for j in np.flatnonzero(Ap[k])) for i in range(K))
                   for k in np.flatnonzero(~seen)])
    assert res["personal_FRCorr_unseen"] == pytest.approx(ref, rel=1e-6)
    with pytest.raises(InputError, match="item group 'bad'"):
        personal_scores(P, L, A, ids, feature="tdmm", groups={"bad": seen[:3]})


def test_errors_name_the_problem():
    with pytest.raises(InputError, match="listener ids"):
        personal_matrix(np.eye(3), [0, 1])
    with pytest.raises(InputError, match="0 or 1"):
        personal_matrix(np.full((2, 2), 0.5), [0, 1])
    P = np.zeros((2, 2, 60, 3), np.float32)
    P[0, 1, 5, 2] = np.nan
    with pytest.raises(InputError, match="non-finite"):
        personal_scores(P, np.zeros((2, 60, 3)), np.eye(2), [0, 1], feature="tdmm")
