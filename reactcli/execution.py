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
import contextlib
import logging
import multiprocessing as mp
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import h5py

from reactcli.config import NonNegativeInt, PositiveFloat, PositiveInt
from reactcli.errors import ConfigError, ReactcliError
from reactcli.io import process_lock
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
    """Partition (``sbatch --partition``)."""
    slurm_time: PositiveInt = 60
    """Minutes per array task."""
    slurm_gpus: NonNegativeInt = 0
    """GPUs per task."""
    slurm_cpus: PositiveInt = 1
    """CPUs per task."""
    slurm_mem_gb: PositiveFloat | None = None
    """Memory per task in GB (None: the site's default)."""
    slurm_account: str | None = None
    """Account charged (``sbatch --account``)."""
    slurm_qos: str | None = None
    """Quality of service (``sbatch --qos``)."""
    slurm_array_parallelism: PositiveInt = 64
    """At most this many tasks of the array run at once."""
    slurm_timeout: PositiveFloat = 3600.0
    """Seconds the driver waits for the array before giving up (the shards keep their outputs)."""
    slurm_extra: dict[str, Any] = field(default_factory=dict)
    """More ``#SBATCH`` options, name -> value (``{"constraint": "a100", "exclude": "node3"}``)."""


class ShardFailed(ReactcliError):
    pass


def shard_dir(work: str | os.PathLike, stage: str) -> Path:
    return Path(work) / "features" / "shards" / stage


def shard_path(work: str | os.PathLike, stage: str, i: int, n: int) -> Path:
    return shard_dir(work, stage) / f"{i:04d}-of-{n:04d}.h5"


LOCKS_DIR = "locks"


@contextlib.contextmanager
def stage_lock(work: str | os.PathLike, stage: str, cfg: "ExecConfig | None" = None, what: str | None = None):
    """Hold the locks of one run of ``stage`` in ``work`` (``<work>/locks/``), so that a second
    process running the same stage at the same time stops at once with one line
    "<what> is being written by another process (pid N)" instead of corrupting the first's files.

    A whole run (every shard, then the merge) takes ``<stage>.lock`` exclusively and every shard's
    lock; ``--shard i/N`` takes only shard i's lock (and the stage lock shared), so hand-run shards
    of one stage run side by side but never twice the same shard."""
    what = what or f"stage {stage!r} of {work}"
    lock_dir = Path(work) / LOCKS_DIR
    with contextlib.ExitStack() as stack:
        if cfg is not None and cfg.shard is not None:
            i, n = cfg.shard
            stack.enter_context(process_lock(lock_dir / f"{stage}.lock", what, shared=True))
            stack.enter_context(process_lock(lock_dir / f"{stage}.{i:04d}-of-{n:04d}.lock", f"{what} (shard {i}/{n})"))
        else:
            stack.enter_context(process_lock(lock_dir / f"{stage}.lock", what))
        yield


def _spawn_pool(n: int) -> cf.Executor:
    return cf.ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("spawn"))


def run_shards(
    fn: Callable[..., dict],
    args: tuple,
    work: str | os.PathLike,
    stage: str,
    cfg: ExecConfig,
    on_progress: Callable[[str, int, int], None] | None = None,
    is_done: Callable[[int, int], bool] | None = None,
    settings: str | None = None,
    overwrite: bool = False,
) -> list[dict]:
    """Run ``fn(*args, i, n)`` for every shard not yet done; returns their summaries.

    A shard is done when its committed store file exists (``shard_path``), or, for stages whose
    outputs are files of their own (rendered videos), when ``is_done(i, n)`` says so. A shard run
    in this process also gets ``on_progress=`` (its items show in the driver's bars); one run in a
    worker or a Slurm task reports to its log (:func:`reactcli.progress.worker_progress`).
    """
    done_fn = is_done or (lambda i, n: shard_path(work, stage, i, n).exists())
    n = cfg.num_jobs if cfg.shard is None else cfg.shard[1]
    if n < 1:
        raise ConfigError("--num-jobs must be >= 1")
    if settings is not None:
        check_shard_settings(work, stage, n, settings, overwrite)
    wanted = [cfg.shard[0]] if cfg.shard is not None else list(range(n))
    todo = [i for i in wanted if not done_fn(i, n)]
    done: list[dict] = []
    if not todo:
        return done
    if cfg.executor == "local":
        if len(todo) == 1 or cfg.num_jobs == 1 or cfg.shard is not None:
            for k, i in enumerate(todo, 1):
                done.append(fn(*args, i, n, on_progress=on_progress))
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
        done = _run_slurm(fn, args, work, stage, todo, n, cfg, on_progress, done_fn)
    else:
        raise ConfigError(f"--executor {cfg.executor!r}: expected local or slurm")
    return done


