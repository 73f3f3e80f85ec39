"""Naturalness metrics (reactcli.metrics.naturalness) against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from reactcli.errors import InputError
from reactcli.metrics import evaluate_arrays
from reactcli.metrics.naturalness import (
    difference_norm,
    edge_ratios,
    naturalness,
    speed_profile,
    window_variance,
    worst_edge,
)


def _smooth(n: int = 6, t: int = 300, d: int = 25, seed: int = 0) -> np.ndarray:
    """Real-like listeners: sums of slow sines with random phases, (n, t, d)."""
    rng = np.random.default_rng(seed)
    tt = np.arange(t)[None, :, None]
    ph = rng.uniform(0, 2 * np.pi, (n, 1, d))
    per = rng.uniform(30, 90, (1, 1, d))
    return (0.3 * np.sin(2 * np.pi * tt / per + ph) + 0.1 * np.sin(2 * np.pi * tt / (per / 3.1) + 2 * ph)).astype(np.float32)


def test_speed_profile_by_hand():
    # one dim: frames 0, 1, 3, 6 -> speeds 1, 2, 3; a second sequence 0, 0, 1, 1 -> 0, 1, 0
    x = np.array([[[0.0], [1.0], [3.0], [6.0]], [[0.0], [0.0], [1.0], [1.0]]])
    np.testing.assert_allclose(speed_profile(x, dims=None), [0.5, 1.5, 1.5])
    # Euclidean over the chosen dims: (3, 4) steps have speed 5
    y = np.zeros((1, 3, 4))
    y[0, 1, 1:3] = (3, 4)
    np.testing.assert_allclose(speed_profile(y, dims=(1, 3)), [5.0, 5.0])


def test_edge_ratios_by_hand():
    prof = np.array([1, 1, 1, 5, 1, 1, 1, 5], dtype=float)  # jumps into frames 4 and 8
    r = edge_ratios(prof, 4)
    assert r[0] == pytest.approx(5.0)  # edges 5, elsewhere 1
    assert r[1] == pytest.approx(1.0 / (14.0 / 6.0))  # edges (t=0,4) 1; elsewhere (16-2)/6
    worst, p, f = worst_edge(prof, (2, 4))
    assert (worst, p, f) == (pytest.approx(5.0), 4, 0)


def test_differences_and_window_variance_by_hand():
    t = np.arange(5, dtype=float)
    x = np.stack([3 * t, 4 * t], -1)[None]  # speed 5 everywhere, no acceleration
    assert difference_norm(x, 1, dims=None) == pytest.approx(5.0)
    assert difference_norm(x, 2, dims=None) == pytest.approx(0.0)
    q = (t ** 2)[None, :, None]  # second difference 2, third 0
    assert difference_norm(q, 2, dims=None) == pytest.approx(2.0)
    assert difference_norm(q, 3, dims=None) == pytest.approx(0.0)
    w = np.array([0.0, 2.0, 1.0, 1.0, 7.0])[None, :, None]  # windows [0,2] var 1, [1,1] var 0; 7 dropped
    assert window_variance(w, 2, dims=None) == pytest.approx(0.5)


def test_real_listeners_score_one_and_scaled_copies_scale():
    L = _smooth()
    P = np.repeat(L[:, None], 3, axis=1)
    nat = naturalness(P, L)
    for key in ("seam_score", "velocity_ratio", "acceleration_ratio", "jerk_ratio", "window_variance_ratio"):
        assert nat[key] == pytest.approx(1.0)
    nat2 = naturalness(2 * P, L)
    assert nat2["velocity_ratio"] == pytest.approx(2.0)
    assert nat2["acceleration_ratio"] == pytest.approx(2.0)
    assert nat2["jerk_ratio"] == pytest.approx(2.0)
    assert nat2["window_variance_ratio"] == pytest.approx(4.0)
    assert nat2["seam_score"] == pytest.approx(1.0)  # scaling moves edges and the rest alike


def test_step_sequence_has_large_seam_score_and_flat_windows():
    L = _smooth(seed=1)
    # a generator that holds the value of the first frame of every 25-frame window, then jumps
    held = np.repeat(L[:, ::25], 25, axis=1)[:, : L.shape[1]]
    P = np.repeat(held[:, None], 2, axis=1)
    nat = naturalness(P, L)
    assert nat["seam_score"] > 50
    assert nat["seam_period"] % 25 == 0 and nat["seam_phase"] == 0
    # 2 s windows that each hold one value: no variance inside them at all
    held50 = np.repeat(L[:, ::50], 50, axis=1)[:, : L.shape[1]]
    assert naturalness(held50[:, None], L)["window_variance_ratio"] == pytest.approx(0.0, abs=1e-12)
    # a little motion inside the windows keeps it finite and large; smooth samples stay ~1
    rng = np.random.default_rng(2)
    wiggle = held + 0.002 * np.sin(np.arange(L.shape[1]) / 3.0)[None, :, None]
    assert naturalness(wiggle[:, None], L)["seam_score"] > 10
    other = _smooth(seed=5)  # smooth reactions that are not the real ones
    assert naturalness(other[:, None] + 0 * rng.random(1), L)["seam_score"] < 1.5


def test_seam_needs_no_window_knowledge():
    L = _smooth(seed=3)
    for w, start in ((8, 0), (40, 5), (75, 0)):
        t = np.arange(L.shape[1])
        level = 0.5 * (((t - start) // w) % 2)  # a square wave: a jump into every window start
        P = L + level[None, :, None].astype(np.float32)
        nat = naturalness(P[:, None], L)
        assert nat["seam_score"] > 3, (w, nat)
        assert nat["seam_period"] % w == 0 or w % nat["seam_period"] == 0
        assert nat["seam_phase"] % min(w, nat["seam_period"]) == start % min(w, nat["seam_period"])


def test_naturalness_input_errors():
    L = _smooth(t=60)
    with pytest.raises(InputError, match="same T"):
        naturalness(L[:, None, :50], L)
    with pytest.raises(InputError, match="dims"):
        naturalness(L[:, None], L, dims=(15, 40))
    with pytest.raises(InputError, match="at least"):
        naturalness(L[:, None, :40], L[:, :40])
    still = np.zeros_like(L)
    nat = naturalness(L[:, None], still)
    assert nat["velocity_ratio"] is None and "note" in nat


def test_evaluate_arrays_reports_naturalness_without_changing_the_six():
    rng = np.random.default_rng(4)
    L = _smooth(n=4, t=120)
    P = np.clip(np.repeat(L[:, None], 3, 1) + 0.05 * rng.standard_normal((4, 3, 120, 25)), -1, 1).astype(np.float32)
    S = _smooth(n=4, t=120, seed=9)
    A = np.eye(4, dtype=bool) | np.roll(np.eye(4, dtype=bool), 1, 1)
    res = evaluate_arrays(P, L, S, A)
    six = evaluate_arrays(P, L, S, A, metrics=("FRCorr", "FRdist", "FRDiv", "FRDvs", "FRVar", "FRSyn"))
    assert "naturalness" not in six and "seam_score" not in six
    for key in ("FRCorr", "FRCorr_per_sample", "FRdist", "FRDiv", "FRDvs", "FRVar", "FRSyn"):
        assert res[key] == six[key]
    nat = naturalness(P, L)
    assert res["naturalness"]["dims"] == [15, 25]
    assert res["seam_score"] == nat["seam_score"] and res["velocity_ratio"] == nat["velocity_ratio"]
    assert res["velocity_ratio"] > 1.5  # white noise on top of smooth motion moves a lot more
    assert "naturalness" in res["timings_s"]


def test_printed_table_has_a_naturalness_table():
    from rich.console import Console

    from reactcli.metrics.report import print_table

    L = _smooth(n=4, t=100)
    held = np.repeat(L[:, ::25], 25, axis=1)[:, None]
    console = Console(record=True, width=150)
    print_table({"steps": {"FRCorr": 1.0, "naturalness": naturalness(held, L)},
                 "old": {"FRCorr": 2.0}}, console)
    text = console.export_text()
    assert "Naturalness" in text and "var 2s" in text
    rows = [ln.strip("│ ") for ln in text.splitlines()]
    steps = [r for r in rows if r.startswith("steps")]
    assert len(steps) == 2 and "(25@0)" in steps[1]  # the metrics table, then the naturalness table
    assert len([r for r in rows if r.startswith("old")]) == 1  # a run without naturalness: no row
