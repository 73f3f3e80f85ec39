"""Export frames for FRRea (FID): every n-th frame of real and generated listener reactions.

Why a separate export: FID compares two *sets of pictures*, and ``reactcli evaluate`` takes them
as two folders (``--real-frames`` / ``--fake-frames``, or ``evaluate run --fid-frames DIR``). The
official run samples every 30th frame of each clip. Generated reactions are drawn with the chosen
renderer; the real listener comes from its clip video when it can be decoded (``real="auto"`` /
``"video"``) or is drawn from its stored features with the *same* renderer (``real="render"``, or
the fallback of ``auto`` with a warning), so that both sets differ only in the motion, not in the
drawing.

The challenge's FRRea compares PIRender frames with real video. A renderer whose pictures are not
photo-like (the face2d cartoon, the flat-shaded FaceVerse mesh: ``Renderer.photoreal`` False)
against real video would measure the drawing style, not the reaction, so ``real="video"`` with
such a renderer is a :class:`ConfigError`, and ``auto`` draws the real listener with it too.

Real video frames are framed as the renderer frames its own (``Renderer.real_view``: PIRender's
frames are the challenge's 256/224 centre crop, so the real ones are cropped the same way), and
PIRender's source picture is the listener's first video frame as stored.

``<out_dir>/frames.json`` records what was exported (renderer, its assets, where the real frames
came from); ``evaluate`` reads it to refuse a cartoon-vs-video pair.

Layout (PNG, names sort by item then sample then frame)::

    <out_dir>/real/<split>_<index:05d>_f<frame:04d>.png
    <out_dir>/fake/<split>_<index:05d>_s<k:02d>_f<frame:04d>.png

The frames are already sampled: give ``reactcli evaluate`` ``--frame-stride 1`` with these
folders (its default stride of 30 would sample them again). Each PNG is written atomically;
existing ones are kept, so an interrupted export resumes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

import reactcli
from reactcli.errors import ConfigError, InputError
from reactcli.io import atomic_path, write_json
from reactcli.render.renderers import RendererConfig, make_renderer
from reactcli.render.video import (
    clip_features,
    clip_table,
    generated_features,
    load_run,
    select_items,
    video_frames_at,
    video_problem,
)
from reactcli.storage import FeatureStore

log = logging.getLogger(__name__)

__all__ = ["FidFramesSummary", "export_fid_frames"]


@dataclass
class FidFramesSummary:
    """What :func:`export_fid_frames` wrote."""

    real_dir: Path
    """Folder of real listener frames."""
    fake_dir: Path
    """Folder of generated frames."""
    real: int
    """Number of real frames (written now or already there)."""
    fake: int
    """Number of generated frames."""
    real_from_video: int
    """How many items' real frames came from decoded video (the rest were drawn)."""


def _str(path: object) -> str | None:
    return None if path is None else str(path)


def _save_png(path: Path, img: np.ndarray) -> None:
    from PIL import Image

    with atomic_path(path, suffix=".png.tmp") as tmp:  # not *.png: a stray temp is never read as a frame
        Image.fromarray(img).save(tmp, format="PNG")


