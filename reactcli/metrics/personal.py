"""Personal appropriateness: FRCorr / FRdist against the *same listener's* appropriate reactions.

Why: the challenge metrics ask "is this reaction appropriate for the speaker?" and accept the
real reaction of *any* listener whose speaker behaved alike (``A[k, j] = 1``). A personalised
generator (PerFRDiff's PSSL + PWSG) claims more: the reaction should also look like what *this*
listener would do. The natural measurement keeps the challenge's formulas and narrows the
reference set: for item k only the appropriate reactions produced by k's own listener identity
count,

    ``A_personal[k, j] = (A[k, j] or j == k) and identity(listener_j) == identity(listener_k)``.

The item's own real reaction (``j == k``) is always kept: it is appropriate by construction (data.md:
every row of the challenge matrix contains the item's own listener) and it guarantees a non-empty
row, so no row silently becomes NaN. Identities come from the work directory
(``manifests/identities.json`` when the corpus knows who is who, else the session/person part of
the clip id, see :mod:`reactcli.manifest.identities`).

A generic model that produces "some appropriate reaction" scores well on the challenge FRCorr but
only as well as chance allows on this one; a model that captured the listener's style (AU offsets,
valence bias, ...) scores higher here. Items are also scored in two groups: listeners ``seen`` in
the train split (a recurring person, e.g. a NoXI expert, whose style a personalised model could
learn) and ``unseen`` ones (only the history clip tells who they are). Run it as
``python -m reactcli.metrics.personal``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

import reactcli
from reactcli.errors import InputError
from reactcli.io import write_json
from reactcli.metrics.core import frcorr_items, frdist_items
from reactcli.metrics.store import generation_record, protocol, run_arrays, write_summary
from reactcli.metrics.tables import metrics_path, personal_path
from reactcli.manifest.items import ItemTable, load_items

__all__ = ["personal_matrix", "personal_scores", "listener_ids", "seen_groups", "evaluate_personal"]


def personal_matrix(appropriate: np.ndarray, listener_ids: Sequence[int] | np.ndarray) -> np.ndarray:
    """``(A | I) & same-listener-identity`` as a bool (N, N) matrix (see the module docstring).

    Args:
        appropriate: (N, N) 0/1 challenge appropriateness matrix.
        listener_ids: (N,) integer identity of each item's listener.
    """
    A = np.asarray(appropriate)
    ids = np.asarray(listener_ids)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise InputError(f"appropriateness matrix: expected a square (N, N) array, got shape {A.shape}")
    if ids.shape != (A.shape[0],):
        raise InputError(f"listener ids: expected shape ({A.shape[0]},) to match the matrix, got {ids.shape}")
    if not np.isin(A, (0, 1)).all():
        raise InputError("appropriateness matrix: entries must be 0 or 1")
    same = ids[:, None] == ids[None, :]
    return (A.astype(bool) | np.eye(A.shape[0], dtype=bool)) & same


def personal_scores(P: np.ndarray, L: np.ndarray, A: np.ndarray, listener_ids: Sequence[int] | np.ndarray,
                    *, feature: str = "emotion", groups: dict[str, np.ndarray] | None = None) -> dict:
    """Personal FRCorr / FRdist of predictions ``P`` (N,K,T,D) against real ``L`` (N,T,D).

    Returns official sums over K and per-sample values under ``personal_*`` keys, plus how many
    reference reactions each item keeps (mean/min/max) so a reader can tell a diagonal-only
    reference set from a rich one. ``groups`` (name -> (N,) bool mask of items) adds the two
    metrics over each non-empty subset of items as ``personal_FRCorr_<name>`` /
    ``personal_FRdist_<name>`` with ``N_<name>`` (the references stay all N reactions).
    """
    P = np.ascontiguousarray(P, dtype=np.float32)
    L = np.ascontiguousarray(L, dtype=np.float32)
    if P.ndim != 4 or L.shape != (P.shape[0],) + P.shape[2:]:
        raise InputError(f"predictions {P.shape} and listeners {L.shape}: expected (N,K,T,D) and (N,T,D)")
    for name, arr in (("predictions", P), ("listener", L)):
        if not np.isfinite(arr).all():
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise InputError(f"{name}: non-finite value at index {tuple(int(b) for b in bad)}")
    Ap = personal_matrix(A, listener_ids)
    corr_items = frcorr_items(P, L, Ap)
    dist_items = frdist_items(P, L, Ap, feature=feature)
    K = P.shape[1]
    corr, dist = float(corr_items.mean()), float(dist_items.mean())
    corr_ps, dist_ps = corr / K, dist / K
    per_row = Ap.sum(axis=1)
    subsets: dict = {}
    for name, mask in (groups or {}).items():
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (P.shape[0],):
            raise InputError(f"item group {name!r}: expected a ({P.shape[0]},) mask, got {mask.shape}")
        subsets[f"N_{name}"] = int(mask.sum())
        if mask.any():
            subsets[f"personal_FRCorr_{name}"] = float(corr_items[mask].mean())
            subsets[f"personal_FRdist_{name}"] = float(dist_items[mask].mean())
    return {
        "personal_FRCorr": corr,
        "personal_FRCorr_per_sample": corr_ps,
        "personal_FRdist": dist,
        "personal_FRdist_per_sample": dist_ps,
        "personal_references_mean": float(per_row.mean()),
        "personal_references_min": int(per_row.min()),
        "personal_references_max": int(per_row.max()),
        "N": int(P.shape[0]), "K": int(P.shape[1]), "T": int(P.shape[2]), "D": int(P.shape[3]),
        "feature": feature,
        "note": "FRCorr/FRdist with A restricted to (A | I) & same listener identity; "
                "FRCorr is the sum over K, FRCorr_per_sample = FRCorr / K",
        **subsets,
    }


def listener_ids(table: ItemTable) -> np.ndarray:
    """(N,) integer listener identity of each item of ``table`` (see :func:`personal_matrix`)."""
    return np.array([table.listener_id(i) for i in range(table.n)])


def seen_groups(work: str | os.PathLike, split: str, table: ItemTable) -> dict[str, np.ndarray] | None:
    """Item masks ``seen`` / ``unseen``: is the item's listener a listener of the train split (a
    person a personalised model met in training)? ``None`` for the train split itself or a work
    directory without one."""
    if split == "train":
        return None
    try:
        train = load_items(work, "train")
    except InputError:
        return None
    met = {train.resolver(p.listener) for p in train.pairs}
    seen = np.array([table.resolver(p.listener) in met for p in table.pairs])
    return {"seen": seen, "unseen": ~seen}


def evaluate_personal(work: str | os.PathLike, run: str, split: str, *, feature: str = "emotion",
                      frames: int = 750, out: str | os.PathLike | None = None) -> dict:
    """Score a stored generation run with :func:`personal_scores`; writes JSON (default
    ``<work>/metrics/<run>-<split>-personal.json``) and returns the dict with its ``path``."""
    P, L, _, A = run_arrays(work, run, split, feature, frames)
    table = load_items(work, split)
    res = personal_scores(P, L, A, listener_ids(table), feature=protocol(feature),
                          groups=seen_groups(work, split, table))
    gen = generation_record(work, run, split)
    res.update(run=run, split=split, work=str(work), feature_name=feature, generation=gen,
               seed=gen["seed"] if gen else None, checkpoint_sha256=gen["checkpoint_sha256"] if gen else None,
               reactcli_version=reactcli.__version__)
    path = Path(out) if out else personal_path(Path(work) / "metrics", run, split)
    write_json(path, res)
    res["path"] = str(path)
    if metrics_path(path.parent, run, split).is_file():  # its columns join the run's summary row
        res["summary_path"] = str(write_summary(path.parent))
    return res


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m reactcli.metrics.personal --work W --run R [--split test] [--out F]``."""
    ap = argparse.ArgumentParser(prog="python -m reactcli.metrics.personal", description=__doc__.split("\n")[0])
    ap.add_argument("--work", required=True, help="Work directory.")
    ap.add_argument("--run", required=True, action="append", help="Generation run (repeatable).")
    ap.add_argument("--split", default="test", help="Split the run generated.")
    ap.add_argument("--feature", default="emotion", help="emotion (challenge protocol) or tdmm.")
    ap.add_argument("--out-dir", default=None, help="Folder for <run>-<split>-personal.json (default WORK/metrics).")
    args = ap.parse_args(argv)
    from reactcli.errors import ReactcliError

    try:
        for r in args.run:
            out = personal_path(args.out_dir, r, args.split) if args.out_dir else None
            res = evaluate_personal(args.work, r, args.split, feature=args.feature, out=out)
            seen = "".join(f"  {g} ({res[f'N_{g}']} items) {res[f'personal_FRCorr_{g}']:.4f} / {res[f'personal_FRdist_{g}']:.3f}"
                           for g in ("seen", "unseen") if f"personal_FRCorr_{g}" in res)
            print(f"{r}: personal FRCorr {res['personal_FRCorr']:.4f} (per sample {res['personal_FRCorr_per_sample']:.4f})"
                  f"  personal FRdist {res['personal_FRdist']:.3f}  refs/item {res['personal_references_mean']:.2f}"
                  f"{seen}  -> {res['path']}")
    except ReactcliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
