"""Generated reactions in the feature store.

A generation run ``<run>`` writes ``features/gen-<run>-<split>.h5`` with one (K, T, D) dataset
per item and feature at clip key ``gen/<run>/<split>/<index>``, plus
``manifests/generated-<run>-<split>.jsonl`` (one :class:`GeneratedRecord` per item) and
``runs/<run>/generate-<split>.json`` (the resolved settings, checkpoint, seed, version).
Items already written are skipped on a rerun (resume), but only when they were made with the same
settings: every stored item carries the run's settings fingerprint (checksums of the checkpoints,
seed, K, steps, ... : :func:`reactcli.io.settings_fingerprint`), and :func:`check_stored_run` refuses to mix
items of other settings into a run (``reactcli generate --overwrite`` replaces them instead).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

import reactcli
from reactcli.errors import InputError
from reactcli.io import check_name, write_json
from reactcli.manifest import GeneratedRecord, read_manifest, write_manifest
from reactcli.storage import FeatureStore, ShardWriter
from reactcli.manifest.items import ItemTable

log = logging.getLogger(__name__)


def gen_clip_key(run: str, split: str, index: int) -> str:
    return f"gen/{run}/{split}/{index}"


def manifest_path(work: str | os.PathLike, run: str, split: str) -> Path:
    check_name(run, "--run")
    check_name(split, "--split")
    return Path(work) / "manifests" / f"generated-{run}-{split}.jsonl"


def check_stored_run(work: str | os.PathLike, run: str, split: str, fingerprint: str, *,
                     overwrite: bool = False) -> int:
    """Make sure every item ``run`` already stored for ``split`` was made with these settings.

    Resuming must never mix outputs of two checkpoints (or seeds, step counts, ...) in one run. If
    some stored item has another fingerprint (or none: written by an older reactcli), raise an
    :class:`InputError` naming the run, or with ``overwrite`` delete the run's store files, manifest
    and settings JSON so that it is generated afresh. Returns the number of items deleted.
    """
    work = Path(work)
    store = FeatureStore(work)
    try:  # reading attributes opens the shard files: close them on every path
        refs = store.refresh(write=False)
        prefix = f"gen/{run}/{split}/"
        mine = [r for r in refs if r.clip.startswith(prefix)]
        stale = [r for r in mine if _stored_fingerprint(store, r) != fingerprint]
    finally:
        store.close()
    if not stale:
        return 0
    items = len({r.clip for r in mine})
    if not overwrite:
        raise InputError(
            f"run {run!r} ({split}): {len({r.clip for r in stale})} of the {items} stored items were generated with other "
            f"settings (checkpoint, seed or options); pass --overwrite to replace them, or choose another --run")
    files = sorted({r.store for r in mine})
    shared = sorted({r.store for r in refs if r.store in files and not r.clip.startswith(prefix)})
    if shared:
        raise InputError(f"run {run!r} ({split}): cannot overwrite, {shared[0]} also holds other arrays")
    for f in files:
        (work / f).unlink()
    for p in (manifest_path(work, run, split), work / "runs" / run / f"generate-{split}.json"):
        p.unlink(missing_ok=True)
    FeatureStore(work).refresh()
    log.warning("run %r (%s): removed %d items generated with other settings (%s)", run, split, items, ", ".join(files))
    return items


def _stored_fingerprint(store: FeatureStore, ref) -> str | None:
    try:
        return json.loads(store.attrs_of(ref).get("config") or "{}").get("fingerprint")
    except json.JSONDecodeError:
        return None


def pending_items(work: str | os.PathLike, run: str, split: str, table: ItemTable, features: list[str]) -> list[int]:
    """Item indices of ``split`` that ``run`` has not stored yet (for every feature)."""
    store = FeatureStore(work)
    store.refresh(write=False)
    return [i for i in range(table.n) if not all(store.has(gen_clip_key(run, split, i), f) for f in features)]


def store_batches(
    writer: ShardWriter,
    run: str,
    split: str,
    batches: Iterable[tuple[list[int], dict[str, np.ndarray]]],
    *,
    num_samples: int,
    seed: int,
    meta: dict[str, Any],
    fps: float = 25.0,
) -> set[str]:
    """Write ``(item indices, {feature: (B, K, T, D)})`` batches into an open shard writer."""
    features: set[str] = set()
    config = {"seed": seed, **{k: v for k, v in meta.items() if isinstance(v, (int, float, str, bool))}}
    for idx, outs in batches:
        for f, arr in outs.items():
            features.add(f)
            arr = np.asarray(arr)
            if arr.ndim != 4 or arr.shape[0] != len(idx) or arr.shape[1] != num_samples:
                raise InputError(f"generated {f} for run {run!r} has shape {arr.shape}, expected ({len(idx)}, {num_samples}, T, D)")
            if not np.isfinite(arr).all():
                raise InputError(f"generated {f} for run {run!r} contains NaN/inf (items {idx})")
            for b, i in enumerate(idx):
                writer.write(gen_clip_key(run, split, i), f, arr[b], fps=fps, extractor=f"generate:{run}", config=config)
    return features


def finalize_run(work: str | os.PathLike, run: str, split: str, table: ItemTable, *, num_samples: int, seed: int,
                 meta: dict[str, Any], features: Iterable[str] = ()) -> Path:
    """Check every item of the split is stored, then write the run's manifest and settings.

    The manifest lists every item and is written only once all are stored, so its existence
    means the run is complete.
    """
    work = Path(work)
    refs = FeatureStore(work).refresh()
    stored = {(r.clip, r.feature) for r in refs}
    feats = sorted(features) or sorted({r.feature for r in refs if r.clip.startswith(f"gen/{run}/{split}/")})
    records = []
    for i, p in enumerate(table.pairs):
        key = gen_clip_key(run, split, i)
        missing = [f for f in feats if (key, f) not in stored]
        if missing or not feats:
            raise InputError(f"run {run!r}: item {split}/{i} has no stored {(missing or ['reaction'])[0]} (rerun generate to resume)")
        records.append(GeneratedRecord(run=run, split=split, index=i, item=p.id, speaker=p.speaker, listener=p.listener,
                                       clip=key, features=feats, num_samples=num_samples, seed=seed))
    path = manifest_path(work, run, split)
    write_manifest(path, records)
    write_json(work / "runs" / run / f"generate-{split}.json", {**meta, "run": run, "split": split, "seed": seed,
                                                             "num_samples": num_samples, "items": len(records),
                                                             "features": feats, "reactcli_version": reactcli.__version__})
    return path


def write_generated(
    work: str | os.PathLike,
    run: str,
    split: str,
    table: ItemTable,
    batches: Iterable[tuple[list[int], dict[str, np.ndarray]]],
    *,
    num_samples: int,
    seed: int,
    meta: dict[str, Any],
    fps: float = 25.0,
) -> Path:
    """Store the batches in one new shard file, then :func:`finalize_run`."""
    store = FeatureStore(work)
    with store.writer(f"gen-{run}-{split}") as w:
        feats = store_batches(w, run, split, batches, num_samples=num_samples, seed=seed, meta=meta, fps=fps)
    return finalize_run(work, run, split, table, num_samples=num_samples, seed=seed, meta=meta, features=feats)


def load_generated(work: str | os.PathLike, run: str, split: str, feature: str, frames: int | None = None) -> np.ndarray:
    """(N, K, T, D) array of a complete generation run."""
    path = manifest_path(work, run, split)
    if not path.is_file():
        raise InputError(f"{path}: generation run {run!r} for split {split!r} not found or incomplete")
    recs = sorted(read_manifest(path, GeneratedRecord), key=lambda r: r.index)
    store = FeatureStore(work)
    arrs = [store.read(r.clip, feature) for r in recs]
    out = np.stack(arrs).astype(np.float32)
    return out[:, :, :frames] if frames else out
