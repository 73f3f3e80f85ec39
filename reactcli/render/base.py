"""The renderer interface: what every way of drawing per-frame features into pictures shares.

Why a module of its own: the concrete renderers (:mod:`reactcli.render.faceverse`,
:mod:`reactcli.render.pirender`, the built-in face2d in :mod:`reactcli.render.renderers`)
import these base classes, and the registry (:mod:`reactcli.render.renderers`) names the
renderers. Keeping the base classes here, and the registry a table of ``"module:attribute"``
strings resolved on first use, means no module imports another that imports it back.

A renderer says which features it needs (``needs``), whether it wants a source picture of the
person (``needs_source``: PIRender re-animates a photo), whether its pictures are photo-like
(``photoreal``: only those can be compared with real video by FID), and maps
``emotion (T, 25)`` / ``tdmm (T, 58)`` to ``(T, H, W, 3)`` uint8.

Renderers that use time context (PIRender looks at a window of 3DMM frames around each frame)
override :meth:`Renderer.iter_render` and :meth:`Renderer.render_frames` so that rendering in
chunks, or only every 30th frame for FID, gives exactly the frames a whole-sequence render would.

3DMM offsets: the challenge's models predict FaceVerse coefficients as offsets from
``mean_face.npy`` and its renderers add the mean face back before drawing. reactcli's own
feature store and runs hold the coefficients themselves. :attr:`RendererConfig.mean_face` says
"the tdmm given to this renderer are offsets from this mean face": the renderers that draw tdmm
add it back (:meth:`Renderer.coefficients`), and :meth:`Renderer.offsets` turns stored
coefficients (a real listener drawn for comparison) into that convention.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterator, Sequence

import numpy as np

from reactcli.errors import ConfigError, InputError, MissingAssetError

__all__ = [
    "RendererConfig",
    "Renderer",
    "check_features",
    "neutral_emotion",
    "asset_path",
    "load_mean_face",
    "TDMM_DIM",
]

TDMM_DIM = 58
"""FaceVerse v2 coefficients per frame in REACT: 52 expression, 3 rotation, 3 translation."""


@dataclass
class RendererConfig:
    """Which renderer to build and where its local assets are."""

    name: str = "face2d"
    """``face2d`` (built in), ``faceverse`` (needs ``faceverse_model``) or ``pirender``
    (needs ``pirender_checkpoint``)."""
    size: int = 128
    """Output frames are ``size x size`` pixels (even, >= 16)."""
    faceverse_model: str | os.PathLike | None = None
    """The user's FaceVerse v2 model file (``faceverse_simple_v2.npy``-style pickled dict)."""
    pirender_checkpoint: str | os.PathLike | None = None
    """The user's PIRender checkpoint: the challenge's ``cur_model_fold.pth`` (generator state
    dict under ``state_dict`` or ``net_G_ema``)."""
    mean_face: str | os.PathLike | None = None
    """The challenge's ``mean_face.npy`` ((58,) float): when given, the tdmm handed to the
    renderer are offsets from it (as the challenge's models predict them) and it is added back
    before drawing. None: the tdmm are the coefficients themselves (reactcli's store)."""
    device: str = "cpu"
    """Torch device for PIRender."""
    batch_size: int = 16
    """Frames per PIRender forward pass (memory vs speed)."""


def asset_path(path: str | os.PathLike | None) -> Path | None:
    """The user's asset path, or None when not given."""
    return None if path is None or str(path) == "" else Path(path).expanduser()


def load_mean_face(path: str | os.PathLike | None) -> np.ndarray | None:
    """The challenge's ``mean_face.npy`` as a (58,) float32 vector (None when not given).

    Accepts any array with 58 values ((58,), (1, 58), (1, 1, 58)), as the authors reshape it
    with ``view(1, 1, -1)``; anything else is an :class:`InputError` naming the file.
    """
    p = asset_path(path)
    if p is None:
        return None
    if not p.is_file():
        raise MissingAssetError("mean face (mean_face.npy)", "--mean-face", p)
    try:
        arr = np.load(p, allow_pickle=False)
    except Exception as exc:  # not an .npy, a pickled object, truncated
        raise InputError(f"{p}: cannot read the mean face as a .npy array ({exc})") from None
    if not isinstance(arr, np.ndarray) or arr.size != TDMM_DIM or not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"{p}: the mean face must hold {TDMM_DIM} numbers, got {getattr(arr, 'dtype', '?')} "
                         f"{getattr(arr, 'shape', '?')}")
    vec = arr.reshape(TDMM_DIM).astype(np.float32)
    if not np.isfinite(vec).all():
        raise InputError(f"{p}: the mean face contains NaN or inf")
    return vec