def _settings_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            out += _settings_diff(old.get(k), new.get(k), f"{prefix}{k}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: stored {old!r}, now {new!r}"]


def check_shard_settings(work: str | os.PathLike, stage: str, n: int, settings: str, overwrite: bool = False) -> None:
    """Refuse to reuse (or merge) committed shard files of ``stage`` written with other settings.

    ``settings`` is the stage's settings as canonical JSON, stored in each shard file
    (``stage_settings``). A shard file with other settings is removed with ``overwrite`` (it is
    then redone), otherwise a :class:`ConfigError` names the file and the settings that differ."""
    import json

    for i in range(n):
        p = shard_path(work, stage, i, n)
        if not p.exists():
            continue
        try:
            with h5py.File(p, "r") as h5:
                theirs = h5.attrs.get("stage_settings")
        except OSError as exc:
            raise ConfigError(f"{p}: shard file cannot be read ({exc}); delete it and rerun") from exc
        if theirs is None or str(theirs) == settings:
            continue
        if overwrite:
            log.warning("%s: written with other settings; removed, it is redone (--overwrite)", p)
            p.unlink()
            continue
        try:
            diff = _settings_diff(json.loads(str(theirs)), json.loads(settings))
        except ValueError:
            diff = []
        raise ConfigError(f"{p}: shard written with other settings ({'; '.join(diff) or 'options differ'}); "
                          "rerun with the same options, or with --overwrite to redo it")


def slurm_parameters(cfg: ExecConfig) -> dict[str, Any]:
    """``submitit.SlurmExecutor`` parameters of ``cfg`` (each becomes an ``#SBATCH`` line)."""
    params: dict[str, Any] = {"time": cfg.slurm_time, "cpus_per_task": cfg.slurm_cpus,
                              "array_parallelism": cfg.slurm_array_parallelism}
    if cfg.slurm_partition:
        params["partition"] = cfg.slurm_partition
    if cfg.slurm_gpus:
        params["gpus_per_node"] = cfg.slurm_gpus
    if cfg.slurm_mem_gb:
        params["mem"] = f"{int(cfg.slurm_mem_gb * 1024)}M"
    if cfg.slurm_account:
        params["account"] = cfg.slurm_account
    if cfg.slurm_qos:
        params["qos"] = cfg.slurm_qos
    if cfg.slurm_extra:  # any #SBATCH option submitit has no parameter for
        params["additional_parameters"] = dict(cfg.slurm_extra)
    return params


