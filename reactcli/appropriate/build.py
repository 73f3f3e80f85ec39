"""Appropriateness: which real listener reactions are appropriate for each speaker item.

The rule (data.md): if speakers k and j behaved alike, the real reaction of j's listener is
appropriate for k; every item's own listener is always appropriate. ``build_matrix`` makes that
concrete and configurable:

1. **Distance** between the speaker behaviours of every two items of a split, from stored
   per-frame features (default: the 25-d ``emotion``), over the first ``frames`` frames,
   average-pooled by ``downsample`` frames (DTW is quadratic in length; pooling by 5 keeps
   5 Hz, ample for the slow emotion dynamics, and costs 25x less):
   - ``dtw`` (default): the FRdist construction on the speaker side, i.e. grouped DTWs for the
     emotion feature (AUs / 15 + valence-arousal + expressions / 8), one DTW for other features;
   - ``euclidean``: the frame-aligned Euclidean distance (no warping);
   - ``corr``: 1 - the mean per-dim Pearson correlation.
2. **Rule**:
   - ``threshold``: ``A[k, j] = d(k, j) <= threshold`` (the organisers' release name
     ``neighbour_emotion_1_7.0921`` suggests this with 7.0921);
   - ``topk``: the ``top_k`` nearest items (ties broken by index) are appropriate;
   - ``auto`` (default): a threshold chosen by Otsu's method on the log distances of all
     off-diagonal pairs, i.e. the cut that best separates "alike" from "not alike" when the
     distances are bimodal (as when behaviours come from a limited set of patterns). On corpora
     without that structure, set ``threshold`` or ``topk`` instead; the report prints the
     histogram so the choice can be checked.
   The diagonal (own listener) is always 1, and the matrix is symmetric for the symmetric rules.

Distances are cached in ``appropriate/<split>-<feature>-<distance>-ds<k>.npy`` keyed by the
items' speaker clips, since the rule can then be changed for free (``sweep``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

import reactcli
from reactcli.errors import ConfigError, InputError
from reactcli.io import save_npy, write_json
from reactcli.manifest import AppropriateRecord, write_manifest
from reactcli.storage import FeatureStore
from reactcli.manifest.items import check_matrix
from reactcli.manifest.items import ItemTable, load_items

log = logging.getLogger(__name__)

EMOTION_GROUPS = ((0, 15), (15, 17), (17, 25))
EMOTION_WEIGHTS = (1 / 15, 1.0, 1 / 8)


@dataclass
class BuildConfig:
    """Options of ``reactcli appropriate build``."""

    feature: str = "emotion"
    """Stored speaker feature compared between items."""
    distance: str = "dtw"
    """``dtw`` (grouped as FRdist for emotion), ``euclidean`` or ``corr``."""
    rule: str = "auto"
    """``auto`` (Otsu threshold on log distances), ``threshold`` or ``topk``."""
    threshold: float | None = None
    """Distance threshold for rule ``threshold``."""
    top_k: int = 10
    """Nearest other items marked appropriate for rule ``topk``."""
    downsample: int = 5
    """Average-pool this many frames before comparing (1 = every frame)."""
    frames: int = 750
    """Frames per clip compared."""


def _pool(x: np.ndarray, k: int) -> np.ndarray:
    if k <= 1:
        return x
    t = (x.shape[1] // k) * k
    return x[:, :t].reshape(x.shape[0], t // k, k, x.shape[2]).mean(2)


def pairwise_distances(feats: np.ndarray, cfg: BuildConfig, num_threads: int | None = None) -> np.ndarray:
    """Symmetric (M, M) distances between the M series of ``feats`` (M, T, D)."""
    x = _pool(np.asarray(feats, dtype=np.float32), cfg.downsample)
    m = x.shape[0]
    if cfg.distance == "dtw":
        from reactcli.kernels.dtw import dtw_one_to_many

        if cfg.feature == "emotion" and x.shape[2] == 25:
            groups, weights = EMOTION_GROUPS, np.asarray(EMOTION_WEIGHTS)
        else:
            groups, weights = ((0, x.shape[2]),), np.ones(1)
        # Upper triangle only: row m against candidates m+1.. (padding = -1).
        cand = np.full((m, max(m - 1, 1)), -1, dtype=np.int64)
        for i in range(m):
            cand[i, : m - 1 - i] = np.arange(i + 1, m)
        res = dtw_one_to_many(x, x, cand, groups=groups, num_threads=num_threads)  # (M, C, G)
        d = np.zeros((m, m))
        for i in range(m):
            k = m - 1 - i
            if k:
                d[i, i + 1:] = (res[i, :k] * weights).sum(-1)
        return d + d.T
    if cfg.distance == "euclidean":
        flat = x.reshape(m, -1).astype(np.float64)
        sq = (flat**2).sum(1)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * flat @ flat.T, 0)
        np.fill_diagonal(d2, 0)
        return np.sqrt(d2)
    if cfg.distance == "corr":
        z = x - x.mean(1, keepdims=True)
        sd = np.sqrt((z**2).sum(1))  # (M, D)
        ok = sd > 1e-8
        zn = np.where(ok[:, None, :], z / np.where(ok, sd, 1)[:, None, :], 0)
        r = np.einsum("atd,btd->abd", zn, zn)  # (M, M, D)
        both = (ok[:, None, :] & ok[None, :, :]).sum(-1)
        mean_r = r.sum(-1) / np.maximum(both, 1)
        d = 1 - mean_r
        np.fill_diagonal(d, 0)
        return d
    raise ConfigError(f"--distance {cfg.distance!r}: expected dtw, euclidean or corr")


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold on log(values): the cut maximising the between-class variance."""
    v = np.log(np.maximum(np.asarray(values, dtype=np.float64), 1e-12))
    if v.size == 0 or np.ptp(v) == 0:
        return float(np.exp(v.max())) if v.size else 0.0
    hist, edges = np.histogram(v, bins=bins)
    p = hist / hist.sum()
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    mu = np.cumsum(p * centers)
    mu_t = mu[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu_t * w0 - mu) ** 2 / (w0 * (1 - w0))
    between[~np.isfinite(between)] = -1
    i = int(np.argmax(between))
    return float(np.exp(edges[i + 1]))