def check_features(
    emotion: np.ndarray | None, tdmm: np.ndarray | None, needs: Sequence[str], what: str = "features"
) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    """Validate ``emotion (T, 25)`` / ``tdmm (T, 58)`` (either may be None unless needed).

    Returns float32 copies and ``T``. Shapes, NaN/inf and disagreeing lengths are refused with
    an :class:`InputError` naming ``what``, because a renderer that silently drew garbage would
    hide a bug in the generator that produced it.
    """
    out: dict[str, np.ndarray | None] = {}
    lengths = set()
    for name, arr, dim in (("emotion", emotion, 25), ("tdmm", tdmm, TDMM_DIM)):
        if arr is None:
            if name in needs:
                raise InputError(f"{what}: the renderer needs {name!r} features ((T, {dim})) but none were given")
            out[name] = None
            continue
        a = np.asarray(arr, dtype=np.float32)
        if a.ndim == 3 and a.shape[0] == 1:
            a = a[0]
        if a.ndim != 2 or a.shape[1] != dim:
            raise InputError(f"{what}: {name} must have shape (T, {dim}), got {a.shape}")
        if not np.isfinite(a).all():
            raise InputError(f"{what}: {name} contains NaN or inf")
        lengths.add(a.shape[0])
        out[name] = a
    if len(lengths) > 1:
        raise InputError(f"{what}: emotion and tdmm have different lengths {sorted(lengths)}")
    if not lengths:
        raise InputError(f"{what}: no features given")
    return out["emotion"], out["tdmm"], lengths.pop()


class Renderer(ABC):
    """Features -> RGB frames. Subclasses set ``name``, ``needs`` and implement :meth:`render`."""

    name: ClassVar[str] = ""
    needs: ClassVar[tuple[str, ...]] = ()
    """Features that must be given (``emotion`` and/or ``tdmm``); others are optional."""
    needs_source: ClassVar[bool] = False
    """True when the renderer re-animates a picture of the person (``source=`` is then used)."""
    photoreal: ClassVar[bool] = False
    """True when its frames are photo-like, so that FID against real video measures realism
    (a cartoon or a flat-shaded mesh against real video measures only the drawing style)."""

    def __init__(self, size: int = 128, mean_face: np.ndarray | None = None) -> None:
        size = int(size)
        if size < 16 or size % 2:
            raise ConfigError(f"render size must be an even number of pixels >= 16, got {size}")
        self.size = size
        self.mean_face = None if mean_face is None else np.asarray(mean_face, np.float32).reshape(TDMM_DIM)

    def coefficients(self, tdmm: np.ndarray) -> np.ndarray:
        """The coefficients to draw: ``tdmm`` plus the mean face when the inputs are offsets."""
        return tdmm if self.mean_face is None else tdmm + self.mean_face

    def offsets(self, tdmm: np.ndarray | None) -> np.ndarray | None:
        """Stored coefficients in this renderer's input convention (offsets when it has a mean face)."""
        if tdmm is None or self.mean_face is None:
            return tdmm
        return np.asarray(tdmm, np.float32) - self.mean_face

    def real_view(self, frames: np.ndarray) -> np.ndarray:
        """How real video frames ``(N, H, W, 3)`` uint8 are framed next to this renderer's output.

        The default squeezes them to ``size x size``; PIRender crops them as its source picture.
        """
        import cv2

        out = np.empty((len(frames), self.size, self.size, 3), np.uint8)
        for i, f in enumerate(frames):
            interp = cv2.INTER_AREA if f.shape[0] > self.size else cv2.INTER_LINEAR
            out[i] = f if f.shape[:2] == (self.size, self.size) else cv2.resize(f, (self.size, self.size),
                                                                               interpolation=interp)
        return out

    @abstractmethod
    def render(
        self, emotion: np.ndarray | None, tdmm: np.ndarray | None = None, *, source: np.ndarray | None = None
    ) -> np.ndarray:
        """``(T, size, size, 3)`` uint8 frames for ``emotion (T, 25)`` and/or ``tdmm (T, 58)``."""

    def iter_render(
        self,
        emotion: np.ndarray | None,
        tdmm: np.ndarray | None = None,
        *,
        source: np.ndarray | None = None,
        chunk: int = 125,
    ) -> Iterator[np.ndarray]:
        """Yield the frames of :meth:`render` in chunks of ``chunk`` (bounded memory).

        The default slices the inputs, which is exact for renderers whose frame t depends only
        on the features of frame t.
        """
        emo, tdm, T = check_features(emotion, tdmm, self.needs)
        chunk = max(1, int(chunk))
        for a in range(0, T, chunk):
            yield self.render(
                None if emo is None else emo[a : a + chunk],
                None if tdm is None else tdm[a : a + chunk],
                source=source,
            )

    def render_frames(
        self,
        emotion: np.ndarray | None,
        tdmm: np.ndarray | None,
        frames: Sequence[int] | np.ndarray,
        *,
        source: np.ndarray | None = None,
    ) -> np.ndarray:
        """Only the listed frame indices (used to export every n-th frame for FID)."""
        emo, tdm, T = check_features(emotion, tdmm, self.needs)
        idx = np.asarray(frames, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= T):
            raise InputError(f"frame indices must lie in [0, {T}), got {idx.min()}..{idx.max()}")
        return self.render(None if emo is None else emo[idx], None if tdm is None else tdm[idx], source=source)


def neutral_emotion(T: int = 1) -> np.ndarray:
    """``(T, 25)`` emotion vectors of a neutral face (no AU, Neutral probability 1)."""
    e = np.zeros((T, 25), np.float32)
    e[:, 17] = 1.0
    return e
