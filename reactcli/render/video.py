"""``reactcli render``: one side-by-side H.264 video per item of a generation run.

Each frame shows, in sync at the clips' 25 fps::

    +-----------+---------------------+-----------+
    |  speaker  | sample 1 .. sample K|  listener |
    |  (video)  |   (a grid, rows x   |  (real)   |
    |           |    cols of cells)   |           |
    +-----------+---------------------+-----------+

with the speaker's audio muxed in, so a viewer hears what the listener reacts to. The speaker
and the real listener come from their clip videos (decoded with PyAV) when those can be decoded;
otherwise (no video, a placeholder, a corrupt file) their stored features are drawn instead,
with a warning naming the clip: the speaker with the built-in face2d, the real listener with the
same renderer as the samples (so the two are comparable). The K generated reactions are drawn
with the chosen renderer (:mod:`reactcli.render.renderers`). Real video is framed as that renderer
frames its pictures (PIRender: the challenge's centre crop), and PIRender re-animates the
listener's first video frame. With ``mean_face`` the run's tdmm are offsets from the challenge's
mean face (its models' outputs) and the stored real features are converted to match.

Outputs: ``<work>/videos/<run>/<split>/<index>.mp4``. Every file is written through a temporary
file and moved into place when complete (:class:`reactcli.media.encode.VideoWriter`); a rerun
skips items whose video exists with the expected number of frames (resume), and re-renders a
video whose frame count differs (e.g. after changing ``frames``). Items are independent files,
so parallelism is a local process pool over items (``num_jobs``), not HDF5 shards.

Frames are produced in chunks (``chunk`` frames of every panel at a time), so memory stays
bounded for K = 10 samples at 256 px.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
import multiprocessing as mp
import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np

from reactcli.errors import ConfigError, InputError, ReactcliError
from reactcli.manifest import ClipRecord, GeneratedRecord, read_manifest
from reactcli.render.renderers import Face2DRenderer, Renderer, RendererConfig, make_renderer
from reactcli.storage import FeatureStore

log = logging.getLogger(__name__)

__all__ = [
    "RenderConfig",
    "render_items",
    "render_item",
    "video_path",
    "load_run",
    "select_items",
    "grid_layout",
    "clip_features",
    "video_problem",
    "video_chunks",
    "video_frames_at",
]


@dataclass
class RenderConfig:
    """Options of ``reactcli render`` (videos of generated reactions)."""

    renderer: str = "face2d"
    """How generated reactions are drawn: ``face2d``, ``faceverse`` or ``pirender``."""
    faceverse_model: str | None = None
    """FaceVerse v2 model file, for ``--renderer faceverse``."""
    pirender_checkpoint: str | None = None
    """PIRender checkpoint, for ``--renderer pirender``."""
    mean_face: str | None = None
    """The challenge's ``mean_face.npy``: the run's tdmm are offsets from it (the challenge's models'
    outputs), added back before drawing. None: the run holds the coefficients (reactcli's models)."""
    size: int = 128
    """Side of the speaker and real-listener panels in pixels (even)."""
    grid_rows: int | None = None
    """Rows of the sample grid; None: 2 when K >= 4, else 1. Cells are ``size // rows`` (even)."""
    max_samples: int | None = None
    """Show at most this many of the K generated samples (None: all)."""
    frames: int | None = None
    """Render only the first ``frames`` frames (None: the generated length)."""
    num_items: int | None = None
    """Render the first ``num_items`` items when no explicit item list is given (None: all)."""
    num_jobs: int = 1
    """Items rendered in parallel (local processes)."""
    fps: float = 25.0
    """Frame rate of features and output (REACT clips are 25 fps)."""
    audio: bool = True
    """Mux the speaker's audio (skipped with a warning when it cannot be read)."""
    labels: bool = True
    """Write a text label on each panel."""
    crf: int = 23
    """x264 quality (lower = better, larger)."""
    preset: str = "veryfast"
    """x264 speed preset."""
    chunk: int = 125
    """Frames of every panel rendered and encoded at a time (memory bound)."""
    device: str = "cpu"
    """Torch device for PIRender."""

    def renderer_config(self, size: int) -> RendererConfig:
        return RendererConfig(name=self.renderer, size=size, faceverse_model=self.faceverse_model,
                              pirender_checkpoint=self.pirender_checkpoint, mean_face=self.mean_face,
                              device=self.device)


# --------------------------------------------------------------------------------------------
# Reading a run and its clips
# --------------------------------------------------------------------------------------------


def load_run(work: str | os.PathLike, run: str, split: str) -> list[GeneratedRecord]:
    """The (complete) generation run's records, sorted by item index."""
    from reactcli.generation.store import manifest_path

    path = manifest_path(work, run, split)
    if not path.is_file():
        raise InputError(f"{path}: generation run {run!r} for split {split!r} not found or incomplete "
                         "(run `reactcli generate` first)")
    recs = sorted(read_manifest(path, GeneratedRecord), key=lambda r: r.index)
    if not recs:
        raise InputError(f"{path}: generation run {run!r} has no items")
    return recs


def select_items(records: Sequence[GeneratedRecord], items: Sequence[int] | None, num_items: int | None) -> list[GeneratedRecord]:
    """Records for explicit item indices, else the first ``num_items``, else all."""
    by_index = {r.index: r for r in records}
    if items is not None:
        missing = [i for i in items if i not in by_index]
        if missing:
            raise ConfigError(f"items {missing[:5]} are not in the run (it has items 0..{max(by_index)})")
        return [by_index[i] for i in dict.fromkeys(items)]
    if num_items is not None:
        if num_items < 1:
            raise ConfigError(f"--num-items must be >= 1, got {num_items}")
        return list(records[:num_items])
    return list(records)


def clip_table(work: str | os.PathLike) -> dict[str, ClipRecord]:
    """Clip id -> :class:`ClipRecord` from ``manifests/clips.jsonl`` (empty if there is none)."""
    path = Path(work) / "manifests" / "clips.jsonl"
    if not path.is_file():
        return {}
    return {c.id: c.resolved(work) for c in read_manifest(path, ClipRecord)}


def _fit(arr: np.ndarray, T: int) -> np.ndarray:
    arr = np.asarray(arr, np.float32)
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape[0] >= T:
        return arr[:T]
    return np.concatenate([arr, np.repeat(arr[-1:], T - arr.shape[0], 0)])


def clip_features(store: FeatureStore, clip: str, T: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Stored ``emotion`` / ``tdmm`` of a real clip cut (or edge-padded) to ``T`` frames."""
    emo = _fit(store.read(clip, "emotion"), T) if store.has(clip, "emotion") else None
    tdm = _fit(store.read(clip, "tdmm"), T) if store.has(clip, "tdmm") else None
    return emo, tdm


def generated_features(store: FeatureStore, rec: GeneratedRecord, frames: int | None) -> tuple[dict[str, np.ndarray], int]:
    """``{feature: (K, T, D)}`` of one generated item and its length T."""
    out = {}
    for f in ("emotion", "tdmm"):
        if f in rec.features or store.has(rec.clip, f):
            arr = np.asarray(store.read(rec.clip, f), np.float32)
            if arr.ndim != 3:
                raise InputError(f"generated {f} of item {rec.split}/{rec.index} (run {rec.run!r}) has shape {arr.shape}, expected (K, T, D)")
            out[f] = arr[:, :frames] if frames else arr
    if not out:
        raise InputError(f"run {rec.run!r}: item {rec.split}/{rec.index} has neither emotion nor tdmm stored")
    lengths = {a.shape[1] for a in out.values()}
    if len(lengths) != 1:
        raise InputError(f"run {rec.run!r}: item {rec.split}/{rec.index}: emotion and tdmm lengths differ {sorted(lengths)}")
    return out, lengths.pop()


# --------------------------------------------------------------------------------------------
# Decoding real videos
# --------------------------------------------------------------------------------------------


def video_problem(path: str | os.PathLike | None) -> str | None:
    """None if ``path`` is a video whose first frame decodes, else why not (for the warning)."""
    import av

    if not path:
        return "no video in the manifest"
    p = Path(path)
    if not p.is_file():
        return f"{p} not found"
    try:
        with av.open(str(p)) as c:
            if not c.streams.video:
                return f"{p} has no video stream"
            for _ in c.decode(video=0):
                return None
    except (av.FFmpegError, UnicodeDecodeError, ValueError, OSError) as exc:
        return f"{p} cannot be decoded ({exc})"
    return f"{p} has no decodable frame"


def video_chunks(path: str | os.PathLike, T: int, size: int | None, chunk: int) -> Iterator[np.ndarray]:
    """Yield the first ``T`` frames resized to ``size x size`` (None: as stored) in chunks of ``chunk``.

    A video shorter than ``T`` is padded by repeating its last frame (with a warning when more
    than one frame is missing), so the panel stays in sync with the others.
    """
    import av

    buf: list[np.ndarray] = []
    n = 0
    last = None
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            last = (f.to_ndarray(format="rgb24") if size is None
                    else f.reformat(width=size, height=size, format="rgb24").to_ndarray())
            buf.append(last)
            n += 1
            if len(buf) == chunk:
                yield np.stack(buf)
                buf = []
            if n == T:
                break
    if last is None:
        raise InputError(f"{path}: video has no decodable frames")
    if n < T:
        if T - n > 1:
            log.warning("%s: video has %d frames, %d needed; repeating its last frame", path, n, T)
        while n < T:
            buf.append(last)
            n += 1
            if len(buf) == chunk:
                yield np.stack(buf)
                buf = []
    if buf:
        yield np.stack(buf)


def video_frames_at(path: str | os.PathLike, frames: Sequence[int], size: int | None) -> np.ndarray:
    """Frames at the given indices (ascending order not required), resized to ``size`` (None: as stored)."""
    want = np.asarray(frames, np.int64)
    T = int(want.max()) + 1 if want.size else 0
    if not T:
        return np.zeros((0, size or 0, size or 0, 3), np.uint8)
    return np.concatenate(list(video_chunks(path, T, size, T)))[want]


def _read_audio(path: Path) -> tuple[np.ndarray, int]:
    """``(N, C)`` float32 samples and rate; soundfile first, PyAV for other containers."""
    try:
        import soundfile as sf

        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        return data, int(rate)
    except Exception:
        pass
    import av

    with av.open(str(path)) as c:
        if not c.streams.audio:
            raise InputError(f"{path}: no audio stream")
        st = c.streams.audio[0]
        rate = st.codec_context.sample_rate
        res = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts = []
        for fr in c.decode(audio=0):
            for o in res.resample(fr):
                parts.append(o.to_ndarray().reshape(-1))
        if not parts:
            raise InputError(f"{path}: no decodable audio")
        return np.concatenate(parts)[:, None].astype(np.float32), int(rate)


def prepare_audio(path: str | os.PathLike | None, seconds: float, out_wav: Path) -> Path | None:
    """Write the first ``seconds`` of ``path`` (zero-padded) as a WAV; None (+ warning) if unreadable.

    Cutting to the video's exact length keeps both streams the same duration, so the muxed
    file neither stops the picture early nor leaves a tail of sound.
    """
    from reactcli.media.encode import write_wav

    if not path:
        log.warning("no speaker audio in the manifest; the video will be silent")
        return None
    p = Path(path)
    try:
        data, rate = _read_audio(p)
    except Exception as exc:  # placeholder, corrupt, unknown format
        log.warning("%s: speaker audio cannot be read (%s); the video will be silent", p, exc)
        return None
    n = int(round(seconds * rate))
    data = data[:n]
    if data.shape[0] < n:
        data = np.concatenate([data, np.zeros((n - data.shape[0], data.shape[1]), np.float32)])
    return write_wav(out_wav, np.clip(data, -1.0, 1.0), rate)


# --------------------------------------------------------------------------------------------
# Layout and composing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GridLayout:
    """Pixel layout of one video frame."""

    size: int  # speaker / listener panel side
    rows: int
    cols: int
    cell: int  # sample cell side
    width: int
    height: int

    def cell_origin(self, k: int) -> tuple[int, int]:
        """(y, x) of sample k's cell (row-major)."""
        r, c = divmod(k, self.cols)
        return r * self.cell, self.size + c * self.cell

    @property
    def listener_x(self) -> int:
        return self.size + self.cols * self.cell


def grid_layout(num_samples: int, size: int, rows: int | None = None) -> GridLayout:
    """Speaker panel, a rows x cols grid of K samples, real listener panel; all sizes even."""
    if num_samples < 1:
        raise InputError("a generation run item has no samples (K = 0)")
    if size < 16 or size % 2:
        raise ConfigError(f"--size must be an even number >= 16, got {size}")
    rows = rows or (2 if num_samples >= 4 else 1)
    if rows < 1:
        raise ConfigError(f"grid rows must be >= 1, got {rows}")
    rows = min(rows, num_samples)
    cell = (size // rows) // 2 * 2
    if cell < 16:
        raise ConfigError(f"--size {size} with {rows} grid rows gives {cell} px cells; use a larger --size")
    cols = math.ceil(num_samples / rows)
    width = 2 * size + cols * cell
    return GridLayout(size=size, rows=rows, cols=cols, cell=cell, width=width, height=size)


def put_label(img: np.ndarray, text: str) -> None:
    """White text with a dark outline in the top-left corner of ``img`` (in place)."""
    scale = max(0.25, img.shape[0] / 320)
    thick = max(1, int(round(scale * 1.5)))
    margin = max(2, img.shape[1] // 40)
    (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick + 2)
    if w > img.shape[1] - 2 * margin:  # shrink long labels to fit the panel
        scale *= (img.shape[1] - 2 * margin) / w
    org = (margin, margin + int(round(22 * scale)))
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)


@dataclass
class _Panel:
    label: str
    chunks: Iterator[np.ndarray]


def video_path(work: str | os.PathLike, run: str, split: str, index: int) -> Path:
    return Path(work) / "videos" / run / split / f"{index}.mp4"


def _is_complete(path: Path, frames: int) -> bool:
    from reactcli.media.probe import probe

    if not path.is_file():
        return False
    try:
        info = probe(path)
    except InputError:
        return False
    return info.num_frames == frames


_RENDERER_CACHE: dict[tuple, Renderer] = {}


def _cached_renderer(cfg: RendererConfig) -> Renderer:
    key = (cfg.name, cfg.size, str(cfg.faceverse_model), str(cfg.pirender_checkpoint), str(cfg.mean_face),
           cfg.device, cfg.batch_size)
    r = _RENDERER_CACHE.get(key)
    if r is None:
        r = _RENDERER_CACHE[key] = make_renderer(replace(cfg))
    return r


def _real_panel(
    clip: ClipRecord | None, clip_id: str, store: FeatureStore, T: int, chunk: int, renderer: Renderer, role: str,
) -> tuple[_Panel, np.ndarray | None]:
    """A real person's panel (video, or features drawn by ``renderer``) and its first frame.

    Video frames are framed as ``renderer`` frames its pictures (:meth:`Renderer.real_view`);
    the first frame is returned as stored, the source picture PIRender re-animates. Drawn
    features are the store's coefficients, given to the renderer in its input convention
    (:meth:`Renderer.offsets`).
    """
    problem = video_problem(clip.video if clip else None)
    if problem is None:
        first = next(video_chunks(clip.video, 1, None, 1))[0]
        chunks = (renderer.real_view(c) for c in video_chunks(clip.video, T, None, chunk))
        return _Panel(f"{role} (real)", chunks), first
    log.warning("%s clip %s: %s; drawing its features with %s instead", role, clip_id, problem, renderer.name)
    emo, tdm = clip_features(store, clip_id, T)
    missing = [f for f in renderer.needs if (emo if f == "emotion" else tdm) is None]
    if missing:
        raise InputError(f"{role} clip {clip_id}: no decodable video and no stored {missing[0]!r} to draw instead")
    return _Panel(f"{role} ({renderer.name})", renderer.iter_render(emo, renderer.offsets(tdm), chunk=chunk)), None


def render_item(
    work: str | os.PathLike,
    rec: GeneratedRecord,
    cfg: RenderConfig,
    clips: dict[str, ClipRecord] | None = None,
    out: Path | None = None,
) -> Path:
    """Compose and encode the video of one generated item (see the module docstring)."""
    from reactcli.media.encode import VideoWriter

    work = Path(work)
    store = FeatureStore(work)
    clips = clip_table(work) if clips is None else clips
    gen, T = generated_features(store, rec, cfg.frames)
    K = next(iter(gen.values())).shape[0]
    if cfg.max_samples is not None:
        K = min(K, max(1, int(cfg.max_samples)))
    lay = grid_layout(K, cfg.size, cfg.grid_rows)
    chunk = max(1, int(cfg.chunk))
    sample_renderer = _cached_renderer(cfg.renderer_config(lay.cell))
    missing = [f for f in sample_renderer.needs if f not in gen]
    if missing:
        raise InputError(f"run {rec.run!r} stores no {missing[0]!r}, which --renderer {cfg.renderer} needs")
    listener_renderer = _cached_renderer(cfg.renderer_config(lay.size))
    speaker_renderer = Face2DRenderer(lay.size)

    spk_clip, lis_clip = clips.get(rec.speaker), clips.get(rec.listener)
    speaker, _ = _real_panel(spk_clip, rec.speaker, store, T, chunk, speaker_renderer, "speaker")
    listener, lis_first = _real_panel(lis_clip, rec.listener, store, T, chunk, listener_renderer, "listener")
    source = lis_first if sample_renderer.needs_source else None
    samples = [
        _Panel(f"sample {k + 1}", sample_renderer.iter_render(
            gen["emotion"][k] if "emotion" in gen else None, gen["tdmm"][k] if "tdmm" in gen else None,
            source=source, chunk=chunk))
        for k in range(K)
    ]

    out = out or video_path(work, rec.run, rec.split, rec.index)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{out.stem}.audio.", dir=out.parent))
    try:
        wav = None
        if cfg.audio:
            wav = prepare_audio(spk_clip.audio if spk_clip else None, T / cfg.fps, tmpdir / "speaker.wav")
        with VideoWriter(out, lay.width, lay.height, cfg.fps, crf=cfg.crf, preset=cfg.preset, audio=wav) as vw:
            done = 0
            while done < T:
                n = min(chunk, T - done)
                canvas = np.zeros((n, lay.height, lay.width, 3), np.uint8)
                canvas[:, :, lay.size:lay.listener_x] = 24  # dark grey behind a partly filled grid
                canvas[:, :, : lay.size] = _take(speaker, n)
                canvas[:, :, lay.listener_x : lay.listener_x + lay.size] = _take(listener, n)
                for k, panel in enumerate(samples):
                    y, x = lay.cell_origin(k)
                    canvas[:, y : y + lay.cell, x : x + lay.cell] = _take(panel, n)
                if cfg.labels:
                    for t in range(n):
                        put_label(canvas[t, :, : lay.size], speaker.label)
                        put_label(canvas[t, :, lay.listener_x : lay.listener_x + lay.size], listener.label)
                        for k, panel in enumerate(samples):
                            y, x = lay.cell_origin(k)
                            put_label(canvas[t, y : y + lay.cell, x : x + lay.cell], panel.label)
                vw.write(canvas)
                done += n
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return out


def _take(panel: _Panel, n: int) -> np.ndarray:
    try:
        block = next(panel.chunks)
    except StopIteration:
        raise InputError(f"panel {panel.label!r} ended early") from None
    if block.shape[0] != n:
        raise InputError(f"panel {panel.label!r} gave {block.shape[0]} frames where {n} were expected")
    return block


def _render_job(work: str, rec: GeneratedRecord, cfg: RenderConfig) -> tuple[int, str | None, str | None]:
    """Process-pool entry: (index, output path or None, error message or None)."""
    try:
        return rec.index, str(render_item(work, rec, cfg)), None
    except ReactcliError as exc:
        return rec.index, None, str(exc)


def render_items(
    work: str | os.PathLike,
    run: str,
    split: str,
    items: Sequence[int] | None = None,
    cfg: RenderConfig | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> list[Path]:
    """Render the videos of ``items`` (or the first ``cfg.num_items``, or all) of a run.

    Returns the video paths in item order (existing complete ones included). Items that fail
    are reported by index with their error after the others finished, as one InputError, so a
    rerun redoes only them.
    """
    cfg = cfg or RenderConfig()
    work = Path(work)
    records = select_items(load_run(work, run, split), items, cfg.num_items)
    # fail fast on a missing asset, before any video is started
    _cached_renderer(cfg.renderer_config(cfg.size))
    store = FeatureStore(work)
    paths: dict[int, Path] = {}
    todo: list[GeneratedRecord] = []
    for rec in records:
        p = video_path(work, run, split, rec.index)
        T = _expected_frames(store, rec, cfg.frames)
        if _is_complete(p, T):
            paths[rec.index] = p
        else:
            todo.append(rec)
    if len(paths):
        log.info("render: %d of %d videos already complete, skipped", len(paths), len(records))
    errors: list[str] = []
    total = len(todo)
    if todo:
        clips = clip_table(work)
        if cfg.num_jobs > 1 and len(todo) > 1:
            with cf.ProcessPoolExecutor(max_workers=min(cfg.num_jobs, len(todo)), mp_context=mp.get_context("spawn")) as pool:
                futs = [pool.submit(_render_job, str(work), rec, cfg) for rec in todo]
                for k, fut in enumerate(cf.as_completed(futs), 1):
                    idx, path, err = fut.result()
                    if err:
                        errors.append(f"item {split}/{idx}: {err}")
                    else:
                        paths[idx] = Path(path)
                    if on_progress:
                        on_progress("render videos", k, total)
        else:
            for k, rec in enumerate(todo, 1):
                try:
                    paths[rec.index] = render_item(work, rec, cfg, clips)
                except ReactcliError as exc:
                    errors.append(f"item {split}/{rec.index}: {exc}")
                if on_progress:
                    on_progress("render videos", k, total)
    if errors:
        for e in errors:
            log.warning("render failed: %s", e)
        raise InputError(f"{len(errors)} of {len(records)} videos failed (rerun to redo only them); first: {errors[0]}")
    return [paths[r.index] for r in records]


def video_complete(work: str | os.PathLike, store: FeatureStore, rec: GeneratedRecord, frames: int | None) -> bool:
    """Whether the video of ``rec`` exists with every frame it should have (a rerun skips it)."""
    return _is_complete(video_path(work, rec.run, rec.split, rec.index), _expected_frames(store, rec, frames))


def _expected_frames(store: FeatureStore, rec: GeneratedRecord, frames: int | None) -> int:
    feat = next((f for f in ("emotion", "tdmm") if store.has(rec.clip, f)), None)
    if feat is None:
        raise InputError(f"run {rec.run!r}: item {rec.split}/{rec.index} has no stored emotion or tdmm")
    T = int(store.ref(rec.clip, feat).shape[1])
    return min(T, frames) if frames else T
