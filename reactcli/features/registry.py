"""Feature extractor registry and the shared input/output contract.

An extractor is a class registered under a name with :func:`register_extractor`. It is built
from plain keyword options (``get_extractor("mfcc", sample_rate=16000)``), which go into a
documented config dataclass, and turns one clip into per-frame arrays with a pure method::

    extractor.extract(ClipInputs(...)) -> {"feature_name": (num_frames, D) float32}

The call reads only the files named in :class:`ClipInputs` and the extractor's own config, so
a manifest can be split into shards and each shard run in any process: build the extractor once
per worker (model-loading extractors load their weights in ``__init__``) and call ``extract``
per clip. :func:`extract_clip` does exactly that with a per-process instance cache.

Also here: small readers shared by the extractors (:func:`read_audio`, :func:`read_video_frames`)
and :func:`fit_length`, the one place that decides how a too-short/too-long input is
padded or truncated to ``num_frames``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, TypeVar

import numpy as np

from reactcli.errors import ConfigError, InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipInputs:
    """Everything an extractor may read for one clip."""

    clip_id: str
    """Identifier used in messages (e.g. ``NoXI/065_2016-04-14_Nottingham/Expert_video/1``)."""
    video: Path | None = None
    """Clip video (face crop), if any."""
    audio: Path | None = None
    """Clip audio (WAV or any file with an audio stream), if any."""
    num_frames: int = 751
    """Rows every output array must have."""
    fps: float = 25.0
    """Video frame rate; audio features produce one row per ``1/fps`` seconds."""
    sidecars: Mapping[str, Path] = field(default_factory=dict)
    """Per-clip files that come with a corpus, by kind (``"emotion"``, ``"3dmm"``...)."""

    def need(self, what: str) -> Path:
        """The path of ``what`` ("video", "audio" or a sidecar kind), or InputError."""
        p = self.sidecars.get(what) if what not in ("video", "audio") else getattr(self, what)
        if p is None:
            raise InputError(f"{self.clip_id}: no {what} file given for this clip")
        p = Path(p)
        if not p.is_file():
            raise InputError(f"{self.clip_id}: {what} file not found: {p}")
        return p


class Extractor:
    """Base class. Subclasses set ``name``, ``requires``, ``Config`` and implement ``extract``.

    Attributes:
        name: registry name.
        requires: which inputs ``extract`` reads: subset of ``{"audio", "video", "sidecar"}``.
        Config: the config dataclass; ``self.cfg`` is an instance, ``self.config`` its dict.
    """

    name: ClassVar[str] = ""
    requires: ClassVar[tuple[str, ...]] = ()
    Config: ClassVar[type] = type(None)

    def __init__(self, **options: Any) -> None:
        fields = {f.name for f in dataclasses.fields(self.Config)}
        unknown = sorted(set(options) - fields)
        if unknown:
            raise ConfigError(
                f"extractor {self.name!r}: unknown option(s) {unknown}; known: {sorted(fields)}"
            )
        self.cfg = self.Config(**options)

    @property
    def config(self) -> dict[str, Any]:
        """The resolved options (JSON-serialisable), to store beside the features."""
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self.cfg).items()}

    @property
    def fps(self) -> float:
        """Output frame rate (rows per second); the clip's fps unless an extractor says otherwise."""
        return float(getattr(self.cfg, "fps", 25.0))

    @property
    def dims(self) -> dict[str, int]:
        """Feature name -> width D of its ``(num_frames, D)`` array."""
        raise NotImplementedError

    def extract(self, inputs: ClipInputs) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config})"


E = TypeVar("E", bound=type[Extractor])
_REGISTRY: dict[str, type[Extractor]] = {}


def register_extractor(name: str) -> Callable[[E], E]:
    """Class decorator: register an :class:`Extractor` subclass under ``name``."""

    def deco(cls: E) -> E:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"extractor {name!r} registered twice")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def _load_builtins() -> None:
    # Importing the modules registers them; done lazily so `import reactcli.features` is cheap.
    import importlib

    for mod in _BUILTIN_MODULES:
        importlib.import_module(f"reactcli.features.{mod}")


_BUILTIN_MODULES = ("mfcc", "wav2vec2", "landmarks", "emoca", "faceverse", "graphau", "precomputed")


