"""Writing media: H.264 video through an ffmpeg pipe, WAV through soundfile.

Why a pipe and not PyAV's encoder: the ffmpeg binary shipped by ``imageio-ffmpeg`` is a static
build with libx264 and AAC, it runs in its own process (so encoding overlaps with our rendering
and uses its own thread), and the same command line works with a system ffmpeg on a cluster.
Commands are argument lists (never ``shell=True``); failures raise :class:`InputError` carrying
the tail of ffmpeg's stderr so the user sees *why* it failed.

Every output is written to a temporary file in the destination directory and moved into place
with :func:`os.replace` only once it is complete, so an interrupted run never leaves a truncated
file under the final name (a later, resumable stage can then trust "file exists = file is whole").

Command lines are built with ffmpeg-python (``import ffmpeg``): a stream graph (inputs, filters,
outputs) compiles to the argument list with ``.compile(cmd=exe)``, which :func:`ffmpeg_command`
does for the bundled binary. We run that list ourselves with :mod:`subprocess` (no shell) rather
than with ``ffmpeg.run``, so that a timeout can kill ffmpeg and a long pipe never fills a stderr
buffer; :func:`run_ffmpeg` turns a failure into an :class:`InputError` with ffmpeg's stderr.

Reproducibility: x264's output depends on its thread count, and ffmpeg's default ("auto") depends
on the machine. :class:`VideoWriter` therefore pins ``threads`` (1 by default) and writes with the
bit-exact flags, so the same frames give the same bytes on any machine with the same ffmpeg.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import ffmpeg
import numpy as np

from reactcli.errors import ConfigError, InputError

__all__ = ["ffmpeg_exe", "ffmpeg_command", "run_ffmpeg", "VideoWriter", "write_wav", "atomic_tmp_path"]

#: Options every command gets: no banner, never read the terminal, errors only, overwrite.
_GLOBAL_ARGS = ("-hide_banner", "-nostdin", "-loglevel", "error")

_STDERR_TAIL = 2000


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary to run.

    ``$REACTCLI_FFMPEG`` wins (a cluster's system ffmpeg, or a test's fake); otherwise the static
    binary bundled with ``imageio-ffmpeg``. Raises :class:`InputError` naming both ways to fix it.
    """
    env = os.environ.get("REACTCLI_FFMPEG")
    if env:
        found = shutil.which(env) if os.path.sep not in env else (env if os.path.isfile(env) else None)
        if not found:
            raise InputError(
                f"REACTCLI_FFMPEG={env!r} does not point to an ffmpeg executable; "
                "set it to an ffmpeg binary or unset it to use imageio-ffmpeg's bundled one"
            )
        return found
    try:
        import imageio_ffmpeg  # noqa: PLC0415 - optional until a video is written

        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # ImportError or "binary not found"
        raise InputError(
            "no ffmpeg binary found: install the 'imageio-ffmpeg' package or set "
            f"REACTCLI_FFMPEG to an ffmpeg executable ({exc})"
        ) from None
    if not exe or not os.path.isfile(exe):
        raise InputError(
            "no ffmpeg binary found: install 'imageio-ffmpeg' or set REACTCLI_FFMPEG"
        )
    return exe


def ffmpeg_command(stream: ffmpeg.nodes.OutputStream) -> list[str]:
    """The argument list of an ffmpeg-python output ``stream`` for :func:`ffmpeg_exe`.

    Adds the global options (quiet, no stdin, overwrite: outputs are fresh temporary files).
    """
    return stream.global_args(*_GLOBAL_ARGS).overwrite_output().compile(cmd=ffmpeg_exe())


def stderr_tail(stderr: bytes, lines: int = 8) -> str:
    """The last ``lines`` lines of ffmpeg's stderr on one line (for an error message)."""
    tail = stderr.decode("utf-8", "replace").strip().splitlines()[-lines:]
    return " | ".join(tail) or "(no stderr output)"


