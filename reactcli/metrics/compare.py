"""Paired comparison of two generators on the same items: is run B better than run A beyond noise?

Why: FRCorr and FRdist are means over a split's items of per-item terms, and on a split of a few
dozen items the sampling noise alone moves them a lot. Measured on the 15-session synthetic corpus
(24 test items, README.md of pipelines/synthetic, twelfth pass): the same generic GAFRG sampled
with another seed moved its personal FRCorr from 0.453 to 0.387. A difference of 0.02 between two
single runs says nothing. Two runs of the same items are compared here the way a paper should:

* **Paired by item.** Both runs score the same items against the same references, so the
  per-item differences ``d_k = score_B(k) - score_A(k)`` remove what makes one item harder than
  another (:func:`reactcli.metrics.core.frcorr_items` / :func:`~reactcli.metrics.core.frdist_items`).
* **Repeats averaged.** Each side may be several runs of one model at different sampling seeds
  (``reactcli --seed S generate ...``); an item's score is its mean over them, and the spread of the
  runs' means is reported as ``repeat_sd`` (the seed noise of one run).
* **Bootstrap over items.** The 95 % interval of the mean difference is the percentile interval of
  ``n_boot`` resamples of the items (seeded: the same call gives the same interval). The verdict is
  ``better`` / ``worse`` only when the interval excludes 0, else ``no clear difference``.

With ``personal=True`` the references are each listener's own appropriate reactions
(:func:`reactcli.metrics.personal.personal_matrix`) and the items are also compared within the
``seen`` / ``unseen`` listener groups. Run it as ``reactcli evaluate compare``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

import reactcli
from reactcli.errors import ConfigError, InputError
from reactcli.io import write_json
from reactcli.metrics.core import frcorr_items, frdist_items
from reactcli.metrics.personal import listener_ids, personal_matrix, seen_groups
from reactcli.metrics.store import protocol, run_arrays
from reactcli.manifest.items import load_items

__all__ = ["HIGHER_IS_BETTER", "item_scores", "paired_difference", "compare_runs"]

#: Direction of each compared metric.
HIGHER_IS_BETTER = {"FRCorr": True, "FRdist": False}


def item_scores(work: str | os.PathLike, run: str, split: str, *, feature: str = "emotion",
                identities: np.ndarray | None = None, frames: int = 750) -> dict[str, np.ndarray]:
    """Per-item FRCorr and FRdist terms (N,) of a stored generation run (their means are the
    run's FRCorr / FRdist), and ``K`` and ``T``, the samples and frames they were computed on.
    With ``identities`` (N,), the listener identity of each item, the references are each
    listener's own reactions (:func:`~reactcli.metrics.personal.personal_matrix`): the terms of
    the personal metrics."""
    P, L, _, A = run_arrays(work, run, split, feature, frames)
    if identities is not None:
        A = personal_matrix(A, identities)
    return {"FRCorr": frcorr_items(P, L, A), "FRdist": frdist_items(P, L, A, feature=protocol(feature)),
            "K": P.shape[1], "T": P.shape[2]}


def _same_protocol(scores: dict[str, dict]) -> None:
    """Runs are comparable only when scored on the same protocol: the official FRCorr and FRdist
    sum over the K samples and FRdist grows with the frame count T, so a run with other K or T
    would look better or worse for that alone."""
    for key, what in (("K", "samples per item (K)"), ("T", "frames per item (T)")):
        values = {r: s[key] for r, s in scores.items()}
        if len(set(values.values())) > 1:
            listed = ", ".join(f"{r}: {v}" for r, v in values.items())
            raise InputError(f"runs differ in {what} ({listed}): their FRCorr/FRdist are not comparable; "
                             f"generate them with the same --num-samples and --frames")


def paired_difference(base: np.ndarray, other: np.ndarray, *, higher_is_better: bool, n_boot: int = 10000,
                      seed: int = 0, level: float = 0.95) -> dict:
    """Compare per-item scores ``other`` against ``base``.

    Args:
        base, other: (N,) per-item scores, or (R, N) for R repeated runs (averaged per item).
        higher_is_better: direction of the metric (FRCorr True, FRdist False).
        n_boot: bootstrap resamples of the N items.
        seed: seed of the resampling.
        level: coverage of the interval.

    Returns a dict: ``base`` / ``run`` means, ``diff`` (run - base), ``ci`` [lo, hi] of ``diff``,
    ``items_better`` (items where the run is better), ``N``, ``repeats`` per side, ``repeat_sd``
    per side (std of the repeats' means; 0 for a single run) and ``verdict``.
    """
    a, b = np.atleast_2d(np.asarray(base, np.float64)), np.atleast_2d(np.asarray(other, np.float64))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise InputError(f"paired comparison needs per-item scores of the same items: got {a.shape} and {b.shape}")
    if a.shape[1] < 2:
        raise InputError("paired comparison needs at least 2 items")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InputError("paired comparison: per-item scores contain NaN or inf")
    if n_boot < 100:
        raise ConfigError(f"n_boot must be >= 100, got {n_boot}")
    if not 0.5 < level < 1.0:
        raise ConfigError(f"level must be in (0.5, 1), got {level}")
    d = b.mean(axis=0) - a.mean(axis=0)
    n = d.shape[0]
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, n, (n_boot, n))].mean(axis=1)
    lo, hi = (float(x) for x in np.quantile(boots, [(1 - level) / 2, (1 + level) / 2]))
    sign = 1.0 if higher_is_better else -1.0
    if (lo > 0) if higher_is_better else (hi < 0):
        verdict = "better"
    elif (hi < 0) if higher_is_better else (lo > 0):
        verdict = "worse"
    else:
        verdict = "no clear difference"
    return {
        "base": float(a.mean()), "run": float(b.mean()), "diff": float(d.mean()), "ci": [lo, hi], "level": level,
        "items_better": int((sign * d > 0).sum()), "N": int(n), "repeats": [int(a.shape[0]), int(b.shape[0])],
        "repeat_sd": [float(a.mean(axis=1).std(ddof=1)) if a.shape[0] > 1 else 0.0,
                      float(b.mean(axis=1).std(ddof=1)) if b.shape[0] > 1 else 0.0],
        "verdict": verdict,
    }


def compare_runs(work: str | os.PathLike, split: str, base_runs: Sequence[str], runs: Sequence[str], *,
                 feature: str = "emotion", personal: bool = False, n_boot: int = 10000, seed: int = 0,
                 level: float = 0.95, frames: int = 750, out: str | os.PathLike | None = None) -> dict:
    """Paired comparison of ``runs`` (repeats of one model) against ``base_runs`` (repeats of another)
    on ``split``; with ``personal`` also within the seen / unseen listener groups. Writes JSON
    (default ``<work>/metrics/compare-<run>-vs-<base>-<split>[-personal].json``) and returns it with
    its ``path``."""
    if not base_runs or not runs:
        raise ConfigError("compare needs at least one --base run and one --run")
    masks: dict[str, np.ndarray | None] = {"all": None}
    ids = None
    if personal:
        table = load_items(work, split)
        ids = listener_ids(table)
        masks.update(seen_groups(work, split, table) or {})
    scores = {r: item_scores(work, r, split, feature=feature, identities=ids, frames=frames)
              for r in dict.fromkeys([*base_runs, *runs])}
    _same_protocol(scores)
    first = next(iter(scores.values()))
    result: dict = {"work": str(work), "split": split, "feature": feature, "personal": personal,
                    "K": first["K"], "T": first["T"],
                    "base_runs": list(base_runs), "runs": list(runs), "n_boot": n_boot, "seed": seed,
                    "reactcli_version": reactcli.__version__, "groups": {}}
    for group, mask in masks.items():
        if mask is not None and mask.sum() < 2:
            continue
        pick = (lambda x: x) if mask is None else (lambda x, m=mask: x[m])
        result["groups"][group] = {
            metric: paired_difference(np.stack([pick(scores[r][metric]) for r in base_runs]),
                                      np.stack([pick(scores[r][metric]) for r in runs]),
                                      higher_is_better=better, n_boot=n_boot, seed=seed, level=level)
            for metric, better in HIGHER_IS_BETTER.items()}
    suffix = "-personal" if personal else ""
    path = Path(out) if out else Path(work) / "metrics" / f"compare-{runs[0]}-vs-{base_runs[0]}-{split}{suffix}.json"
    write_json(path, result)
    result["path"] = str(path)
    return result
