"""One execution contract for every per-clip/per-item stage.

A stage provides a *shard function* ``fn(shard_index, shard_count) -> dict`` that processes its
deterministic part of the manifest (:func:`reactcli.manifest.shard_records`) and writes its own
output file under ``<work>/features/shards/<stage>/``; the driver then *merges* the shard files
into the same canonical store file that a one-process run produces. So 1 job, N local jobs,
``--shard i/N`` run by hand, and a Slurm job array all end in identical arrays and manifests.

Executors:
- ``local`` with ``num_jobs`` processes (``concurrent.futures.ProcessPoolExecutor``, spawn);
- ``slurm``: ``submitit``'s ``SlurmExecutor.map_array`` submits the shards as one job array,
  the driver waits (with a timeout: without accounting a cancelled job is never "finished"),
  and a failed/cancelled shard is reported by shard id with its log path. Rerunning resubmits
  only shards whose output is not committed.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing as mp
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import h5py

from reactcli.errors import ConfigError, ReactcliError
from reactcli.storage import FeatureStore
from reactcli.storage.store import _iter_datasets

log = logging.getLogger(__name__)


@dataclass
class ExecConfig:
    """How a sharded stage runs."""

    executor: str = "local"
    """``local`` (process pool) or ``slurm`` (job array through submitit)."""
    num_jobs: int = 1
    """Local: parallel processes. Slurm: number of array tasks (shards)."""
    shard: tuple[int, int] | None = None
    """Run only shard i of N (``--shard i/N``); the outputs stay as a shard file for a later merge."""
    slurm_partition: str | None = None
    slurm_time: int = 60
    """Minutes per array task."""
    slurm_gpus: int = 0
    slurm_cpus: int = 1
    slurm_mem_gb: float | None = None
    slurm_array_parallelism: int = 64
    slurm_timeout: float = 3600.0
    """Seconds the driver waits for the array before giving up (the shards keep their outputs)."""
    slurm_extra: dict[str, Any] = field(default_factory=dict)


class ShardFailed(ReactcliError):
    pass


def shard_dir(work: str | os.PathLike, stage: str) -> Path:
    return Path(work) / "features" / "shards" / stage


def shard_path(work: str | os.PathLike, stage: str, i: int, n: int) -> Path:
    return shard_dir(work, stage) / f"{i:04d}-of-{n:04d}.h5"


def _spawn_pool(n: int) -> cf.Executor:
    return cf.ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn"))


def run_shards(
    fn: Callable[..., dict],
    args: tuple,
    work: str | os.PathLike,
    stage: str,
    cfg: ExecConfig,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> list[dict]:
    """Run ``fn(*args, i, n)`` for every shard not yet committed; returns their summaries."""
    n = cfg.num_jobs if cfg.shard is None else cfg.shard[1]
    if n < 1:
        raise ConfigError("--num-jobs must be >= 1")
    wanted = [cfg.shard[0]] if cfg.shard is not None else list(range(n))
    todo = [i for i in wanted if not shard_path(work, stage, i, n).exists()]
    done: list[dict] = []
    if not todo:
        return done
    if cfg.executor == "local":
        if len(todo) == 1 or cfg.num_jobs == 1 or cfg.shard is not None:
            for k, i in enumerate(todo, 1):
                done.append(fn(*args, i, n))
                if on_progress:
                    on_progress(f"{stage} shards", k, len(todo))
        else:
            with _spawn_pool(min(cfg.num_jobs, len(todo))) as pool:
                futs = {pool.submit(fn, *args, i, n): i for i in todo}
                errors = []
                for k, fut in enumerate(cf.as_completed(futs), 1):
                    try:
                        done.append(fut.result())
                    except ReactcliError as exc:
                        errors.append(f"shard {futs[fut]}/{n}: {exc}")
                    if on_progress:
                        on_progress(f"{stage} shards", k, len(todo))
                if errors:
                    raise ShardFailed(f"{len(errors)} shard(s) failed; rerun to redo only them. First: {errors[0]}")
    elif cfg.executor == "slurm":
        done = _run_slurm(fn, args, work, stage, todo, n, cfg, on_progress)
    else:
        raise ConfigError(f"--executor {cfg.executor!r}: expected local or slurm")
    return done


def _run_slurm(fn, args, work, stage, todo, n, cfg: ExecConfig, on_progress) -> list[dict]:
    try:
        import submitit
    except ImportError as exc:  # pragma: no cover - dependency is declared
        raise ConfigError("--executor slurm needs the 'submitit' package") from exc
    folder = Path(work) / "logs" / "slurm" / stage
    ex = submitit.SlurmExecutor(folder=str(folder))
    params: dict[str, Any] = {"time": cfg.slurm_time, "cpus_per_task": cfg.slurm_cpus,
                              "array_parallelism": cfg.slurm_array_parallelism}
    if cfg.slurm_partition:
        params["partition"] = cfg.slurm_partition
    if cfg.slurm_gpus:
        params["gpus_per_node"] = cfg.slurm_gpus
    if cfg.slurm_mem_gb:
        params["mem"] = f"{int(cfg.slurm_mem_gb * 1024)}M"
    params.update(cfg.slurm_extra)
    ex.update_parameters(**params)
    cols = [[a] * len(todo) for a in args]
    jobs = ex.map_array(fn, *cols, todo, [n] * len(todo))
    log.info("submitted %d Slurm array tasks (job %s); logs in %s", len(jobs), jobs[0].job_id.split("_")[0], folder)
    deadline = time.monotonic() + cfg.slurm_timeout
    pending = dict(zip(todo, jobs))
    results: list[dict] = []
    failures: list[str] = []
    total = len(pending)
    while pending:
        for i, job in list(pending.items()):
            if job.done():
                pending.pop(i)
                try:
                    results.append(job.result())
                except Exception as exc:  # submitit wraps job errors in FailedJobError etc.
                    first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                    failures.append(f"shard {i}/{n} (job {job.job_id}) failed: {first}; log: {job.paths.stderr}")
                if on_progress:
                    on_progress(f"{stage} slurm tasks", total - len(pending), total)
            elif shard_path(work, stage, i, n).exists() and job.state in ("COMPLETED", "UNKNOWN"):
                pending.pop(i)  # output committed; accounting may not know yet
                results.append({"shard": i})
                if on_progress:
                    on_progress(f"{stage} slurm tasks", total - len(pending), total)
        if pending and time.monotonic() > deadline:
            ids = ", ".join(f"shard {i} (job {j.job_id}, log {j.paths.stderr})" for i, j in pending.items())
            raise ShardFailed(f"timed out waiting for Slurm: {ids}; rerun to resubmit only unfinished shards")
        if pending:
            time.sleep(0.5)
    if failures:
        raise ShardFailed(f"{len(failures)} Slurm shard(s) failed; rerun to resubmit only them. {failures[0]}")
    return results


def merge_shards(work: str | os.PathLike, stage: str, n: int, name: str | None = None) -> Path | None:
    """Copy every dataset of the committed shard files ``0..n-1`` into one canonical store file.

    Datasets are copied in (shard, key) order with their attributes, so the canonical file's
    arrays and the arrays manifest do not depend on how the work was split. Shard files are
    removed after the canonical file is committed. Returns the canonical file (None if empty).
    """
    work = Path(work)
    paths = [shard_path(work, stage, i, n) for i in range(n)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise ShardFailed(f"cannot merge {stage}: {len(missing)} shard(s) missing, first {missing[0]}")
    store = FeatureStore(work)
    items = []
    for p in paths:
        with h5py.File(p, "r") as h5:
            items.extend((p, k) for k, _ in _iter_datasets(h5))
    if not items:
        for p in paths:
            p.unlink()
        return None
    items.sort(key=lambda x: x[1])
    writer = store.writer(name or stage)
    with writer as w:
        handles: dict[Path, h5py.File] = {}
        try:
            for p, key in items:
                h = handles.get(p) or handles.setdefault(p, h5py.File(p, "r"))
                ds = h[key]
                attrs = dict(ds.attrs)
                clip, feature = attrs.pop("clip"), attrs.pop("feature")
                fps = attrs.pop("fps")
                extractor = attrs.pop("extractor", "")
                config = attrs.pop("config", "{}")
                for k in ("crc32", "complete", "reactcli_version"):
                    attrs.pop(k, None)
                import json

                w.write(clip, feature, ds[()], fps=fps, extractor=extractor, config=json.loads(config), attrs=attrs, dtype=None)
        finally:
            for h in handles.values():
                h.close()
    for p in paths:
        p.unlink()
    d = shard_dir(work, stage)
    for folder in (d, d.parent):
        if folder.exists() and not any(folder.iterdir()):
            shutil.rmtree(folder)
    store.refresh()
    return writer.path
