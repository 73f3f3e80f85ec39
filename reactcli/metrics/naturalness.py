"""Naturalness of generated reactions: seams at window edges and how much they move, relative to
the real listeners of the same split.

The six challenge metrics (:mod:`reactcli.metrics.core`) barely see two failures of window-by-window
generators: a jump at every window edge (DTW and CCC forgive a step) and windows that hold an almost
constant expression. These numbers measure both. Every one is a ratio of the generated reactions
``P`` (N, K, T, D) to the real listeners ``L`` (N, T, D) of the same split, computed the same way
on both, so the real listeners score exactly 1 and a ratio reads as "x times the real listeners".

They are computed on the continuous dims ``15:25`` (valence, arousal and the 8 expression
probabilities) by default: the 15 AU dims of the emotion feature are 0/1 occurrences in real data,
whose frame-to-frame changes are flips, not motion. Other features (3DMM) use all dims.

Definitions (``x`` one sequence restricted to the chosen dims, ``|.|`` the Euclidean norm over
those dims, frames ``t = 0..T-1``):

* **speed** ``s_t = |x_{t+1} - x_t|`` for the transition from frame ``t`` to ``t + 1``
  (``t = 0..T-2``); its profile ``sbar_t`` is the mean of ``s_t`` over every sequence of the
  set (all items and samples), so window edges that every item shares line up.
* **seam score**: for a period ``p`` and a phase ``f`` (``0 <= f < p``), the edge transitions are
  those into frames ``t + 1 = f (mod p)``, i.e. into the first frame of every window of size
  ``p`` that starts at ``f``. ``edge(p, f)`` = mean of ``sbar`` over the edge transitions divided
  by its mean over all other transitions (1: edges move like the rest; 40: a jump 40 times the
  ordinary motion). ``worst = max over p in periods (default 8..75 frames) and all f`` needs no
  knowledge of the generator's window. The **seam score** is ``worst(P) / worst(L)``: the worst
  edge effect of the generated set over the worst that the real listeners show by chance at any
  period and phase. The real listeners score exactly 1, a generator that moves as smoothly ~1, a
  step at every window edge far more (the "elsewhere" speed is floored at 1e-3 of the mean speed,
  so perfectly flat windows give a large finite number). The period and phase of the worst edge are reported
  (``seam_period``, ``seam_phase``: the window size and the frame where windows start).
* **velocity (motion) ratio**: mean ``s_t`` over all transitions and sequences, generated / real.
* **acceleration ratio** and **jerk ratio**: the same with the second difference
  ``|x_{t+2} - 2 x_{t+1} + x_t|`` and the third difference ``|x_{t+3} - 3 x_{t+2} + 3 x_{t+1} - x_t|``.
* **within-window variance ratio**: each sequence is cut into consecutive windows of
  ``variance_window`` frames (default 50 = 2 s at 25 fps) starting at frame 0, where reactcli's
  generators start their windows (a trailing partial window is dropped); the population variance
  over time of each dim inside each window, averaged over dims, windows and sequences, generated /
  real. A generator that holds an expression for a window and then jumps scores near 0 here even
  when its motion ratio looks right (the jumps supply the motion).

A real listener set without any motion (every ratio's denominator 0) makes the ratios undefined:
they are reported as None with a note, never NaN. Cost: a few passes over ``P``'s chosen dims
(float64 differences per chunk of items), well under a second at the challenge's size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reactcli.errors import InputError

__all__ = [
    "CONTINUOUS_DIMS",
    "DEFAULT_PERIODS",
    "VARIANCE_WINDOW",
    "HEADLINE",
    "speed_profile",
    "edge_ratios",
    "worst_edge",
    "difference_norm",
    "window_variance",
    "naturalness",
]

#: Emotion dims used by default: valence, arousal and the 8 expression probabilities.
CONTINUOUS_DIMS: tuple[int, int] = (15, 25)
#: Window periods searched by the seam score (frames): 8 (ReactFace's paper window) to 75 (3 s).
DEFAULT_PERIODS: tuple[int, int] = (8, 75)
#: Frames per window of the within-window variance (2 s at 25 fps).
VARIANCE_WINDOW = 50
#: Floor of the "elsewhere" speed, relative to the mean speed (caps a ratio near 1 / this).
RELATIVE_FLOOR = 1e-3
#: (result key, header, description) of the headline numbers that ``evaluate`` prints.
HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("seam_score", "seam", "worst window-edge jump / the real listeners' (1 = as real)"),
    ("velocity_ratio", "motion", "frame-to-frame speed / real"),
    ("acceleration_ratio", "accel", "second difference / real"),
    ("jerk_ratio", "jerk", "third difference / real"),
    ("window_variance_ratio", "var 2s", "variance inside 2 s windows / real"),
)


def _seqs(x: np.ndarray, dims: tuple[int, int] | None) -> np.ndarray:
    """(..., T, D) -> (M, T, d) float64 view of the chosen dims."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise InputError(f"naturalness: expected (..., T, D) sequences, got shape {x.shape}")
    if dims is not None:
        lo, hi = dims
        if not 0 <= lo < hi <= x.shape[-1]:
            raise InputError(f"naturalness: dims {lo}:{hi} do not fit D = {x.shape[-1]}")
        x = x[..., lo:hi]
    return x.reshape((-1,) + x.shape[-2:])