def export_fid_frames(
    work: str | os.PathLike,
    run: str,
    split: str,
    out_dir: str | os.PathLike,
    every: int = 30,
    *,
    renderer: RendererConfig | str = "face2d",
    real: str = "auto",
    items: Sequence[int] | None = None,
    frames: int | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> FidFramesSummary:
    """Write frames 0, every, 2*every, ... of each item's real listener and K generated samples.

    Args:
        work: work directory with the generation run.
        run, split: the generation run and split.
        out_dir: receives ``real/`` and ``fake/``.
        every: frame stride (the official protocol: 30).
        renderer: how generated (and drawn real) reactions are pictured; its ``size`` is the
            PNG size, and decoded real video is resized to it so both sets match.
        real: ``auto`` (video if decodable, else drawn), ``video`` (error without video) or
            ``render`` (always drawn with ``renderer``).
        items: item indices (default: all items of the run).
        frames: only the first ``frames`` frames of each item.
    """
    if every < 1:
        raise ConfigError(f"--every must be >= 1, got {every}")
    if real not in ("auto", "video", "render"):
        raise ConfigError(f"real frames source {real!r}: expected auto, video or render")
    rcfg = RendererConfig(name=renderer) if isinstance(renderer, str) else renderer
    rend = make_renderer(rcfg)
    if not rend.photoreal:
        if real == "video":
            raise ConfigError(f"FID between {rend.name} drawings and real video measures the drawing style, not the "
                              f"reactions: use a photo-like renderer (--renderer pirender) or draw both sets "
                              f"(--fid-real render)")
        real = "render"
    work, out = Path(work), Path(out_dir)
    real_dir, fake_dir = out / "real", out / "fake"
    real_dir.mkdir(parents=True, exist_ok=True)
    fake_dir.mkdir(parents=True, exist_ok=True)
    records = select_items(load_run(work, run, split), items, None)
    store = FeatureStore(work)
    clips = clip_table(work)
    n_real = n_fake = from_video = 0
    for done, rec in enumerate(records, 1):
        gen, T = generated_features(store, rec, frames)
        idx = np.arange(0, T, every)
        stem = f"{split}_{rec.index:05d}"
        real_paths = [real_dir / f"{stem}_f{t:04d}.png" for t in idx]
        clip = clips.get(rec.listener)
        problem = video_problem(clip.video if clip else None) if real != "render" else "drawing requested"
        source = None
        if problem is None:
            from_video += 1
            if rend.needs_source or not all(p.exists() for p in real_paths):
                vid = video_frames_at(clip.video, np.r_[0, idx], None)  # as stored; frame 0 is the source
                source = vid[0]
                for p, img in zip(real_paths, rend.real_view(vid[1:])):
                    if not p.exists():
                        _save_png(p, img)
        else:
            if real == "video":
                raise InputError(f"listener clip {rec.listener}: {problem} (use real='auto' or 'render' to draw it)")
            if real == "auto":
                log.warning("listener clip %s: %s; drawing its features with %s", rec.listener, problem, rend.name)
            if not all(p.exists() for p in real_paths):
                emo, tdm = clip_features(store, rec.listener, T)
                drawn = rend.render_frames(emo, rend.offsets(tdm), idx)
                for p, img in zip(real_paths, drawn):
                    if not p.exists():
                        _save_png(p, img)
        n_real += len(real_paths)
        K = next(iter(gen.values())).shape[0]
        for k in range(K):
            fake_paths = [fake_dir / f"{stem}_s{k:02d}_f{t:04d}.png" for t in idx]
            n_fake += len(fake_paths)
            if all(p.exists() for p in fake_paths):
                continue
            missing = [f for f in rend.needs if f not in gen]
            if missing:
                raise InputError(f"run {run!r} stores no {missing[0]!r}, which the {rend.name} renderer needs")
            imgs = rend.render_frames(gen["emotion"][k] if "emotion" in gen else None,
                                      gen["tdmm"][k] if "tdmm" in gen else None, idx, source=source)
            for p, img in zip(fake_paths, imgs):
                if not p.exists():
                    _save_png(p, img)
        if on_progress:
            on_progress("fid frames", done, len(records))
    write_json(out / "frames.json", {
        "renderer": rend.name, "photoreal": rend.photoreal, "size": rend.size, "every": every, "real": real,
        "real_from_video": from_video, "real_drawn": len(records) - from_video, "items": len(records),
        "run": run, "split": split, "work": str(work), "pirender_checkpoint": _str(rcfg.pirender_checkpoint),
        "faceverse_model": _str(rcfg.faceverse_model), "mean_face": _str(rcfg.mean_face),
        "reactcli_version": reactcli.__version__,
    })
    return FidFramesSummary(real_dir=real_dir, fake_dir=fake_dir, real=n_real, fake=n_fake, real_from_video=from_video)
