"""The tiled lane kernel is bit-identical to a plain float32 row-by-row recursion.

The reference below recomputes every local cost with the same float32 operations in the same
order as the kernel (dims four at a time as ``(e0^2 + e1^2) + (e2^2 + e3^2)`` added to a running
sum, then the leftover dims one by one) and runs the textbook recursion cell by cell, so any
mistake in the kernel's strip/tile bookkeeping (partial last strip, a tile boundary, the leading
column, padding lanes) shows up as a difference, not as a rounding excuse.
"""

from __future__ import annotations

import numpy as np
import pytest

from reactcli.kernels import dtw as dtw_mod
from reactcli.kernels.dtw import dtw_one_to_many


def _local_costs_f32(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(T1, T2) float32 costs summed in the kernel's order."""
    c = np.zeros((x.shape[0], y.shape[0]), dtype=np.float32)
    e = x[:, None, :] - y[None, :, :]  # float32 differences, exact same op as the kernel
    sq = e * e
    d, hi = 0, x.shape[1]
    while d + 4 <= hi:
        c = c + ((sq[..., d] + sq[..., d + 1]) + (sq[..., d + 2] + sq[..., d + 3]))
        d += 4
    while d < hi:
        c = c + sq[..., d]
        d += 1
    return c


def _dtw_f32(x: np.ndarray, y: np.ndarray) -> float:
    c = _local_costs_f32(x, y)
    T1, T2 = c.shape
    D = np.full((T1 + 1, T2 + 1), np.inf, dtype=np.float32)
    D[0, 0] = 0.0
    for t in range(1, T1 + 1):
        for s in range(1, T2 + 1):
            D[t, s] = c[t - 1, s - 1] + min(min(D[t - 1, s], D[t - 1, s - 1]), D[t, s - 1])
    return float(np.sqrt(np.float64(D[T1, T2])))


@pytest.mark.parametrize("T1,T2", [(1, 3), (5, 2), (9, dtw_mod.TILE + 7), (12, 2 * dtw_mod.TILE + 1)])
def test_kernel_bit_identical_to_float32_recursion(T1, T2):
    rng = np.random.default_rng(T1 * 100 + T2)
    M, My, D = 2, 11, 25
    X = rng.random((M, T1, D)).astype(np.float32)
    Y = rng.random((My, T2, D)).astype(np.float32)
    Y[:, :, :15] = (Y[:, :, :15] > 0.5)  # binary AU block like real listener data
    cand = np.array([list(range(9)) + [-1], [10, 3, -1, 3, 0, 1, 2, 4, 5, 6]])
    groups = [(0, 15), (15, 17), (17, 25)]
    got = dtw_one_to_many(X, Y, cand, groups=groups)
    for m in range(M):
        for c in range(cand.shape[1]):
            j = cand[m, c]
            if j < 0:
                assert np.isnan(got[m, c]).all()
                continue
            want = [_dtw_f32(X[m, :, lo:hi], Y[j, :, lo:hi]) for lo, hi in groups]
            assert got[m, c].tolist() == want  # exact equality, not approx


def test_single_group_odd_dims_bit_identical():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((3, 10, 7)).astype(np.float32)
    Y = rng.standard_normal((4, dtw_mod.TILE + 3, 7)).astype(np.float32)
    cand = np.array([[0, 1, 2, 3]] * 3)
    got = dtw_one_to_many(X, Y, cand)
    for m in range(3):
        for j in range(4):
            assert got[m, j, 0] == _dtw_f32(X[m], Y[j])


def test_copy_is_exactly_zero_and_identical_candidates_tie_exactly():
    rng = np.random.default_rng(8)
    Y = rng.random((3, 2 * dtw_mod.TILE + 5, 25)).astype(np.float32)
    X = Y[[1]].copy()
    cand = np.array([[0, 1, 0, 2, 1, 1, 0, 2, 1]])  # two lane blocks, repeats across blocks
    got = dtw_one_to_many(X, Y, cand, groups=[(0, 15), (15, 17), (17, 25)])[0]
    assert (got[[1, 4, 5, 8]] == 0.0).all()
    assert (got[[0, 2, 6]] == got[0]).all() and (got[[3, 7]] == got[3]).all()
    assert (got[0] > 0).all() and (got[3] > 0).all()
