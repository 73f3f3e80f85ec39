"""Every path of the DTW kernel gives the same values (issue 32).

The kernel has several ways to reach one number: lane counts sized to the CPU (8 with AVX2, 16 with
AVX-512), two orientations (candidate or query broadcast), and local costs read from a table of a
series' distinct frames or computed directly (inside the recursion for 2- and 8-dim groups, in a
separate pass otherwise). None of them may change a value: they are compared here for exact
equality, not within a tolerance (test_dtw_kernel.py checks the values themselves against a plain
float32 recursion). The torch path's matrix-product ("gram") costs are the one approximation;
they are checked against their documented bounds.
"""

from __future__ import annotations

import numpy as np
import pytest

from reactcli.errors import InputError
from reactcli.metrics import core
from reactcli.kernels import dtw as dtw_mod
from reactcli.kernels.dtw import dtw_one_to_many, frame_tables

GROUPS = list(core.EMOTION_GROUPS)


def _emotion_like(rng: np.random.Generator, shape: tuple[int, ...], binary_au: bool = True) -> np.ndarray:
    """Smoothed random walks mapped to 0/1 AUs, valence/arousal in [-1, 1], softmax expressions."""
    z = np.cumsum(rng.standard_normal(shape + (25,)), axis=-2) / 3
    out = np.empty(shape + (25,), dtype=np.float32)
    out[..., :15] = (z[..., :15] > 0.5) if binary_au else 1 / (1 + np.exp(-z[..., :15]))
    out[..., 15:17] = np.tanh(z[..., 15:17] / 2)
    e = np.exp(z[..., 17:25] - z[..., 17:25].max(axis=-1, keepdims=True))
    out[..., 17:25] = e / e.sum(axis=-1, keepdims=True)
    return out


def _problem(seed: int, n_x: int = 40, n_y: int = 9, T1: int = 37, T2: int = 300, n_cand: int = 5,
             binary_au: bool = True):
    rng = np.random.default_rng(seed)
    X = _emotion_like(rng, (n_x, T1), binary_au)
    Y = _emotion_like(rng, (n_y, T2), binary_au)
    cand = np.stack([rng.choice(n_y, n_cand, replace=False) for _ in range(n_x)])
    cand[::7, -1] = -1  # ragged rows
    return X, Y, cand


def test_lane_counts_give_identical_values():
    """AVX2-sized (8) and AVX-512-sized (16) units: same numbers, bit for bit, both orientations."""
    X, Y, cand = _problem(0)
    assert dtw_mod.VECTOR_LANES in dtw_mod.SUPPORTED_LANES
    for orientation in ("x", "y"):
        a = dtw_one_to_many(X, Y, cand, groups=GROUPS, lanes=8, orientation=orientation)
        b = dtw_one_to_many(X, Y, cand, groups=GROUPS, lanes=16, orientation=orientation)
        assert np.array_equal(a, b, equal_nan=True)
    with pytest.raises(InputError, match="lanes"):
        dtw_one_to_many(X, Y, cand, groups=GROUPS, lanes=12)


def test_orientations_give_identical_values():
    """Candidates broadcast with queries in the lanes (FRdist's layout) or the reverse: same bits."""
    X, Y, cand = _problem(1, T1=dtw_mod.TILE + 9, T2=2 * dtw_mod.TILE + 3)  # several column tiles
    a = dtw_one_to_many(X, Y, cand, groups=GROUPS, orientation="x")
    b = dtw_one_to_many(X, Y, cand, groups=GROUPS, orientation="y")
    c = dtw_one_to_many(X, Y, cand, groups=GROUPS)
    assert np.array_equal(a, b, equal_nan=True) and np.array_equal(a, c, equal_nan=True)
    assert np.isnan(a[cand < 0]).all() and np.isfinite(a[cand >= 0]).all()


def test_auto_orientation_pads_fewer_lanes():
    """FRdist's shape (each candidate shared by many queries) broadcasts the candidates; a query
    with many private candidates is broadcast itself. Every pair lands in exactly one lane."""
    many_queries = np.repeat(np.arange(4)[None, :], 64, axis=0)  # 64 queries x the same 4 candidates
    units = dtw_mod._Units(many_queries, 16)
    assert units.broadcast_y and units.unit_b.size == 4 * 4
    private = np.arange(3 * 40).reshape(3, 40)  # 3 queries x 40 candidates of their own
    units = dtw_mod._Units(private, 16)
    assert not units.broadcast_y and units.unit_b.size == 3 * 3
    for cand in (many_queries, private):
        for orientation in ("x", "y"):
            u = dtw_mod._Units(cand, 8, orientation)
            slots = u.pair_unit * 8 + u.pair_lane
            assert np.unique(slots).size == cand.size  # no two pairs share a lane
            assert (u.unit_s.ravel()[slots] == (u.pair_m if u.broadcast_y else cand[u.pair_m, u.pair_c])).all()


