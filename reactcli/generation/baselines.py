"""The naive baselines as generation runs (``reactcli generate --baseline NAME``).

Each baseline writes every feature the split has (``emotion`` and ``tdmm``), so it can be scored
with either protocol, into the store like a model's run (run name = the baseline's name).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from reactcli.generation.store import check_stored_run, finalize_run, pending_items, write_generated
from reactcli.io import check_name, settings_fingerprint
from reactcli.models.baselines import make_baseline
from reactcli.storage import FeatureStore
from reactcli.storage.items import real_arrays, stack_clips
from reactcli.manifest.items import load_items

FEATURES = ("emotion", "tdmm")


def generate_baseline(work: str | os.PathLike, name: str, *, split: str = "test", num_samples: int = 10,
                      run: str | None = None, seed: int = 0, frames: int = 750, mime_lag: int = 25,
                      train_split: str = "train", features: tuple[str, ...] = FEATURES, overwrite: bool = False) -> Path:
    """K reactions of the baseline ``name`` for every item of ``split``, stored as run ``run`` (default: ``name``).

    A rerun with the same settings only rewrites the manifest; with other settings it stops unless
    ``overwrite`` (see :func:`reactcli.generation.store.check_stored_run`)."""
    work = Path(work)
    run = check_name(run or name, "--run")
    opts = {"lag": mime_lag} if name == "mime" else {}
    table = load_items(work, split)
    settings = {"baseline": name, "seed": seed, "num_samples": num_samples, "frames": frames, "mime_lag": mime_lag,
                "train_split": train_split, "features": list(features)}
    meta = {"model": f"baseline:{name}", "mime_lag": mime_lag, "train_split": train_split,
            "fingerprint": settings_fingerprint(settings)}
    from reactcli.execution import stage_lock

    with stage_lock(work, f"generate-{run}-{split}", None, what=f"run {run!r} ({split})"):
        check_stored_run(work, run, split, meta["fingerprint"], overwrite=overwrite)
        if not pending_items(work, run, split, table, list(features)):
            return finalize_run(work, run, split, table, num_samples=num_samples, seed=seed, meta=meta, features=features)
        outs: dict[str, np.ndarray] = {}
        for f in features:
            base = make_baseline(name, **opts)
            if name in ("meanseq", "meanfr"):
                train = load_items(work, train_split)
                store = FeatureStore(work)
                base.fit(stack_clips(store, [p.listener for p in train.pairs], f, frames))
            L, S, A = real_arrays(work, split, f, frames) if (work / "appropriate" / f"{split}.npy").is_file() else (None, None, None)
            if L is None:
                store = FeatureStore(work)
                L = stack_clips(store, [p.listener for p in table.pairs], f, frames)
                S = stack_clips(store, [p.speaker for p in table.pairs], f, frames)
                A = table.appropriate
            outs[f] = base.generate(S, L, A, num_samples=num_samples, seed=seed)
        idx = list(range(table.n))
        return write_generated(work, run, split, table, [(idx, outs)], num_samples=num_samples, seed=seed, meta=meta)