def apply_rule(dist: np.ndarray, cfg: BuildConfig) -> tuple[np.ndarray, float | None]:
    """0/1 matrix from distances; returns (matrix, threshold used or None)."""
    n = dist.shape[0]
    off = ~np.eye(n, dtype=bool)
    thr: float | None = None
    if cfg.rule == "auto":
        thr = otsu_threshold(dist[off]) if n > 1 else 0.0
        a = dist <= thr
    elif cfg.rule == "threshold":
        if cfg.threshold is None:
            raise ConfigError("rule 'threshold' needs --threshold")
        thr = float(cfg.threshold)
        a = dist <= thr
    elif cfg.rule == "topk":
        if cfg.top_k < 0:
            raise ConfigError("--top-k must be >= 0")
        d = dist.copy()
        np.fill_diagonal(d, np.inf)
        order = np.argsort(d, axis=1, kind="stable")[:, : cfg.top_k]
        a = np.zeros((n, n), dtype=bool)
        np.put_along_axis(a, order, True, axis=1)
    else:
        raise ConfigError(f"--rule {cfg.rule!r}: expected auto, threshold or topk")
    a = a.astype(np.uint8)
    np.fill_diagonal(a, 1)
    return a, thr


def row_stats(a: np.ndarray) -> dict:
    counts = (np.asarray(a) > 0).sum(1).astype(np.int64)
    hist = np.bincount(counts)
    return {
        "items": int(a.shape[0]), "mean": float(counts.mean()), "min": int(counts.min()), "max": int(counts.max()),
        "median": float(np.median(counts)),
        "histogram": {int(k): int(v) for k, v in enumerate(hist) if v},
    }


def precision_recall(pred: np.ndarray, truth: np.ndarray, off_diagonal: bool = True) -> dict:
    """Precision/recall/F1 of a 0/1 matrix against the truth.

    The diagonal is always 1 in both, so by default only off-diagonal entries count (otherwise a
    matrix with no neighbours at all would look good).
    """
    pred, truth = np.asarray(pred) > 0, np.asarray(truth) > 0
    if pred.shape != truth.shape:
        raise InputError(f"matrix is {pred.shape} but the truth is {truth.shape}")
    mask = ~np.eye(pred.shape[0], dtype=bool) if off_diagonal else np.ones(pred.shape, dtype=bool)
    tp = int((pred & truth & mask).sum())
    fp = int((pred & ~truth & mask).sum())
    fn = int((~pred & truth & mask).sum())
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "fn": fn}


