"""Frame-accurate clipping of session recordings into challenge clips.

The REACT clips are 30 s windows of a session: segment ``i`` (1-based) starts at ``(i-1)*30`` s
and holds **751** frames at 25 fps (frames ``(i-1)*750 ... (i-1)*750+750``, so consecutive clips
share one boundary frame), with the audio of the same span in a separate WAV. This module:

* plans the windows (:func:`plan_clips`),
* cuts one window out of a session video / audio with ffmpeg (:func:`cut_clip`), writing an
  H.264 video of exactly ``num_frames`` frames at ``fps`` and a mono PCM WAV of exactly
  ``round(num_frames / fps * sample_rate)`` samples,
* slices session-level per-frame arrays ``(T_session, D)`` to the same frames
  (:func:`slice_frames`), using the same time -> frame rule as the video.

Frame-accuracy rule (video and sidecars alike): clip frame ``k`` is the session frame shown at
time ``start + k / fps``. For a 25 fps session that is session frame ``round(start*25) + k``:
the frame at 30.00 s is frame 0 of clip 2. Other rates are converted with ffmpeg's ``fps`` filter
(rounding to the nearest output slot), whose choice for 30 fps input is session frame
``floor((start + k/25) * 30 + 0.5)``; :func:`source_frame_indices` computes the same map for
sidecar arrays, and the tests check the two agree.

Re-encoding (the default) is frame-exact. Stream copy (``mode="copy"``) is ~30x faster but can
only start a clip on a keyframe: ffmpeg starts at the keyframe at or before ``start``, so the
first frames may come from before the window and the frame count is not guaranteed; no fps
conversion or padding is possible either. Use it only for inputs encoded at 25 fps with a
keyframe at every clip boundary (e.g. a GOP of 750 frames); :func:`cut_clip` reports the
frame count it actually wrote and logs a warning when it differs.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import ffmpeg
import numpy as np

from reactcli.errors import ConfigError, InputError
from reactcli.media.encode import ffmpeg_exe, run_ffmpeg
from reactcli.media.probe import MediaInfo, probe

__all__ = ["ClipConfig", "ClipResult", "ClipSpan", "cut_clip", "ffmpeg_exe", "plan_clips", "slice_frames",
           "source_frame_indices", "video_cut_graph", "audio_cut_graph"]

log = logging.getLogger(__name__)

#: Time tolerance (s) when comparing a window with a media duration (container rounding).
_EPS = 1e-3


# --------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipSpan:
    """One planned clip window of a session."""

    index: int
    """1-based clip number (the file name in the REACT layout: ``<index>.mp4``)."""
    start: float
    """Window start in session seconds."""
    end: float
    """Window end in session seconds (exclusive); ``start + clip_s`` except for a kept
    final remainder, where it is the session duration."""

    @property
    def duration(self) -> float:
        return self.end - self.start


def plan_clips(
    duration_s: float,
    clip_s: float = 30.0,
    stride_s: float = 30.0,
    min_remainder_s: float | None = 0.3,
) -> list[ClipSpan]:
    """Plan the clip windows of a session of ``duration_s`` seconds.

    Challenge rule (the defaults): consecutive, non-overlapping 30 s windows, window ``i``
    covering ``[(i-1)*30, i*30)``; a final partial window is kept (ending at the session end)
    only if it is at least ``min_remainder_s`` long (0.3 s in the official cut), else dropped.

    Args:
        duration_s: session duration in seconds.
        clip_s: window length.
        stride_s: distance between window starts (``< clip_s`` gives overlapping windows).
        min_remainder_s: shortest partial final window to keep; ``None`` drops every partial
            window, so all clips are full length (what fixed-length training wants).

    Returns:
        ``ClipSpan`` list in time order, indices from 1.
    """
    if not (math.isfinite(duration_s) and duration_s >= 0):
        raise ConfigError(f"plan_clips: duration must be a finite number >= 0, got {duration_s}")
    if clip_s <= 0 or stride_s <= 0:
        raise ConfigError(f"plan_clips: clip_s and stride_s must be > 0, got {clip_s}, {stride_s}")
    spans: list[ClipSpan] = []
    i = 0
    while True:
        start = i * stride_s
        if start >= duration_s - _EPS:
            break
        end = start + clip_s
        if end <= duration_s + _EPS:
            spans.append(ClipSpan(i + 1, start, end))
        else:
            rem = duration_s - start
            if min_remainder_s is not None and rem >= min_remainder_s - _EPS:
                spans.append(ClipSpan(i + 1, start, duration_s))
            break  # any later window would be partial too
        i += 1
    return spans


def source_frame_indices(start_s: float, num_frames: int, fps: float, src_fps: float) -> np.ndarray:
    """Session frame index shown at clip frame ``k`` (``k < num_frames``).

    Clip frame ``k`` is the session frame at time ``t = start_s + k / fps``; the session frame
    chosen is the nearest, ``floor(t * src_fps + 0.5)`` (ffmpeg's ``fps`` filter, round=near),
    computed in exact-ish rational steps to avoid float drift at exact boundaries.
    """
    k = np.arange(num_frames, dtype=np.float64)
    t = start_s + k / fps
    return np.floor(t * src_fps + 0.5 + 1e-9).astype(np.int64)


def slice_frames(
    array: np.ndarray,
    start_s: float,
    num_frames: int,
    fps: float = 25.0,
    src_fps: float | None = None,
    max_pad_frames: int = 1,
    name: str = "array",
) -> np.ndarray:
    """Cut a session-level per-frame array ``(T_session, D)`` to a clip's frames.

    Uses the same time -> frame map as :func:`cut_clip` (see :func:`source_frame_indices`), so
    row ``k`` of the result describes the same picture as frame ``k`` of the cut video.

    Args:
        array: ``(T_session, D)`` (or ``(T_session,)``) array at ``src_fps``.
        start_s: clip start in session seconds.
        num_frames: rows wanted (751 for a REACT clip).
        fps: clip frame rate.
        src_fps: the array's frame rate (default: ``fps``).
        max_pad_frames: how many missing rows at the end may be filled by repeating the last
            row (the 751st frame of a session's final clip often does not exist); more is an
            error.
        name: what to call the array in error messages (e.g. its file).

    Raises:
        InputError: the array is empty, too short, or the window starts before 0.
    """
    src_fps = fps if src_fps is None else src_fps
    arr = np.asarray(array)
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise InputError(f"{name}: expected a (frames, dims) array, got shape {arr.shape}")
    if start_s < 0:
        raise InputError(f"{name}: clip start {start_s} s is negative")
    idx = source_frame_indices(start_s, num_frames, fps, src_fps)
    last = arr.shape[0] - 1
    missing = int((idx > last).sum())
    if missing > max_pad_frames:
        raise InputError(
            f"{name}: has {arr.shape[0]} frames at {src_fps:g} fps but the clip at {start_s:g} s "
            f"needs frame {int(idx[-1])} ({missing} missing, at most {max_pad_frames} may be padded)"
        )
    return arr[np.minimum(idx, last)]


# --------------------------------------------------------------------------------------------
# Cutting
# --------------------------------------------------------------------------------------------


@dataclass
class ClipConfig:
    """How :func:`cut_clip` writes a clip."""

    fps: float = 25.0
    """Output video frame rate; other input rates are converted with ffmpeg's fps filter."""
    num_frames: int = 751
    """Exact number of video frames to write (751 = 30 s at 25 fps plus the boundary frame)."""
    sample_rate: int = 44100
    """WAV sample rate in Hz (44100: the official release's rate, which its MFCC features use)."""
    audio_channels: int = 1
    """WAV channels (mono by default; multichannel input is downmixed)."""
    mode: Literal["reencode", "copy"] = "reencode"
    """``reencode`` (frame-exact, libx264) or ``copy`` (stream copy: fast, keyframe-bound, see
    the module docstring)."""
    crf: int = 18
    """libx264 constant rate factor (lower = better quality, bigger files)."""
    preset: str = "veryfast"
    """libx264 preset (speed/size trade-off; does not change which frames are written)."""
    max_pad_frames: int = 1
    """Missing frames at the end of the session that may be filled by repeating the last
    frame (the final clip's boundary frame); beyond that the input is too short."""
    max_audio_pad_s: float = 0.5
    """Audio shorter than the window by at most this many seconds is padded with silence (with
    a warning); shorter still is an :class:`InputError`."""
    timeout_s: float | None = 600.0
    """Kill ffmpeg after this many seconds (None: no limit)."""


@dataclass(frozen=True)
class ClipResult:
    """What :func:`cut_clip` wrote."""

    video: Path | None
    audio: Path | None
    num_frames: int | None
    """Frames in the written video (equal to the requested count unless ``mode='copy'``)."""
    num_samples: int | None
    """Samples in the written WAV."""


def _check_out_path(path: Path) -> None:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{parent}: cannot create output directory ({exc.strerror})") from exc
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{parent}: output directory is not writable")


def _tmp_path(final: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.close(fd)
    return Path(name)


def _fmt(t: float) -> str:
    return f"{t:.6f}"


def cut_clip(
    video_in: str | os.PathLike[str] | None,
    start_s: float,
    video_out: str | os.PathLike[str] | None = None,
    audio_out: str | os.PathLike[str] | None = None,
    audio_in: str | os.PathLike[str] | None = None,
    config: ClipConfig | None = None,
) -> ClipResult:
    """Cut ``config.num_frames`` frames starting at ``start_s`` out of a session.

    Args:
        video_in: session video (its audio track is used when ``audio_in`` is not given).
        start_s: window start in session seconds.
        video_out: clip video to write (``.mp4``); ``None`` skips the video.
        audio_out: clip WAV to write; ``None`` skips the audio.
        audio_in: separate session audio file (NoXI/RECOLA ship audio apart from video).
        config: output options.

    Both outputs are written to a temporary file in the destination directory and renamed into
    place, so a crash never leaves a half-written clip under the final name.

    Raises:
        InputError: missing/corrupt input, input too short for the window, no audio stream,
            ffmpeg failure (message carries the tail of ffmpeg's stderr).
        ConfigError: bad options or an unwritable output directory.
    """
    cfg = config or ClipConfig()
    if cfg.num_frames <= 0 or cfg.fps <= 0 or cfg.sample_rate <= 0:
        raise ConfigError(f"cut_clip: num_frames, fps and sample_rate must be > 0 ({cfg})")
    if cfg.mode not in ("reencode", "copy"):
        raise ConfigError(f"cut_clip: mode must be 'reencode' or 'copy', got {cfg.mode!r}")
    if start_s < 0:
        raise ConfigError(f"cut_clip: start must be >= 0 s, got {start_s}")
    if video_out is None and audio_out is None:
        raise ConfigError("cut_clip: nothing to write (give video_out and/or audio_out)")
    clip_dur = cfg.num_frames / cfg.fps
    vres = ares = None
    nframes = nsamples = None

    if video_out is not None:
        if video_in is None:
            raise ConfigError("cut_clip: video_out given without video_in")
        vinfo = probe(video_in)
        if not vinfo.has_video:
            raise InputError(f"{video_in}: has no video stream")
        # Last session frame needed: the one shown at start + (N-1)/fps.
        need = source_frame_indices(start_s, cfg.num_frames, cfg.fps, vinfo.fps or cfg.fps)[-1]
        have = vinfo.num_frames or int(round(vinfo.duration_s * (vinfo.fps or cfg.fps)))
        missing = int(need) + 1 - have
        if missing > cfg.max_pad_frames:
            raise InputError(
                f"{video_in}: too short for a {cfg.num_frames}-frame clip at {start_s:g} s "
                f"(has {have} frames at {vinfo.fps:g} fps, needs {int(need) + 1})"
            )
        vres = Path(video_out)
        _check_out_path(vres)
        tmp = _tmp_path(vres)
        try:
            nframes = _cut_video(Path(video_in), vinfo, start_s, clip_dur, tmp, cfg)
            os.replace(tmp, vres)
        finally:
            tmp.unlink(missing_ok=True)

    if audio_out is not None:
        src = audio_in if audio_in is not None else video_in
        if src is None:
            raise ConfigError("cut_clip: audio_out given without audio_in or video_in")
        ainfo = probe(src)
        if not ainfo.has_audio:
            raise InputError(f"{src}: has no audio stream (give a separate audio file)")
        short = start_s + clip_dur - ainfo.duration_s
        if short > cfg.max_audio_pad_s + _EPS:
            raise InputError(
                f"{src}: audio ends at {ainfo.duration_s:.3f} s, {short:.3f} s before the end of "
                f"the clip at {start_s:g}-{start_s + clip_dur:g} s (at most {cfg.max_audio_pad_s} s "
                "may be padded)"
            )
        if short > _EPS:
            log.warning("%s: audio %.3f s shorter than the clip at %g s; padded with silence",
                        src, short, start_s)
        ares = Path(audio_out)
        _check_out_path(ares)
        tmp = _tmp_path(ares)
        try:
            nsamples = _cut_audio(Path(src), start_s, clip_dur, tmp, cfg)
            os.replace(tmp, ares)
        finally:
            tmp.unlink(missing_ok=True)
    return ClipResult(video=vres, audio=ares, num_frames=nframes, num_samples=nsamples)


def video_cut_graph(src: Path, start: float, dur: float, out: Path, cfg: ClipConfig) -> ffmpeg.nodes.OutputStream:
    """The ffmpeg-python graph that cuts ``cfg.num_frames`` video frames from ``start`` into ``out``.

    ``reencode``: input seeking (``-ss`` before ``-i``) + re-encode is frame exact (ffmpeg decodes
    from the previous keyframe and drops frames before ``start``; timestamps restart at 0); the
    ``fps`` filter converts any input rate (nearest frame), ``tpad`` clones the last frame for the
    allowed end padding and ``-frames:v`` fixes the count. ``copy``: stream copy of ``dur`` s.
    """
    video = ffmpeg.input(str(src), ss=_fmt(start))["v:0"]
    if cfg.mode == "copy":
        return ffmpeg.output(video, str(out), t=_fmt(dur), an=None, format="mp4", **{"c:v": "copy"})
    video = video.filter("fps", fps=f"{cfg.fps:g}", round="near").filter(
        "tpad", stop_mode="clone", stop=cfg.max_pad_frames)
    return ffmpeg.output(video, str(out), an=None, format="mp4", preset=cfg.preset, crf=cfg.crf,
                         pix_fmt="yuv420p", movflags="+faststart",
                         **{"frames:v": cfg.num_frames, "c:v": "libx264"})


def audio_cut_graph(src: Path, start: float, dur: float, out: Path, cfg: ClipConfig) -> ffmpeg.nodes.OutputStream:
    """The ffmpeg-python graph that writes ``round(dur * sample_rate)`` PCM samples from ``start``.

    Resample first (``aresample``), then pad with silence (``apad``) and trim (``atrim``) to the
    exact sample count; channels are downmixed to ``cfg.audio_channels``.
    """
    ns = int(round(dur * cfg.sample_rate))
    audio = (ffmpeg.input(str(src), ss=_fmt(start))["a:0"]
             .filter("aresample", cfg.sample_rate)
             .filter("apad", whole_len=ns)
             .filter("atrim", end_sample=ns))
    return ffmpeg.output(audio, str(out), ac=cfg.audio_channels, ar=cfg.sample_rate, vn=None, format="wav",
                         **{"c:a": "pcm_s16le"})


def _cut_video(src: Path, info: MediaInfo, start: float, dur: float, tmp: Path, cfg: ClipConfig) -> int:
    n = cfg.num_frames
    run_ffmpeg(video_cut_graph(src, start, dur, tmp, cfg), f"{src} (clip at {start:g} s)", cfg.timeout_s)
    got = probe(tmp).num_frames or 0
    if got != n:
        if cfg.mode == "copy":
            log.warning("%s: stream copy wrote %d frames for the clip at %g s (wanted %d; "
                        "copy cuts at keyframes)", src, got, start, n)
        else:
            raise InputError(f"{src}: clip at {start:g} s has {got} frames, expected {n}")
    return got


def _cut_audio(src: Path, start: float, dur: float, tmp: Path, cfg: ClipConfig) -> int:
    ns = int(round(dur * cfg.sample_rate))
    run_ffmpeg(audio_cut_graph(src, start, dur, tmp, cfg), f"{src} (audio clip at {start:g} s)", cfg.timeout_s)
    import soundfile as sf

    got = sf.info(str(tmp)).frames
    if got != ns:
        raise InputError(f"{src}: audio clip at {start:g} s has {got} samples, expected {ns}")
    return got
