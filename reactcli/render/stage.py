"""Rendering under the execution contract (``render --shard i/N`` or ``--executor slurm``).

Videos are files of their own (written atomically, skipped when complete), so a shard is done
when every video of its items exists; nothing needs merging.
"""

from __future__ import annotations

import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from reactcli.execution import ExecConfig, run_shards
from reactcli.manifest import shard_records
from reactcli.progress import ProgressFn, worker_progress
from reactcli.render.video import (
    RenderConfig,
    _cached_renderer,
    load_run,
    render_items,
    select_items,
    video_complete,
    video_path,
)
from reactcli.storage import FeatureStore


def render_shard(work: str, run: str, split: str, items: list[int], cfg_dict: dict[str, Any],
                 index: int, count: int, on_progress: ProgressFn | None = None) -> dict[str, Any]:
    """Render shard ``index`` of ``count`` of ``items`` (one process; the unit of every executor)."""
    mine = shard_records(items, index, count)
    cfg = replace(RenderConfig(**cfg_dict), num_jobs=1, num_items=None)
    paths = render_items(work, run, split, mine, cfg, on_progress=worker_progress(on_progress)) if mine else []
    return {"shard": index, "videos": [str(p) for p in paths]}


def render_sharded(work: str | os.PathLike, run: str, split: str, items: Sequence[int] | None, cfg: RenderConfig,
                   exec_cfg: ExecConfig, on_progress: Callable[[str, int, int], None] | None = None) -> list[Path]:
    """Render the selected items of a run split into shards; returns every selected video path."""
    work = Path(work)
    records = {r.index: r for r in select_items(load_run(work, run, split), items, cfg.num_items)}
    chosen = list(records)
    _cached_renderer(cfg.renderer_config(cfg.size))  # a missing asset fails here, even if every video exists
    store = FeatureStore(work)

    def is_done(i: int, n: int) -> bool:  # every video of the shard complete (all its frames)
        return all(video_complete(work, store, records[k], cfg.frames) for k in shard_records(chosen, i, n))

    run_shards(render_shard, (str(work), run, split, chosen, asdict(cfg)), work, f"render-{run}-{split}",
               exec_cfg, on_progress, is_done=is_done)
    return [video_path(work, run, split, k) for k in chosen]