def speaker_distances(work: str | os.PathLike, table: ItemTable, cfg: BuildConfig,
                      on_progress: Callable[[str, int, int], None] | None = None) -> np.ndarray:
    """(N, N) distances between the items' speakers, cached on disk per config + speaker list."""
    work = Path(work)
    speakers = [p.speaker for p in table.pairs]
    uniq = sorted(set(speakers))
    store = FeatureStore(work)
    # the stored arrays' references (file, version, settings, input digests) are part of the key:
    # features extracted or imported again (a changed corpus) never reuse old distances
    refs = [store.ref(c, cfg.feature).to_dict() for c in uniq]
    key = hashlib.sha1(json.dumps([uniq, cfg.feature, cfg.distance, cfg.downsample, cfg.frames, refs],
                                  sort_keys=True).encode()).hexdigest()[:12]
    cache = work / "appropriate" / f"{table.split}-{cfg.feature}-{cfg.distance}-ds{cfg.downsample}-{key}.npy"
    du = None
    if cache.is_file():
        try:
            du = np.load(cache, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:  # a damaged cache is recomputed
            log.warning("%s: unreadable distance cache (%s); computing it again", cache, exc)
        if du is not None and du.shape != (len(uniq), len(uniq)):
            du = None
    if du is None:
        feats = []
        for n, c in enumerate(uniq, 1):
            arr = np.asarray(store.read(c, cfg.feature), dtype=np.float32)
            if arr.shape[0] < cfg.frames:
                raise InputError(f"{cfg.feature} of clip {c} has {arr.shape[0]} frames, expected >= {cfg.frames}")
            if not np.isfinite(arr).all():
                raise InputError(f"{cfg.feature} of clip {c} contains NaN/inf")
            feats.append(arr[: cfg.frames])
            if on_progress:
                on_progress("read features", n, len(uniq))
        if on_progress:
            on_progress("distances", 0, 1)
        du = pairwise_distances(np.stack(feats), cfg)
        if on_progress:
            on_progress("distances", 1, 1)
        save_npy(cache, du)
    pos = {c: i for i, c in enumerate(uniq)}
    idx = np.asarray([pos[s] for s in speakers])
    return du[np.ix_(idx, idx)]


def write_matrix(work: str | os.PathLike, split: str, table: ItemTable, a: np.ndarray, source: str, report: dict) -> Path:
    """Write ``appropriate/<split>.npy``, its per-item manifest and a JSON report."""
    work = Path(work)
    path = work / "appropriate" / f"{split}.npy"
    save_npy(path, a.astype(np.uint8))
    write_manifest(work / "manifests" / f"appropriate_{split}.jsonl", [
        AppropriateRecord(split=split, index=i, item=table.pairs[i].id, appropriate=np.flatnonzero(a[i]).tolist(), source=source)
        for i in range(a.shape[0])
    ])
    write_json(work / "reports" / f"appropriate-{split}.json", {**report, "reactcli_version": reactcli.__version__})
    return path


def build_matrix(work: str | os.PathLike, split: str, cfg: BuildConfig | None = None,
                 on_progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Build and write the appropriateness matrix of ``split``; returns the report dict."""
    cfg = cfg or BuildConfig()
    table = load_items(work, split)
    dist = speaker_distances(work, table, cfg, on_progress)
    a, thr = apply_rule(dist, cfg)
    report = {"split": split, "source": f"built:{cfg.rule}", "config": asdict(cfg), "threshold": thr,
              "stats": row_stats(a)}
    report["path"] = str(write_matrix(work, split, table, a, f"built:{cfg.rule}", report))
    return report


def import_matrix(work: str | os.PathLike, split: str, path: str | os.PathLike) -> dict:
    """Validate an official ``neighbour_emotion_<split>.npy`` against the split's items and store it."""
    path = Path(path)
    table = load_items(work, split)
    if not path.is_file():
        raise InputError(f"{path}: appropriateness matrix not found")
    try:
        m = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: cannot read appropriateness matrix ({exc})") from exc
    err = check_matrix(m, path, table.n, split)
    if err:
        raise InputError(err)
    a = m.astype(np.uint8)
    report = {"split": split, "source": f"official:{path}", "stats": row_stats(a)}
    report["path"] = str(write_matrix(work, split, table, a, "official", report))
    return report


def load_truth(path: str | os.PathLike, n: int | None = None) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: truth matrix not found")
    t = np.load(path, allow_pickle=False)
    if t.ndim != 2 or t.shape[0] != t.shape[1] or (n is not None and t.shape[0] != n):
        raise InputError(f"{path}: truth matrix has shape {t.shape}, expected ({n}, {n})")
    return t


def sweep(work: str | os.PathLike, split: str, truth: np.ndarray, base: BuildConfig | None = None,
          top_ks: tuple[int, ...] = (1, 2, 5, 10, 20), quantiles: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3)) -> list[dict]:
    """F1 of several rules against a truth, from the cached distances."""
    base = base or BuildConfig()
    table = load_items(work, split)
    dist = speaker_distances(work, table, base)
    rows = []
    settings: list[BuildConfig] = [BuildConfig(**{**asdict(base), "rule": "auto"})]
    settings += [BuildConfig(**{**asdict(base), "rule": "topk", "top_k": k}) for k in top_ks if k < table.n]
    off = dist[~np.eye(table.n, dtype=bool)]
    settings += [BuildConfig(**{**asdict(base), "rule": "threshold", "threshold": float(np.quantile(off, q))}) for q in quantiles]
    for s in settings:
        a, thr = apply_rule(dist, s)
        pr = precision_recall(a, truth)
        label = f"top-{s.top_k}" if s.rule == "topk" else f"{'auto' if s.rule == 'auto' else 'threshold'} {thr:.4g}"
        rows.append({"rule": label, **pr, "mean_per_item": float(a.sum(1).mean())})
    return rows