def _run_slurm(fn, args, work, stage, todo, n, cfg: ExecConfig, on_progress, done_fn) -> list[dict]:
    try:
        import submitit
    except ImportError as exc:  # pragma: no cover - dependency is declared
        raise ConfigError("--executor slurm needs the 'submitit' package") from exc
    folder = Path(work) / "logs" / "slurm" / stage
    ex = submitit.SlurmExecutor(folder=str(folder))
    params = slurm_parameters(cfg)
    ex.update_parameters(**params)
    cols = [[a] * len(todo) for a in args]
    jobs = ex.map_array(fn, *cols, todo, [n] * len(todo))
    array_id = jobs[0].job_id.split("_")[0]
    log.info("submitted %d Slurm array tasks (job %s); logs in %s", len(jobs), array_id, folder)
    deadline = time.monotonic() + cfg.slurm_timeout
    pending = dict(zip(todo, jobs))
    results: list[dict] = []
    failures: list[str] = []
    total = len(pending)
    # Without accounting, sacct fails and submitit never sees a cancelled/killed task as done:
    # the queue (squeue keeps finished jobs for MinJobAge) tells us instead. ``gone_since``
    # holds when a task was first seen finished without a result, to allow for a late result file.
    gone_since: dict[int, float] = {}
    next_queue_check = 0.0
    quiet = _OnceFilter("Bypassing sacct error")
    sublog = logging.getLogger("submitit")
    sublog.addFilter(quiet)
    try:
        while pending:
            now = time.monotonic()
            states = None
            if now >= next_queue_check:
                states = _queue_states(array_id)
                next_queue_check = now + 1.0
            for i, job in list(pending.items()):
                finished = False
                if job.done():
                    finished = True
                    try:
                        results.append(job.result())
                    except Exception as exc:  # submitit wraps job errors in FailedJobError etc.
                        if done_fn(i, n):
                            # The committed shard file is the contract; a task killed after
                            # committing (e.g. scancel) can leave an empty result pickle.
                            log.warning("shard %d/%d: output committed but no readable result (%s)", i, n,
                                        _job_error_line(exc))
                            results.append({"shard": i})
                        else:
                            failures.append(f"shard {i}/{n} (job {job.job_id}) failed: {_job_error_line(exc)}; "
                                            f"log: {job.paths.stderr}")
                elif done_fn(i, n):
                    # Output committed; the result file normally follows within milliseconds.
                    t0 = gone_since.setdefault(i, now)
                    if now - t0 > _RESULT_GRACE_S:
                        finished = True
                        results.append({"shard": i})
                elif states is not None:
                    state = states.get(job.job_id)
                    if state is None or state in _ENDED_STATES:
                        t0 = gone_since.setdefault(i, now)
                        # A task that ran to the end should have left a result file (allow for
                        # a slow shared filesystem); a cancelled/killed one will not.
                        grace = _RESULT_GRACE_S if state in (None, "COMPLETED") else _KILLED_GRACE_S
                        if now - t0 > grace:
                            finished = True
                            what = f"ended as {state}" if state else "left the queue"
                            failures.append(f"shard {i}/{n} (job {job.job_id}) {what} without a result "
                                            f"(cancelled or killed?); log: {job.paths.stderr}")
                    else:
                        gone_since.pop(i, None)
                if finished:
                    pending.pop(i)
                    if on_progress:
                        on_progress(f"{stage} slurm tasks", total - len(pending), total)
            if pending and time.monotonic() > deadline:
                ids = ", ".join(f"shard {i} (job {j.job_id}, log {j.paths.stderr})" for i, j in pending.items())
                raise ShardFailed(f"timed out waiting for Slurm: {ids}; rerun to resubmit only unfinished shards")
            if pending:
                time.sleep(0.25)
    finally:
        sublog.removeFilter(quiet)
    if failures:
        raise ShardFailed(f"{len(failures)} Slurm shard(s) failed; rerun to resubmit only them. "
                          + " | ".join(failures))
    return results


#: seconds a task may look COMPLETED (or gone from the queue) before its missing result counts
#: as a failure (result files can show up late on network filesystems)
_RESULT_GRACE_S = 10.0
#: the same for cancelled/failed/timed-out tasks (their processes are gone; no result will come)
_KILLED_GRACE_S = 1.0
#: squeue states of a task that will not produce a result any more
_ENDED_STATES = frozenset({"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "PREEMPTED",
                           "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED"})


def _job_error_line(exc: BaseException) -> str:
    """The one line that says what went wrong in a Slurm task.

    submitit's ``FailedJobError`` text is the task's whole traceback between two dashed rules,
    followed by log paths; the useful line is the traceback's last one (``pkg.SomeError: msg``),
    shortened to ``SomeError: msg``.
    """
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    parts = text.split("----------------------")
    trace = parts[1] if len(parts) >= 3 else text
    lines = [ln for ln in trace.strip().splitlines() if ln.strip()]
    last = lines[-1].strip() if lines else text.splitlines()[-1]
    head, sep, msg = last.partition(": ")
    if sep and " " not in head and "." in head:
        last = f"{head.rsplit('.', 1)[1]}: {msg}"
    return last


def _queue_states(array_id: str) -> dict[str, str] | None:
    """``{"<array>_<task>": state}`` from ``squeue`` (finished tasks included while the
    controller remembers them); None when squeue cannot be asked (then only the timeout applies)."""
    import subprocess

    try:
        r = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-j", array_id, "-o", "%i %T"],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if r.returncode != 0:
        # An unknown (purged) job id is an error for squeue: every task has left the queue.
        return {} if "Invalid job id" in r.stderr else None
    states: dict[str, str] = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            states[parts[0]] = parts[1].rstrip("+")
    return states


class _OnceFilter(logging.Filter):
    """Let a recurring log message through once (submitit warns about sacct on every poll)."""

    def __init__(self, needle: str):
        super().__init__()
        self.needle, self.seen = needle, False

    def filter(self, record: logging.LogRecord) -> bool:
        if self.needle not in record.getMessage():
            return True
        if self.seen:
            return False
        self.seen = True
        return True


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