def _chunks(m: int, size: int = 256):
    for a in range(0, m, size):
        yield slice(a, min(m, a + size))


def speed_profile(x: np.ndarray, dims: tuple[int, int] | None = CONTINUOUS_DIMS) -> np.ndarray:
    """``sbar_t``: the mean over all sequences of ``|x_{t+1} - x_t|``, shape (T - 1,) float64."""
    s = _seqs(x, dims)
    total = np.zeros(s.shape[1] - 1)
    for c in _chunks(s.shape[0]):
        d = np.diff(s[c].astype(np.float64), axis=1)
        total += np.sqrt((d * d).sum(-1)).sum(0)
    return total / max(1, s.shape[0])


def edge_ratios(profile: np.ndarray, period: int) -> np.ndarray:
    """``edge(p, f)`` for every phase f of one period: (p,) ratios of the mean speed of the
    transitions into frames ``= f (mod p)`` to the mean speed of all other transitions.

    The denominator is floored at ``RELATIVE_FLOOR`` times the mean speed, so windows that do not
    move at all between their jumps give a large finite ratio rather than a division by zero. A
    phase with no transition, or a profile that never moves, gives NaN (no edge effect to
    measure)."""
    prof = np.asarray(profile, dtype=np.float64)
    n = prof.size
    frames_in = (np.arange(n) + 1) % period  # transition t goes into frame t + 1
    sums = np.bincount(frames_in, weights=prof, minlength=period)
    counts = np.bincount(frames_in, minlength=period).astype(np.float64)
    rest_n = n - counts
    floor = RELATIVE_FLOOR * (prof.mean() if n else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        edge = sums / counts
        rest = (prof.sum() - sums) / rest_n
        out = edge / np.maximum(rest, floor)
    out[(counts == 0) | (rest_n == 0) | ~(floor > 0)] = np.nan
    return out


def worst_edge(profile: np.ndarray, periods: tuple[int, int] = DEFAULT_PERIODS) -> tuple[float, int, int]:
    """(worst ratio, its period, its phase) over periods ``periods[0]..periods[1]`` and all
    phases; (nan, 0, 0) if no (period, phase) is defined."""
    lo, hi = periods
    if lo < 2 or hi < lo:
        raise InputError(f"naturalness: seam periods must satisfy 2 <= lo <= hi, got {lo}..{hi}")
    best, where = -np.inf, (0, 0)
    for p in range(lo, min(hi, np.asarray(profile).size) + 1):
        r = edge_ratios(profile, p)
        if np.all(np.isnan(r)):
            continue
        f = int(np.nanargmax(r))
        if r[f] > best:
            best, where = float(r[f]), (p, f)
    return (best if np.isfinite(best) else float("nan")), where[0], where[1]


def difference_norm(x: np.ndarray, order: int, dims: tuple[int, int] | None = CONTINUOUS_DIMS) -> float:
    """Mean over sequences and frames of the Euclidean norm of the ``order``-th difference."""
    s = _seqs(x, dims)
    if s.shape[1] <= order:
        raise InputError(f"naturalness: {s.shape[1]} frames are too few for a difference of order {order}")
    total, count = 0.0, 0
    for c in _chunks(s.shape[0]):
        d = np.diff(s[c].astype(np.float64), n=order, axis=1)
        nrm = np.sqrt((d * d).sum(-1))
        total += float(nrm.sum())
        count += nrm.size
    return total / count


def window_variance(x: np.ndarray, window: int = VARIANCE_WINDOW,
                    dims: tuple[int, int] | None = CONTINUOUS_DIMS) -> float:
    """Mean population variance over time inside consecutive ``window``-frame windows from frame 0
    (a trailing partial window dropped), averaged over dims, windows and sequences."""
    s = _seqs(x, dims)
    nw = s.shape[1] // window
    if nw < 1 or window < 2:
        raise InputError(f"naturalness: {s.shape[1]} frames hold no {window}-frame window (need window >= 2)")
    total, count = 0.0, 0
    for c in _chunks(s.shape[0]):
        w = s[c, : nw * window].astype(np.float64).reshape(-1, nw, window, s.shape[2])
        v = w.var(axis=2)
        total += float(v.sum())
        count += v.size
    return total / count


def _ratio(a: float, b: float) -> float | None:
    return float(a / b) if b > 0 and np.isfinite(a) and np.isfinite(b) else None


def naturalness(
    pred: np.ndarray,
    listener: np.ndarray,
    *,
    dims: tuple[int, int] | None = CONTINUOUS_DIMS,
    periods: tuple[int, int] = DEFAULT_PERIODS,
    variance_window: int = VARIANCE_WINDOW,
) -> dict[str, Any]:
    """Every naturalness number of ``pred`` (N, K, T, D) against ``listener`` (N, T, D) (see the
    module docstring). ``dims``: the (lo, hi) dims used (None: all).

    Returns a JSON-ready dict: the ratios ``seam_score``, ``velocity_ratio``,
    ``acceleration_ratio``, ``jerk_ratio``, ``window_variance_ratio``; where the worst edge is
    (``seam_period``, ``seam_phase``); the raw values of both sets (``seam_worst``,
    ``seam_worst_real``, ``velocity``, ``velocity_real``, ...); and the settings.
    """
    P = np.asarray(pred)
    L = np.asarray(listener)
    if P.ndim != 4 or L.ndim != 3 or P.shape[2:] != L.shape[1:]:
        raise InputError(f"naturalness: expected pred (N, K, T, D) and listener (N, T, D) with the same T, D; "
                         f"got {P.shape} and {L.shape}")
    if P.shape[2] < max(4, variance_window):
        raise InputError(f"naturalness: T = {P.shape[2]} frames, need at least {max(4, variance_window)}")
    gen_w, gen_p, gen_f = worst_edge(speed_profile(P, dims), periods)
    real_w, real_p, real_f = worst_edge(speed_profile(L, dims), periods)
    out: dict[str, Any] = {
        "seam_score": _ratio(gen_w, real_w),
        "seam_period": gen_p,
        "seam_phase": gen_f,
        "seam_worst": gen_w if np.isfinite(gen_w) else None,
        "seam_worst_real": real_w if np.isfinite(real_w) else None,
        "seam_period_real": real_p,
    }
    for key, order in (("velocity", 1), ("acceleration", 2), ("jerk", 3)):
        g, r = difference_norm(P, order, dims), difference_norm(L, order, dims)
        out[f"{key}_ratio"] = _ratio(g, r)
        out[key], out[f"{key}_real"] = g, r
    g, r = window_variance(P, variance_window, dims), window_variance(L, variance_window, dims)
    out["window_variance_ratio"] = _ratio(g, r)
    out["window_variance"], out["window_variance_real"] = g, r
    out.update(dims=None if dims is None else list(dims), periods=list(periods), variance_window=variance_window)
    if any(out[k] is None for k, _, _ in HEADLINE):
        out["note"] = "a ratio is None where the real listeners (or both sets) do not move at all"
    return out
