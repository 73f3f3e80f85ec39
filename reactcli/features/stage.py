"""The ``extract`` stage: run extractors over every clip of a work directory into the store.

Per-clip work is :func:`reactcli.features.extract_clip` (a plain function of clip + config).
This module shards the clip manifest, runs the shards through :mod:`reactcli.execution`
(local processes or a Slurm array) and merges their store files into
``features/extract-<names>.h5``. Clips whose outputs are already stored are skipped, so a
rerun resumes; with ``on_error="skip"`` a bad clip is reported by name and left out instead of
failing its shard.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from reactcli.errors import ConfigError, InputError
from reactcli.execution import ExecConfig, merge_shards, run_shards, shard_path, stage_lock
from reactcli.features.device import check_device_name
from reactcli.features.registry import (
    RUNTIME_OPTIONS,
    ClipInputs,
    available_extractors,
    cached_extractor,
    config_fields,
    extract_clip,
    get_extractor,
    input_files,
    resolved_settings,
    settings_of,
)
from reactcli.io import file_stamp, write_json
from reactcli.manifest import ClipRecord, read_manifest, shard_records
from reactcli.progress import ProgressFn, worker_progress
from reactcli.storage import FeatureStore, ShardWriter

log = logging.getLogger(__name__)

#: feature names that are sidecar kinds imported by the ``precomputed`` extractor
SIDECAR_FEATURES = ("emotion", "tdmm")


@dataclass
class ExtractConfig:
    """What ``reactcli extract`` computes."""

    features: list[str] = field(default_factory=lambda: ["mfcc", "emotion", "tdmm"])
    """Extractor names, or the sidecar features ``emotion``/``tdmm`` (imported by ``precomputed``)."""
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-extractor options, e.g. ``{"wav2vec2": {"path": "/models/w2v"}}``."""
    on_error: str = "fail"
    """``fail``: a bad clip fails the stage; ``skip``: report it and go on."""
    device: str = "cpu"
    """Torch device of the extractors that run a network (wav2vec2, the face-model adapters, FAN
    landmarks): ``cpu``, ``cuda``, ``cuda:N`` or ``auto``. Resolved inside each shard's process,
    so a Slurm task uses the GPU it was given; a per-extractor ``device`` option wins."""
    overwrite: bool = False
    """Redo arrays (and shard files) stored with other settings instead of stopping with an error
    naming the setting that differs."""


def plan_extractors(cfg: ExtractConfig) -> list[tuple[str, dict[str, Any]]]:
    """(extractor name, options) pairs; sidecar features are grouped into one ``precomputed``."""
    known = set(available_extractors())
    plan: list[tuple[str, dict[str, Any]]] = []
    kinds = [f for f in cfg.features if f in SIDECAR_FEATURES]
    for f in cfg.features:
        if f in SIDECAR_FEATURES:
            continue
        if f not in known:
            raise ConfigError(f"--features: unknown feature {f!r}; available: {sorted(known | set(SIDECAR_FEATURES))}")
        opts = dict(cfg.options.get(f, {}))
        if "device" in config_fields(f):
            opts.setdefault("device", cfg.device)
        plan.append((f, opts))
    if kinds:
        plan.append(("precomputed", {**cfg.options.get("precomputed", {}), "kinds": kinds}))
    if not plan:
        raise ConfigError("--features: nothing to extract")
    return plan


def stage_settings(plan: list[tuple[str, dict[str, Any]]]) -> str:
    """What a shard file of this stage was computed with (JSON), compared before it is reused."""
    return json.dumps({name: resolved_settings(name, opts) for name, opts in plan}, sort_keys=True, default=str)


