"""The renderer registry: a name -> ``"module:attribute"`` table, resolved on first use.

Why strings: the optional renderers (:mod:`reactcli.render.faceverse`,
:mod:`reactcli.render.pirender`) import the base classes from :mod:`reactcli.render.base`; if
this module imported them to register them, and they imported this module for the base classes,
the import graph would have a cycle. With a table of import paths, this module imports no
renderer until one is asked for, and a renderer's heavy imports (torch for PIRender) happen
only when it is built.

The built-in cartoon, :class:`Face2DRenderer` (:mod:`reactcli.render.face2d`, always
available), is defined here. The base classes are re-exported for callers that import them from
this module.
"""

from __future__ import annotations

import importlib
from typing import Callable

import numpy as np

from reactcli.errors import ConfigError
from reactcli.render.base import (
    TDMM_DIM,
    Renderer,
    RendererConfig,
    asset_path,
    check_features,
    load_mean_face,
    neutral_emotion,
)

__all__ = [
    "RendererConfig",
    "Renderer",
    "Face2DRenderer",
    "RENDERERS",
    "register_renderer",
    "resolve_renderer",
    "make_renderer",
    "check_features",
    "neutral_emotion",
    "asset_path",
    "load_mean_face",
    "TDMM_DIM",
]

Factory = Callable[[RendererConfig], Renderer]

RENDERERS: dict[str, str | Factory] = {
    "face2d": "reactcli.render.renderers:Face2DRenderer",
    "faceverse": "reactcli.render.faceverse:FaceVerseRenderer",
    "pirender": "reactcli.render.pirender:PIRenderRenderer",
}
"""Renderer name -> a factory ``f(cfg) -> Renderer`` (or a Renderer class), or the
``"module:attribute"`` path of one, imported when the renderer is first built."""


def register_renderer(name: str, target: str | Factory | None = None) -> Callable:
    """Register ``target`` (a factory, a Renderer class or a ``"module:attr"`` path) under ``name``.

    Without ``target`` it is a decorator: ``@register_renderer("mine")`` on a class or factory.
    """
    if target is not None:
        RENDERERS[name] = target
        return target

    def wrap(factory: Factory) -> Factory:
        RENDERERS[name] = factory
        return factory

    return wrap


def resolve_renderer(name: str) -> Factory:
    """The factory registered under ``name`` (importing its module if it is a path)."""
    try:
        target = RENDERERS[name]
    except KeyError:
        raise ConfigError(f"--renderer {name!r}: expected one of {', '.join(sorted(RENDERERS))}") from None
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
        RENDERERS[name] = target
    return target


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
    return resolve_renderer(cfg.name)(cfg)


class Face2DRenderer(Renderer):
    """The built-in AU-driven cartoon (:mod:`reactcli.render.face2d`); head pose from tdmm[52:58]."""

    name = "face2d"
    needs = ("emotion",)

    def __init__(self, cfg: RendererConfig | int = 128) -> None:
        if isinstance(cfg, RendererConfig):
            super().__init__(cfg.size, load_mean_face(cfg.mean_face))
        else:
            super().__init__(cfg)

    def render(self, emotion, tdmm=None, *, source=None) -> np.ndarray:
        from reactcli.render.face2d import render_sequence  # noqa: PLC0415

        emo, tdm, _ = check_features(emotion, tdmm, self.needs)
        return render_sequence(emo, None if tdm is None else self.coefficients(tdm), self.size)
