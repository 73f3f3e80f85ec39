"""``reactcli generate``: the stage that turns a checkpoint into K reactions per speaker item.

The checkpoint's registry entry (:mod:`reactcli.models.registry`) names its generator
(:mod:`.reactface`, :mod:`.perfrdiff`); this module owns what every model shares. Items are processed in batches of ``batch_size`` clips, and the K samples of each clip are one
batch inside the model (never K sequential runs). Each batch draws its noise from a generator
seeded with ``(seed, first item index)``, so the same seed (and batch size) gives identical
output, and a resumed run (items already stored are skipped) continues exactly where the
interrupted one stopped.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from reactcli.errors import ConfigError, InputError
from reactcli.generation.base import GenerateConfig, Generator, seeded
from reactcli.generation.store import check_stored_run, pending_items
from reactcli.io import check_name, settings_fingerprint
from reactcli.manifest.items import load_items
from reactcli.models.checkpoint import load_checkpoint, sha1_of, sha256_of
from reactcli.models.registry import MODELS, get_spec, resolve
from reactcli.progress import ProgressFn, worker_progress
from reactcli.training.data import DataConfig, ReactionDataset, collate
from reactcli.training.loop import resolve_device

__all__ = ["GenerateConfig", "generate_run", "generate_shard", "item_batches", "load_generator"]


def load_generator(checkpoint: str | os.PathLike, cfg: GenerateConfig) -> Generator:
    """The generator of ``checkpoint``'s model (its registry entry's ``generator``)."""
    ck = load_checkpoint(checkpoint)
    spec = get_spec(ck["model"]) if ck.get("model") in MODELS else None
    if spec is None or spec.generator is None:
        can = sorted(n for n, s in MODELS.items() if s.generator)
        raise InputError(f"{checkpoint}: a {ck.get('model')!r} checkpoint cannot generate (expected one of {can})")
    return resolve(spec.generator)(ck, str(checkpoint), cfg, resolve_device(cfg.device))


def item_batches(n: int, batch_size: int) -> list[list[int]]:
    """The fixed batches of a split: item ``i`` is always in batch ``i // batch_size``.

    Noise is seeded per batch, so fixing the batches (not just the items still to do) keeps the
    output identical whether a run is resumed, split into shards or run in one go.
    """
    if batch_size < 1:
        raise ConfigError("--batch-size must be >= 1")
    return [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]


def _generate_batches(work: Path, gen_model: Generator, cfg: GenerateConfig, run: str, batches: list[list[int]],
                      on_progress: Callable[[str, int, int], None] | None, pending: set[int] | None = None):
    """Generate the batches holding an item still ``pending`` (default: read from the store)."""
    table = load_items(work, cfg.split)
    data_cfg = DataConfig(**{**asdict(gen_model.data_config), "frames": cfg.frames, "crop": None, "max_appropriate": 1})
    ds = ReactionDataset(work, table, data_cfg, seed=cfg.seed, train=False)
    if pending is None:
        pending = set(pending_items(work, run, cfg.split, table, gen_model.features))
    todo = [b for b in batches if any(i in pending for i in b)]
    dev = resolve_device(cfg.device)
    for n, idx in enumerate(todo, 1):
        batch = collate([ds[i] for i in idx])
        batch = {k: v.to(dev) for k, v in batch.items()}
        outs = gen_model(batch, cfg.num_samples, seeded(cfg.seed, idx[0], dev))
        if on_progress:
            on_progress(f"generate {run}", n, len(todo))
        yield idx, outs


def _meta(gen_model: Generator, checkpoint, cfg: GenerateConfig) -> dict[str, Any]:
    """The run's settings record; ``fingerprint`` identifies what determines the output (checkpoint
    checksums and every option but the device and the paths), so a resume never mixes two runs."""
    sums = gen_model.checksums
    # an option at the value it had before it existed is left out, so older runs keep their fingerprint
    # (timestep_spacing and eta None: the checkpoint's; precision fp32)
    options = {k: v for k, v in asdict(cfg).items() if k not in ("device", "pwsg_checkpoint", "own_codes", "new_listeners")
               and not (k in ("timestep_spacing", "eta") and v is None) and not (k == "precision" and v == "fp32")}
    # own_codes / new_listeners only matter to a PWSG with codes, whose meta["style"] records them
    fp = settings_fingerprint({"checkpoints": sums, "options": options,
                               "model": {k: v for k, v in gen_model.meta.items() if not k.endswith("checkpoint")}})
    known = {gen_model.sources[role]: digest for role, digest in sums.items()}
    return {**gen_model.meta, "checkpoint": str(checkpoint), "checkpoint_sha1": known.get(str(checkpoint)) or sha1_of(checkpoint),
            "checkpoint_sha1s": sums, "checkpoint_sha256": sha256_of(checkpoint),
            "checkpoint_sha256s": {role: sha256_of(p) for role, p in sorted(gen_model.sources.items())},
            "config": asdict(cfg), "fingerprint": fp}


def _shard_settings(meta: dict[str, Any]) -> str:
    """What a shard file of a generation run was made with (compared before it is reused or merged)."""
    import json

    return json.dumps({"fingerprint": meta["fingerprint"]}, sort_keys=True)


def generate_shard(work: str, checkpoint: str, cfg_dict: dict[str, Any], run: str, index: int, count: int,
                   on_progress: ProgressFn | None = None) -> dict[str, Any]:
    """Shard ``index`` of ``count`` of a generation run (whole batches), into a shard store file."""
    from reactcli.execution import shard_path
    from reactcli.manifest import shard_records
    from reactcli.storage import ShardWriter

    from reactcli.generation.store import store_batches

    work_p = Path(work)
    gen_model = load_generator(checkpoint, GenerateConfig(**cfg_dict))
    cfg = gen_model.cfg
    gen_model.use_work(work_p)
    table = load_items(work_p, cfg.split)
    mine = shard_records(item_batches(table.n, cfg.batch_size), index, count)
    stage = f"generate-{run}-{cfg.split}"
    meta = _meta(gen_model, checkpoint, cfg)
    with ShardWriter(shard_path(work_p, stage, index, count), work=work_p, stage_settings=_shard_settings(meta)) as w:
        store_batches(w, run, cfg.split, _generate_batches(work_p, gen_model, cfg, run, mine, worker_progress(on_progress)),
                      num_samples=cfg.num_samples, seed=cfg.seed, meta=meta)
    return {"shard": index, "batches": len(mine)}


def generate_run(
    work: str | os.PathLike,
    checkpoint: str | os.PathLike,
    cfg: GenerateConfig,
    run: str | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    exec_cfg: Any = None,
    overwrite: bool = False,
) -> Path:
    """Generate ``cfg.num_samples`` reactions for every item of ``cfg.split``; returns the manifest path.

    ``exec_cfg`` (:class:`reactcli.execution.ExecConfig`) splits the run into shards of whole
    batches (local processes, ``--shard i/N`` or a Slurm array); the result is identical.
    Items already stored for ``run`` are kept (resume) if they were made with the same settings;
    otherwise an :class:`InputError`, or with ``overwrite`` the old items are deleted first.
    """
    from reactcli.generation.store import finalize_run, store_batches

    work = Path(work)
    gen_model = load_generator(checkpoint, cfg)
    cfg = gen_model.cfg  # the options with the checkpoint's defaults filled in
    gen_model.use_work(work)
    run = check_name(run or Path(checkpoint).parent.name + ("-personalised" if cfg.personalised else ""), "--run")
    check_name(cfg.split, "--split")
    table = load_items(work, cfg.split)
    meta = _meta(gen_model, checkpoint, cfg)
    from reactcli.execution import stage_lock

    with stage_lock(work, f"generate-{run}-{cfg.split}", exec_cfg, what=f"run {run!r} ({cfg.split})"):
        check_stored_run(work, run, cfg.split, meta["fingerprint"], overwrite=overwrite)
        sharded = exec_cfg is not None and (exec_cfg.num_jobs > 1 or exec_cfg.shard is not None or exec_cfg.executor != "local")
        if not sharded:
            from reactcli.storage import FeatureStore

            pending = set(pending_items(work, run, cfg.split, table, gen_model.features))
            if not pending:  # all stored: just (re)write the manifest
                return finalize_run(work, run, cfg.split, table, num_samples=cfg.num_samples, seed=cfg.seed, meta=meta,
                                    features=gen_model.features)
            batches = _generate_batches(work, gen_model, cfg, run, item_batches(table.n, cfg.batch_size), on_progress,
                                        pending)
            with FeatureStore(work).writer(f"gen-{run}-{cfg.split}") as w:
                feats = store_batches(w, run, cfg.split, batches, num_samples=cfg.num_samples, seed=cfg.seed, meta=meta)
            return finalize_run(work, run, cfg.split, table, num_samples=cfg.num_samples, seed=cfg.seed, meta=meta,
                                features=feats or gen_model.features)
        from reactcli.execution import merge_shards, run_shards

        stage = f"generate-{run}-{cfg.split}"
        run_shards(generate_shard, (str(work), str(checkpoint), asdict(cfg), run), work, stage, exec_cfg, on_progress,
                   settings=_shard_settings(meta), overwrite=overwrite)
        if exec_cfg.shard is not None:
            return work / "features" / "shards" / stage
        merge_shards(work, stage, exec_cfg.num_jobs, name=f"gen-{run}-{cfg.split}")
        return finalize_run(work, run, cfg.split, table, num_samples=cfg.num_samples, seed=cfg.seed, meta=meta,
                            features=gen_model.features)