def run_ffmpeg(stream: ffmpeg.nodes.OutputStream, what: str, timeout: float | None) -> list[str]:
    """Run the ffmpeg-python graph ``stream`` to completion; returns the argument list it ran.

    Raises:
        InputError: ffmpeg exited non-zero (the message carries the tail of its stderr) or ran
            longer than ``timeout`` seconds (it is killed).
    """
    cmd = ffmpeg_command(stream)
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise InputError(f"{what}: ffmpeg timed out after {timeout} s") from exc
    if proc.returncode != 0:
        raise InputError(f"{what}: ffmpeg failed (exit {proc.returncode}): {stderr_tail(proc.stderr)}")
    return cmd


def atomic_tmp_path(path: Path) -> Path:
    """A fresh temporary path beside ``path`` (same filesystem, so os.replace is atomic).

    The suffix is kept so that tools which pick a format from the extension (ffmpeg, soundfile)
    still do the right thing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    # mkstemp creates 0600; give the final file the usual permissions (0666 minus the umask)
    os.chmod(tmp, 0o666 & ~_umask())
    return Path(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class VideoWriter:
    """Context manager that encodes RGB uint8 frames to an H.264 mp4 through an ffmpeg pipe.

    Usage::

        with VideoWriter(path, width=256, height=256, fps=25) as vw:
            vw.write(frames)          # (H, W, 3) or (T, H, W, 3) uint8

    The file appears under ``path`` only when the ``with`` block ends without an exception and
    ffmpeg exits 0; otherwise the temporary file is deleted and :class:`InputError` carries the
    tail of ffmpeg's stderr.

    Args:
        path: output ``.mp4`` path.
        width, height: frame size in pixels (yuv420p needs both even).
        fps: frame rate written into the stream (exact rational for integer fps).
        crf: x264 constant-rate factor (lower = better quality, larger file; 18-28 is usual).
        preset: x264 speed preset (``ultrafast`` .. ``veryslow``); faster presets = bigger files.
        audio: optional WAV to mux as AAC; the output is cut to the shorter stream.
        audio_bitrate: AAC bitrate, e.g. ``"96k"``.
        threads: x264 threads; pinned (default 1) because the encoded bytes depend on it.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        width: int,
        height: int,
        fps: float = 25,
        *,
        crf: int = 23,
        preset: str = "veryfast",
        audio: str | os.PathLike | None = None,
        audio_bitrate: str = "96k",
        threads: int = 1,
    ) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ConfigError(f"video size must be positive and even for yuv420p, got {width}x{height}")
        if fps <= 0:
            raise ConfigError(f"fps must be positive, got {fps}")
        if audio is not None and not Path(audio).is_file():
            raise InputError(f"audio file to mux not found: {audio}")
        self.path = Path(path)
        self.width, self.height, self.fps = int(width), int(height), fps
        self.crf, self.preset, self.threads = int(crf), str(preset), int(threads)
        self.audio = Path(audio) if audio is not None else None
        self.audio_bitrate = audio_bitrate
        self.frames_written = 0
        self._proc: subprocess.Popen | None = None
        self._tmp: Path | None = None
        self._stderr_file = None

    # -- command ------------------------------------------------------------------------------
    def command(self, output: Path) -> list[str]:
        """The ffmpeg argument list (exposed so tests and logs can show it)."""
        rate = str(int(self.fps)) if float(self.fps).is_integer() else f"{self.fps:.6f}"
        frames = ffmpeg.input("pipe:0", format="rawvideo", pix_fmt="rgb24", s=f"{self.width}x{self.height}",
                              framerate=rate)
        streams = [frames["v:0"]]
        opts: dict[str, object] = {
            "c:v": "libx264", "preset": self.preset, "crf": self.crf, "pix_fmt": "yuv420p",
            "threads": self.threads, "map_metadata": -1, "fflags": "+bitexact", "flags:v": "+bitexact",
            "flags:a": "+bitexact", "movflags": "+faststart", "format": "mp4",
        }
        if self.audio is not None:
            streams.append(ffmpeg.input(str(self.audio))["a:0"])
            opts.update({"c:a": "aac", "b:a": self.audio_bitrate, "shortest": None})
        return ffmpeg_command(ffmpeg.output(*streams, str(output), **opts))

    # -- context manager ----------------------------------------------------------------------
    def __enter__(self) -> "VideoWriter":
        self._tmp = atomic_tmp_path(self.path)
        self._stderr_file = tempfile.TemporaryFile()
        try:
            self._proc = subprocess.Popen(
                self.command(self._tmp), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=self._stderr_file,
            )
        except BaseException:
            self._cleanup()
            raise
        return self

    def write(self, frames: np.ndarray) -> None:
        """Append one frame ``(H, W, 3)`` or a batch ``(T, H, W, 3)`` of uint8 RGB."""
        if self._proc is None or self._proc.stdin is None:
            raise InputError(f"VideoWriter for {self.path} is not open (use it in a with block)")
        arr = np.asarray(frames)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[1:] != (self.height, self.width, 3) or arr.dtype != np.uint8:
            raise InputError(
                f"frames for {self.path}: expected uint8 (T, {self.height}, {self.width}, 3), "
                f"got {arr.dtype} {arr.shape}"
            )
        try:
            self._proc.stdin.write(np.ascontiguousarray(arr).tobytes())
        except BrokenPipeError:
            self._proc.wait()
            raise InputError(
                f"ffmpeg stopped while writing {self.path}: {self._stderr_tail()}"
            ) from None
        self.frames_written += arr.shape[0]

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        proc = self._proc
        try:
            if proc is None:
                return
            if exc_type is not None:
                proc.kill()
                proc.wait()
                return
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
            except BrokenPipeError:
                pass
            rc = proc.wait()
            if rc != 0:
                raise InputError(f"ffmpeg failed (exit {rc}) writing {self.path}: {self._stderr_tail()}")
            if self.frames_written == 0:
                raise InputError(f"no frames were written to {self.path}")
            os.replace(self._tmp, self.path)
            self._tmp = None
        finally:
            self._cleanup()

    def _stderr_tail(self) -> str:
        if self._stderr_file is None:
            return ""
        self._stderr_file.seek(0)
        text = self._stderr_file.read().decode("utf-8", "replace").strip()
        return text[-_STDERR_TAIL:] or "(no stderr output)"

    def _cleanup(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._proc is not None and self._proc.stdin is not None:
            try:
                self._proc.stdin.close()
            except (BrokenPipeError, OSError):
                pass
        self._proc = None
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)
            self._tmp = None


