"""One interface for every way of turning per-frame features into face pictures.

Why an interface: the render stage, the FID frame export and the demo should not care whether a
reaction is drawn by the built-in cartoon (:mod:`reactcli.render.face2d`, always available), by
the user's FaceVerse v2 mesh (:mod:`reactcli.render.faceverse`) or by the user's PIRender
checkpoint (:mod:`reactcli.render.pirender`). Each renderer says which features it needs
(``needs``), whether it wants a source picture of the person (``needs_source``: PIRender
re-animates a photo), and maps ``emotion (T, 25)`` / ``tdmm (T, 58)`` to ``(T, H, W, 3)`` uint8.

Renderers that use time context (PIRender looks at a window of 3DMM frames around each frame)
override :meth:`Renderer.iter_render` and :meth:`Renderer.render_frames` so that rendering in
chunks, or only every 30th frame for FID, gives exactly the frames a whole-sequence render would.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Iterator, Sequence

import numpy as np

from reactcli.errors import ConfigError, InputError

__all__ = [
    "RendererConfig",
    "Renderer",
    "Face2DRenderer",
    "RENDERERS",
    "register_renderer",
    "make_renderer",
    "check_features",
]


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
    """The user's PIRender checkpoint (a torch file holding a generator state dict)."""
    device: str = "cpu"
    """Torch device for PIRender."""
    batch_size: int = 16
    """Frames per PIRender forward pass (memory vs speed)."""


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
    for name, arr, dim in (("emotion", emotion, 25), ("tdmm", tdmm, 58)):
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

    def __init__(self, size: int = 128) -> None:
        size = int(size)
        if size < 16 or size % 2:
            raise ConfigError(f"render size must be an even number of pixels >= 16, got {size}")
        self.size = size

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


RENDERERS: dict[str, Callable[[RendererConfig], Renderer]] = {}


def register_renderer(name: str) -> Callable:
    """Decorator: register a factory ``f(cfg) -> Renderer`` (or a Renderer class) under ``name``."""

    def wrap(factory):
        RENDERERS[name] = factory
        return factory

    return wrap


def make_renderer(cfg: RendererConfig | str | None = None, **overrides) -> Renderer:
    """Build the renderer named by ``cfg.name`` (asset errors are raised here, before any work)."""
    if cfg is None:
        cfg = RendererConfig()
    elif isinstance(cfg, str):
        cfg = RendererConfig(name=cfg)
    for k, v in overrides.items():
        if not hasattr(cfg, k):
            raise ConfigError(f"unknown renderer option {k!r}")
        setattr(cfg, k, v)
    # the optional renderers register themselves on import
    from reactcli.render import faceverse as _fv  # noqa: F401, PLC0415
    from reactcli.render import pirender as _pr  # noqa: F401, PLC0415

    try:
        factory = RENDERERS[cfg.name]
    except KeyError:
        raise ConfigError(f"--renderer {cfg.name!r}: expected one of {', '.join(sorted(RENDERERS))}") from None
    return factory(cfg)


@register_renderer("face2d")
class Face2DRenderer(Renderer):
    """The built-in AU-driven cartoon (:mod:`reactcli.render.face2d`); head pose from tdmm[52:58]."""

    name = "face2d"
    needs = ("emotion",)

    def __init__(self, cfg: RendererConfig | int = 128) -> None:
        super().__init__(cfg.size if isinstance(cfg, RendererConfig) else cfg)

    def render(self, emotion, tdmm=None, *, source=None) -> np.ndarray:
        from reactcli.render.face2d import render_sequence  # noqa: PLC0415

        emo, tdm, _ = check_features(emotion, tdmm, self.needs)
        return render_sequence(emo, tdm, self.size)


def neutral_emotion(T: int = 1) -> np.ndarray:
    """``(T, 25)`` emotion vectors of a neutral face (no AU, Neutral probability 1)."""
    e = np.zeros((T, 25), np.float32)
    e[:, 17] = 1.0
    return e


def asset_path(path: str | os.PathLike | None) -> Path | None:
    return None if path is None or str(path) == "" else Path(path).expanduser()
