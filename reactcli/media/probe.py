"""Probe media files with PyAV.

There is no ``ffprobe`` on the machines this project targets (the static ffmpeg shipped by
``imageio-ffmpeg`` comes alone), but PyAV bundles the FFmpeg libraries, so probing goes through
it. Every failure a user can cause (missing, empty, corrupt or stream-less file) becomes an
:class:`~reactcli.errors.InputError` that names the file, never a bare ``av`` exception.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from reactcli.errors import InputError


@dataclass(frozen=True)
class MediaInfo:
    """What the pipeline needs to know about one media file.

    Fields are ``None`` when the file has no stream of that kind.
    """

    path: Path
    """The probed file."""
    duration_s: float
    """Container duration in seconds (the longest stream when the container does not say)."""
    fps: float | None
    """Average video frame rate (frames per second)."""
    fps_fraction: Fraction | None
    """The same rate as an exact fraction (e.g. 30000/1001), for frame arithmetic."""
    num_frames: int | None
    """Number of video frames: the stream's frame count if the container records it, else
    ``round(video duration * fps)`` (exact for constant-rate video)."""
    width: int | None
    """Video width in pixels."""
    height: int | None
    """Video height in pixels."""
    video_codec: str | None
    """Video codec name (``h264``, ``mpeg4``...)."""
    audio_rate: int | None
    """Audio sample rate in Hz."""
    audio_channels: int | None
    """Number of audio channels."""
    audio_codec: str | None
    """Audio codec name (``pcm_s16le``, ``aac``...)."""

    @property
    def has_video(self) -> bool:
        return self.fps is not None

    @property
    def has_audio(self) -> bool:
        return self.audio_rate is not None


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Return :class:`MediaInfo` for ``path``.

    Raises:
        InputError: the file is missing, empty, not a media file, or has neither a video nor an
            audio stream. The message names the file.
    """
    import av  # local import: keeps ``import reactcli`` cheap

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: media file not found")
    if not p.is_file():
        raise InputError(f"{p}: expected a media file, found a directory or special file")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: media file is empty (0 bytes)")
    try:
        container = av.open(str(p))
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{p}: not a readable media file ({exc})") from exc
    try:
        vstreams = list(container.streams.video)
        astreams = list(container.streams.audio)
        if not vstreams and not astreams:
            raise InputError(f"{p}: media file has no video or audio stream")
        durations: list[float] = []
        if container.duration is not None:
            durations.append(container.duration / 1_000_000)  # av.time_base is microseconds
        fps = fps_frac = None
        num_frames = width = height = None
        vcodec = None
        if vstreams:
            vs = vstreams[0]
            rate = vs.average_rate or vs.guessed_rate or vs.base_rate
            if rate:
                fps_frac = Fraction(rate)
                fps = float(fps_frac)
            width, height = vs.codec_context.width, vs.codec_context.height
            vcodec = vs.codec_context.name
            vdur = None
            if vs.duration is not None and vs.time_base is not None:
                vdur = float(vs.duration * vs.time_base)
                durations.append(vdur)
            if vs.frames:
                num_frames = int(vs.frames)
            elif fps_frac is not None:
                base = vdur if vdur is not None else (durations[0] if durations else None)
                if base is not None:
                    num_frames = int(round(base * fps))
        arate = achannels = None
        acodec = None
        if astreams:
            a = astreams[0]
            arate = a.codec_context.sample_rate or a.rate
            achannels = a.codec_context.channels
            acodec = a.codec_context.name
            if a.duration is not None and a.time_base is not None:
                durations.append(float(a.duration * a.time_base))
        if not durations:
            raise InputError(f"{p}: media file reports no duration (truncated or corrupt?)")
        duration = durations[0] if container.duration is not None else max(durations)
        if duration <= 0:
            raise InputError(f"{p}: media file has zero duration")
        if vstreams and (not width or not height):
            raise InputError(f"{p}: video stream has no frame size (corrupt header?)")
        return MediaInfo(
            path=p,
            duration_s=float(duration),
            fps=fps,
            fps_fraction=fps_frac,
            num_frames=num_frames,
            width=width,
            height=height,
            video_codec=vcodec,
            audio_rate=int(arate) if arate else None,
            audio_channels=int(achannels) if achannels else None,
            audio_codec=acodec,
        )
    finally:
        container.close()


def probe_video(path: str | os.PathLike[str]) -> tuple[float, float]:
    """(fps, duration in seconds from the frame count) of a video, e.g. a raw participant video.

    Raises :class:`~reactcli.errors.InputError` naming the file when it has no video stream."""
    info = probe(path)
    if not info.has_video or not info.fps:
        raise InputError(f"{path}: has no video stream")
    frames = info.num_frames or int(round(info.duration_s * info.fps))
    return float(info.fps), frames / float(info.fps)