def config_fields(name: str) -> set[str]:
    """The option names of extractor ``name`` (its config dataclass's fields)."""
    _load_builtins()
    try:
        return {f.name for f in dataclasses.fields(_REGISTRY[name].Config)}
    except KeyError:
        raise ConfigError(f"unknown extractor {name!r}; available: {sorted(_REGISTRY)}") from None


def available_extractors() -> list[str]:
    """Registered extractor names."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_extractor(name: str, **config: Any) -> Extractor:
    """Build the extractor registered as ``name`` with ``config`` options."""
    _load_builtins()
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown extractor {name!r}; available: {sorted(_REGISTRY)}") from None
    return cls(**config)


_INSTANCES: dict[tuple[str, str], Extractor] = {}


def cached_extractor(name: str, config: Mapping[str, Any]) -> Extractor:
    """This process's instance of extractor ``name`` with ``config`` (built, i.e. its model loaded
    on its device, on first use)."""
    key = (name, json.dumps(dict(config), sort_keys=True, default=str))
    ext = _INSTANCES.get(key)
    if ext is None:
        ext = _INSTANCES[key] = get_extractor(name, **config)
    return ext


#: options that change how an extractor runs, not the values it computes (left out of its settings)
RUNTIME_OPTIONS = frozenset({"device", "batch_size", "num_threads", "kinds"})


def resolved_settings(name: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """The options of extractor ``name`` that determine its values: its whole resolved config
    (defaults filled in) but the run-time ones (:data:`RUNTIME_OPTIONS`)."""
    _load_builtins()
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown extractor {name!r}; available: {sorted(_REGISTRY)}") from None
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(config) - fields)
    if unknown:
        raise ConfigError(f"extractor {name!r}: unknown option(s) {unknown}; known: {sorted(fields)}")
    full = dataclasses.asdict(cls.Config(**config))
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(full.items()) if k not in RUNTIME_OPTIONS}


def settings_of(name: str, config: Mapping[str, Any]) -> str:
    """Fingerprint of :func:`resolved_settings`: stored with every array, compared on resume."""
    from reactcli.io import settings_fingerprint

    return settings_fingerprint({"extractor": name, "options": resolved_settings(name, config)})


def input_files(name: str, config: Mapping[str, Any], inputs: ClipInputs) -> dict[str, Path]:
    """The files extractor ``name`` reads for one clip, by kind (those the clip names)."""
    _load_builtins()
    cls = _REGISTRY[name]
    kinds: list[str] = [k for k in cls.requires if k in ("audio", "video")]
    if "sidecar" in cls.requires:
        kinds += list(config.get("kinds") or inputs.sidecars)
    files: dict[str, Path] = {}
    for k in kinds:
        p = inputs.sidecars.get(k) if k not in ("audio", "video") else getattr(inputs, k)
        if p is not None:
            files[k] = Path(p)
    return files


def extract_clip(name: str, config: Mapping[str, Any], inputs: ClipInputs) -> dict[str, np.ndarray]:
    """Run extractor ``name`` with ``config`` on one clip, reusing one instance per process.

    This is the function to send to an executor: it is a plain function of (clip, config), and
    a worker process loads each model once however many clips it handles.
    """
    ext = cached_extractor(name, config)
    out = ext.extract(inputs)
    check_outputs(ext, inputs, out)
    return out


def check_outputs(ext: Extractor, inputs: ClipInputs, out: Mapping[str, np.ndarray]) -> None:
    """Assert the output contract: the declared names, (num_frames, D) float32, no NaN/inf."""
    dims = ext.dims
    if set(out) != set(dims):
        raise AssertionError(f"{ext.name}: produced {sorted(out)}, declared {sorted(dims)}")
    for k, a in out.items():
        if a.shape != (inputs.num_frames, dims[k]) or a.dtype != np.float32:
            raise AssertionError(
                f"{ext.name}/{k} for {inputs.clip_id}: got {a.shape} {a.dtype}, "
                f"expected ({inputs.num_frames}, {dims[k]}) float32"
            )
        if not np.isfinite(a).all():
            raise InputError(f"{inputs.clip_id}: {ext.name}/{k} contains NaN or inf")


# --------------------------------------------------------------------------------------------
# Shared readers
# --------------------------------------------------------------------------------------------


def fit_length(x: np.ndarray, n: int, max_pad: int, what: str, mode: str = "zeros", quiet: int = 1) -> np.ndarray:
    """Truncate ``x`` (first axis) to ``n`` or pad up to ``max_pad`` missing entries.

    ``mode="zeros"`` pads with zeros (audio: silence), ``"edge"`` repeats the last entry (video
    frames). Missing more than ``max_pad`` is an :class:`InputError`; padding more than ``quiet``
    entries logs a warning naming ``what`` (audio passes one video frame's worth of samples: a
    751-frame REACT clip needs 30.04 s of audio but ships exactly 30 s, every time).
    """
    have = x.shape[0]
    if have >= n:
        return x[:n]
    missing = n - have
    if have == 0 or missing > max_pad:
        raise InputError(f"{what}: has {have} samples/frames, needs {n} (at most {max_pad} may be padded)")
    if missing > quiet:
        log.warning("%s: %d of %d samples/frames missing at the end; padded (%s)", what, missing, n, mode)
    pad = [(0, missing)] + [(0, 0)] * (x.ndim - 1)
    return np.pad(x, pad, mode="constant" if mode == "zeros" else "edge")


def read_audio(path: str | os.PathLike[str], target_sr: int | None = None) -> tuple[np.ndarray, int]:
    """Read mono float32 audio in [-1, 1] (channels averaged, like the challenge loader).

    WAV/FLAC go through soundfile; anything else (mp4, m4a) through PyAV. ``target_sr``
    resamples with a polyphase filter (scipy), deterministic and exact for 44100 -> 16000.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: audio file not found")
    try:
        import soundfile as sf

        x, sr = sf.read(str(p), dtype="float32", always_2d=True)
        x = x.mean(axis=1)
    except Exception:  # not a soundfile format: decode with PyAV
        x, sr = _read_audio_av(p)
    if x.size == 0:
        raise InputError(f"{p}: audio has no samples")
    if target_sr is not None and target_sr != sr:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(int(sr), int(target_sr))
        x = resample_poly(x.astype(np.float64), target_sr // g, sr // g).astype(np.float32)
        sr = target_sr
    return np.ascontiguousarray(x, dtype=np.float32), int(sr)


def _read_audio_av(p: Path) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of any container to mono float32 (FFmpeg's downmix)."""
    import av

    try:
        with av.open(str(p)) as c:
            if not c.streams.audio:
                raise InputError(f"{p}: has no audio stream")
            st = c.streams.audio[0]
            sr = int(st.codec_context.sample_rate)
            rs = av.AudioResampler(format="flt", layout="mono", rate=sr)
            chunks = [g.to_ndarray().reshape(-1) for f in c.decode(st) for g in rs.resample(f)]
            chunks += [g.to_ndarray().reshape(-1) for g in rs.resample(None)]
    except av.FFmpegError as exc:
        raise InputError(f"{p}: cannot decode audio ({exc})") from exc
    if not chunks:
        raise InputError(f"{p}: audio has no samples")
    return np.concatenate(chunks).astype(np.float32), sr


def read_video_frames(
    path: str | os.PathLike[str],
    num_frames: int,
    size: int | None = None,
    max_pad_frames: int = 1,
    what: str | None = None,
) -> np.ndarray:
    """Decode the first ``num_frames`` frames as ``(N, H, W, 3)`` uint8 RGB with PyAV.

    ``size`` resizes to ``size x size`` (bilinear, by FFmpeg's scaler). A video with up to
    ``max_pad_frames`` fewer frames is padded by repeating the last frame; fewer still is an
    :class:`InputError`.
    """
    import av

    p = Path(path)
    label = what or str(p)
    if not p.is_file():
        raise InputError(f"{label}: video file not found")
    frames: list[np.ndarray] = []
    try:
        with av.open(str(p)) as c:
            if not c.streams.video:
                raise InputError(f"{label}: has no video stream")
            for f in c.decode(video=0):
                if size is not None:
                    f = f.reformat(width=size, height=size, format="rgb24")
                frames.append(f.to_ndarray(format="rgb24"))
                if len(frames) == num_frames:
                    break
    except av.FFmpegError as exc:
        raise InputError(f"{label}: cannot decode video ({exc})") from exc
    if not frames:
        raise InputError(f"{label}: video has no decodable frames")
    return fit_length(np.stack(frames), num_frames, max_pad_frames, label, mode="edge")