def write_video(
    path: str | os.PathLike, frames: np.ndarray, fps: float = 25, **kwargs
) -> Path:
    """Encode a whole ``(T, H, W, 3)`` uint8 array at once (see :class:`VideoWriter` for kwargs)."""
    frames = np.asarray(frames)
    if frames.ndim != 4:
        raise InputError(f"frames for {path}: expected (T, H, W, 3), got shape {frames.shape}")
    with VideoWriter(path, frames.shape[2], frames.shape[1], fps, **kwargs) as vw:
        vw.write(frames)
    return Path(path)


def write_wav(path: str | os.PathLike, samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> Path:
    """Write a mono ``(N,)`` or multi-channel ``(N, C)`` float WAV atomically.

    Float input must lie in [-1, 1] (PCM_16 would otherwise clip silently, which hides a bug in
    whatever produced the signal); NaN/inf are refused for the same reason.
    """
    import soundfile as sf  # noqa: PLC0415

    arr = np.asarray(samples)
    if arr.ndim not in (1, 2) or arr.shape[0] == 0:
        raise InputError(f"audio for {path}: expected (N,) or (N, C) with N > 0, got {arr.shape}")
    if rate <= 0:
        raise ConfigError(f"sample rate must be positive, got {rate}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise InputError(f"audio for {path} contains NaN or inf")
        peak = float(np.max(np.abs(arr)))
        if peak > 1.0 + 1e-6:
            raise InputError(f"audio for {path} exceeds [-1, 1] (peak {peak:.3f}); normalise it first")
    path = Path(path)
    tmp = atomic_tmp_path(path)
    try:
        sf.write(str(tmp), arr, int(rate), subtype=subtype, format="WAV")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