def _differs(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(k for k in set(old) | set(new) if k not in RUNTIME_OPTIONS and old.get(k) != new.get(k))
    return ", ".join(f"{k}: stored {old.get(k)!r}, now {new.get(k)!r}" for k in keys) or "options"


def stage_name(cfg: ExtractConfig) -> str:
    return "extract-" + "-".join(sorted(cfg.features))


def clip_inputs(rec: ClipRecord) -> ClipInputs:
    return ClipInputs(clip_id=rec.id, video=Path(rec.video) if rec.video else None,
                      audio=Path(rec.audio) if rec.audio else None, num_frames=rec.num_frames, fps=rec.fps,
                      sidecars={k: Path(v) for k, v in rec.sidecars.items()})


def _slow_clip() -> tuple[str, float] | None:
    """Fault injection for the cancellation tests: ``REACTCLI_TEST_SLOW_CLIP="<clip id>=<seconds>"``
    makes a shard stall before that clip, so a test can cancel a job array mid-shard without
    racing the machine's speed. Unset in normal use."""
    spec = os.environ.get("REACTCLI_TEST_SLOW_CLIP")
    if not spec or "=" not in spec:
        return None
    clip, _, secs = spec.rpartition("=")
    return clip, float(secs)


def extract_shard(work: str, cfg_dict: dict[str, Any], index: int, count: int,
                  on_progress: ProgressFn | None = None) -> dict[str, Any]:
    """Process shard ``index`` of ``count``: the unit of work of every executor."""
    progress = worker_progress(on_progress)
    cfg = ExtractConfig(**cfg_dict)
    work_p = Path(work)
    clips = [c.resolved(work_p) for c in read_manifest(work_p / "manifests" / "clips.jsonl", ClipRecord)]
    mine = shard_records(clips, index, count)
    plan = plan_extractors(cfg)
    # built once per process, on the device resolved here (a Slurm task's GPU), reused per clip
    dims = {name: list(cached_extractor(name, opts).dims) for name, opts in plan}
    store = FeatureStore(work_p)
    done = errors = 0
    skipped: list[str] = []
    slow = _slow_clip()
    settings = {name: settings_of(name, opts) for name, opts in plan}
    resolved = {name: resolved_settings(name, opts) for name, opts in plan}
    redone = 0
    with ShardWriter(shard_path(work_p, stage_name(cfg), index, count), work=work_p,
                     stage_settings=stage_settings(plan)) as w:
        for k, rec in enumerate(mine):
            if progress:
                progress(f"extract shard {index}/{count}: clips", k, len(mine))
            if slow and rec.id == slow[0]:
                time.sleep(slow[1])
            inputs = clip_inputs(rec)
            for name, opts in plan:
                outs = dims[name]
                files = input_files(name, opts, inputs)
                todo = False
                for f in outs:
                    if w.has(rec.id, f):
                        continue
                    mine_files = {f: files[f]} if name == "precomputed" and f in files else files
                    why = store.stale(rec.id, f, settings[name], mine_files)
                    if why is None:
                        continue
                    if why == "settings" and not cfg.overwrite:
                        old = json.loads(store.attrs(rec.id, f).get("config") or "{}")
                        raise ConfigError(
                            f"feature {f!r} of clip {rec.id!r} is stored with other {name} settings "
                            f"({_differs(old, resolved[name])}); rerun with --overwrite to redo it, or with the stored options")
                    if why.startswith("inputs"):
                        log.info("%s: %s changed since %s was stored; extracting again", rec.id, why[8:], f)
                    todo = True
                if not todo:
                    continue
                try:
                    want = resolved[name].get("fps")
                    if want is not None and abs(float(want) - float(rec.fps)) > 1e-6:  # options vs the data
                        raise InputError(f"{rec.id}: clip is {rec.fps:g} fps but {name} is configured for {float(want):g} fps "
                                         f"(option {name}.fps)")
                    arrays = extract_clip(name, opts, inputs)
                except InputError as exc:
                    if cfg.on_error != "skip":
                        raise
                    skipped.append(f"{rec.id}: {exc}")
                    errors += 1
                    continue
                for f, a in arrays.items():
                    old_ref = store.index.get((rec.id, f))
                    redone += old_ref is not None
                    mine_files = {f: files[f]} if name == "precomputed" and f in files else files
                    w.write(rec.id, f, a, fps=rec.fps, extractor=name, config={**resolved[name], **opts},
                            settings=settings[name], inputs={kk: file_stamp(p) for kk, p in mine_files.items() if p.exists()},
                            version=old_ref.version + 1 if old_ref is not None else 0)
                done += 1
        if progress:
            progress(f"extract shard {index}/{count}: clips", len(mine), len(mine))
    return {"shard": index, "count": count, "clips": len(mine), "extracted": done, "redone": redone, "skipped": skipped}


def run_extract(work: str | os.PathLike, cfg: ExtractConfig, exec_cfg: ExecConfig | None = None,
                on_progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Extract features for every clip of ``work``; returns a summary (also in reports/)."""
    exec_cfg = exec_cfg or ExecConfig()
    work = Path(work)
    check_device_name(cfg.device)
    plan = plan_extractors(cfg)  # validate before spawning anything
    on_cluster = exec_cfg.executor == "slurm"
    for name, opts in plan:
        resolved_settings(name, opts)  # unknown options: one line before anything runs
        # missing assets fail here with one line, not in every worker; on a cluster the driver
        # may see no GPU, so it checks on the CPU and the tasks resolve their own device
        get_extractor(name, **({**opts, "device": "cpu"} if on_cluster and "device" in opts else opts))
    if on_cluster and exec_cfg.slurm_gpus > 0 and all(o.get("device", "cpu") == "cpu" for _, o in plan):
        log.warning("--slurm-gpus %d reserves GPUs but every extractor runs on the CPU; "
                    "pass --device cuda (or auto) to use them", exec_cfg.slurm_gpus)
    if not (work / "manifests" / "clips.jsonl").is_file():
        raise InputError(f"{work}/manifests/clips.jsonl: no clips (run `reactcli prepare` and `reactcli clip` first)")
    stage = stage_name(cfg)
    with stage_lock(work, stage, exec_cfg):
        results = run_shards(extract_shard, (str(work), asdict(cfg)), work, stage, exec_cfg, on_progress,
                             settings=stage_settings(plan), overwrite=cfg.overwrite)
        summary: dict[str, Any] = {"stage": stage, "shards": sorted(results, key=lambda r: r.get("shard", 0)),
                                   "config": asdict(cfg), "executor": exec_cfg.executor}
        if exec_cfg.shard is None:
            n = exec_cfg.num_jobs
            merged = merge_shards(work, stage, n)
            summary["store"] = str(merged) if merged else None
        skipped = [s for r in results for s in r.get("skipped", [])]
        summary["skipped"] = skipped
        write_json(work / "reports" / f"{stage}.json", summary)
        return summary