def test_binary_au_table_path_equals_direct_path():
    X, Y, cand = _problem(2)
    bounds = dtw_mod._group_bounds(GROUPS, 25)
    gslot, use, pid, rep, npat = frame_tables(Y, bounds)
    # The 0/1 AU group of every candidate has few distinct frames and uses a table; the
    # continuous groups (valence/arousal, expressions) have ~one pattern per frame and do not.
    assert gslot.tolist() == [0, -1, -1]
    assert use[:, 0].all() and (npat[:, 0] <= 2 ** 15).all() and (npat[:, 0] < Y.shape[1] // 4).all()
    # Every frame maps to a pattern whose representative frame has the same AU values.
    for j in range(Y.shape[0]):
        assert np.array_equal(Y[j, rep[j, 0, pid[j, 0]], :15], Y[j, :, :15])
    for orientation in ("x", "y"):
        direct = dtw_one_to_many(X, Y, cand, groups=GROUPS, table_fraction=0.0, orientation=orientation)
        table = dtw_one_to_many(X, Y, cand, groups=GROUPS, orientation=orientation)
        assert np.array_equal(direct, table, equal_nan=True)


def test_non_binary_input_falls_back_to_direct_costs():
    """Continuous AUs (e.g. a model's probabilities) have no repeated frames: no table is used."""
    X, Y, cand = _problem(3, binary_au=False)
    bounds = dtw_mod._group_bounds(GROUPS, 25)
    gslot, use, *_ = frame_tables(Y, bounds)
    assert gslot.tolist() == [-1, -1, -1] and use.size == 0
    a = dtw_one_to_many(X, Y, cand, groups=GROUPS, table_fraction=0.0, orientation="y")
    b = dtw_one_to_many(X, Y, cand, groups=GROUPS, orientation="y")
    assert np.array_equal(a, b, equal_nan=True)


def test_tables_are_exact_for_repeated_non_binary_frames_and_mixed_series():
    """Frames are matched by their float32 bits: repeated continuous values, -0.0 next to 0.0, and
    a batch where only some series qualify for a table all give the direct path's values."""
    rng = np.random.default_rng(4)
    X, Y, cand = _problem(4)
    levels = rng.standard_normal((6, 25)).astype(np.float32)
    Y[:4] = levels[rng.integers(0, 6, size=(4, Y.shape[1]))]  # 6 distinct continuous frames
    Y[0, ::2, :15] = 0.0
    Y[0, 1::2, :15] = -0.0
    Y[5:] = _emotion_like(rng, (Y.shape[0] - 5, Y.shape[1]), binary_au=False)  # no table
    bounds = dtw_mod._group_bounds(GROUPS, 25)
    gslot, use, pid, rep, npat = frame_tables(Y, bounds)
    assert (gslot >= 0).all()
    assert use[:4].all() and not use[5:].any()
    assert npat[0, 0] == 2  # 0.0 and -0.0 are kept apart (harmless: their costs are equal)
    direct = dtw_one_to_many(X, Y, cand, groups=GROUPS, table_fraction=0.0, orientation="y")
    table = dtw_one_to_many(X, Y, cand, groups=GROUPS, orientation="y")
    assert np.array_equal(direct, table, equal_nan=True)


def test_torch_gram_costs_within_documented_tolerance():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    x = _emotion_like(rng, (4, 40))
    y = _emotion_like(rng, (4, 35))
    near = y + (0.01 * rng.standard_normal(y.shape)).astype(np.float32)  # nearly coincides with y
    numba_vals = np.stack([dtw_one_to_many(x[[b]], y[[b]], np.zeros((1, 1), int), groups=GROUPS)[0, 0]
                           for b in range(4)])
    for a, b, bound in ((x, y, 1e-5), (near, y, 1e-3)):
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        direct = dtw_mod.dtw_torch(ta, tb, groups=GROUPS).numpy()
        gram = dtw_mod.dtw_torch(ta, tb, groups=GROUPS, cost="gram").numpy()
        assert np.abs(gram / direct - 1).max() <= bound
        direct64 = dtw_mod.dtw_torch(ta.double(), tb.double(), groups=GROUPS).numpy()
        gram64 = dtw_mod.dtw_torch(ta.double(), tb.double(), groups=GROUPS, cost="gram").numpy()
        assert np.abs(gram64 / direct64 - 1).max() <= 1e-12
    np.testing.assert_allclose(dtw_mod.dtw_torch(torch.from_numpy(x), torch.from_numpy(y), groups=GROUPS).numpy(),
                               numba_vals, rtol=1e-5)
    with pytest.raises(InputError, match="cost"):
        dtw_mod.dtw_torch(torch.from_numpy(x), torch.from_numpy(y), cost="cdist")
