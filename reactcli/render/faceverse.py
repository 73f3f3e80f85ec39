"""Render 58-d FaceVerse coefficients with the user's FaceVerse v2 mesh, on the CPU.

Why: the challenge's "3D_FV" features are FaceVerse v2 coefficients; showing them as the mesh
they describe is the faithful picture of a generated 3DMM reaction. The model file is licensed,
so the user supplies it (``--faceverse-model``); without it :class:`MissingAssetError` names the
asset and the flag.

Model file (FaceVerse v2, e.g. ``faceverse_simple_v2.npy``): a pickled ``dict`` saved with
``np.save``, loaded with ``np.load(path, allow_pickle=True).item()``. Keys read here:

- ``meanshape``: mean vertex positions, ``(N, 3)`` or flat ``(3N,)``, x right, y up, z toward
  the viewer (FaceVerse's own fitting code flips y and z to get its camera frame).
- ``exBase``: expression basis ``(3N, 52)`` (vertex-major: rows ``3v, 3v+1, 3v+2`` are x, y, z
  of vertex v); the 52 columns are the 52 expression coefficients ``tdmm[0:52]``.
- ``tri``: triangles ``(F, 3)`` of 0-based vertex indices.
- ``meantex`` (optional): mean vertex colour ``(N, 3)`` or ``(3N,)``, 0..255 (or 0..1).
- ``idBase`` is *not* read: REACT's 58-d vector has no identity part, so the mean identity is
  drawn. Other keys (``texBase``, ``keypoints``, ``skinmask``...) are ignored.

Pose (``tdmm[52:55]``): Euler angles in radians about x (pitch), y (yaw), z (roll), applied as
``R = Rz @ Ry @ Rx`` (the Deep3DFaceRecon/FaceVerse convention). Translation (``tdmm[55:58]``):
``tx, ty`` in model units, ``tz`` toward the camera; the view is orthographic with a zoom of
``camera_distance / (camera_distance - tz)`` (FaceVerse puts the camera 10 units away), so a
face moving toward the camera grows as it would in perspective. With a mean face
(:attr:`RendererConfig.mean_face`) the tdmm are offsets from it and it is added back first.

Rasterisation is a vectorised numpy z-buffer with flat (per-triangle Lambert) shading: all
triangles of a frame are scanned at once, grouped by bounding-box size so that small triangles
(almost all of a 28k-vertex face at 128 px) cost a few candidate pixels each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reactcli.errors import InputError, MissingAssetError
from reactcli.render.base import (
    Renderer,
    RendererConfig,
    asset_path,
    check_features,
    load_mean_face,
)

__all__ = [
    "FaceVerseModel", "load_faceverse_model", "FaceVerseRenderer", "rasterize_flat", "euler_to_matrix",
    "write_tiny_faceverse_model",
]

ASSET = "FaceVerse v2 model"
OPTION = "--faceverse-model"
N_EXP = 52
_SKIN = np.array([225, 185, 160], np.float64)
_BACKGROUND = np.array([40, 40, 48], np.uint8)


@dataclass
class FaceVerseModel:
    """The parts of a FaceVerse v2 model needed to draw expressions."""

    mean: np.ndarray
    """``(N, 3)`` float64 mean shape, centred on its own centroid."""
    ex_base: np.ndarray
    """``(N, 3, 52)`` float64 expression basis."""
    tri: np.ndarray
    """``(F, 3)`` int64 triangles."""
    colour: np.ndarray | None
    """``(N, 3)`` float64 vertex colour in 0..255, or None (a plain skin colour is used)."""


def load_faceverse_model(path: str | os.PathLike | None) -> FaceVerseModel:
    """Read and validate a FaceVerse v2 ``.npy`` model dict (keys: see the module docstring)."""
    p = asset_path(path)
    if p is None or not p.is_file():
        raise MissingAssetError(ASSET, OPTION, p)
    try:
        obj = np.load(p, allow_pickle=True)  # the user's own model file: a pickled dict by design
        d = obj.item() if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == () else obj
    except Exception as exc:  # corrupt file, not an npy
        raise InputError(f"{p}: cannot read the FaceVerse v2 model ({exc})") from exc
    if not isinstance(d, dict):
        raise InputError(f"{p}: expected a FaceVerse v2 model dict (np.save of a dict), got {type(d).__name__}")
    missing = [k for k in ("meanshape", "exBase", "tri") if k not in d]
    if missing:
        raise InputError(f"{p}: FaceVerse v2 model lacks key(s) {missing} (has {sorted(d)[:12]})")
    mean = np.asarray(d["meanshape"], np.float64).reshape(-1, 3)
    n = mean.shape[0]
    ex = np.asarray(d["exBase"], np.float64)
    if ex.ndim != 2 or ex.shape != (3 * n, N_EXP):
        raise InputError(f"{p}: exBase must be (3N, 52) = ({3 * n}, {N_EXP}) for N = {n} vertices, got {ex.shape}")
    tri = np.asarray(d["tri"])
    if tri.ndim != 2 or tri.shape[1] != 3 or not np.issubdtype(tri.dtype, np.integer) and not np.all(tri == np.round(tri)):
        raise InputError(f"{p}: tri must be (F, 3) integer vertex indices, got {tri.shape} {tri.dtype}")
    tri = tri.astype(np.int64)
    if tri.size == 0 or tri.min() < 0 or tri.max() >= n:
        raise InputError(f"{p}: tri indices must lie in [0, {n}), got {tri.min() if tri.size else '-'}..{tri.max() if tri.size else '-'}")
    colour = None
    if "meantex" in d and d["meantex"] is not None:
        c = np.asarray(d["meantex"], np.float64).reshape(-1, 3)
        if c.shape[0] == n:
            colour = c * 255.0 if c.max() <= 1.0 else c
            colour = np.clip(colour, 0, 255)
    if not (np.isfinite(mean).all() and np.isfinite(ex).all()):
        raise InputError(f"{p}: FaceVerse v2 model contains NaN or inf")
    return FaceVerseModel(mean=mean - mean.mean(0), ex_base=ex.reshape(n, 3, N_EXP), tri=tri, colour=colour)


def euler_to_matrix(angles: np.ndarray) -> np.ndarray:
    """``(T, 3)`` Euler angles (x, y, z; radians) -> ``(T, 3, 3)`` rotation ``Rz @ Ry @ Rx``."""
    a = np.asarray(angles, np.float64)
    cx, sx, cy, sy, cz, sz = np.cos(a[:, 0]), np.sin(a[:, 0]), np.cos(a[:, 1]), np.sin(a[:, 1]), np.cos(a[:, 2]), np.sin(a[:, 2])
    T = a.shape[0]
    o, z = np.ones(T), np.zeros(T)
    Rx = np.stack([o, z, z, z, cx, -sx, z, sx, cx], -1).reshape(T, 3, 3)
    Ry = np.stack([cy, z, sy, z, o, z, -sy, z, cy], -1).reshape(T, 3, 3)
    Rz = np.stack([cz, -sz, z, sz, cz, z, z, z, o], -1).reshape(T, 3, 3)
    return Rz @ Ry @ Rx


def rasterize_flat(
    xy: np.ndarray,
    depth: np.ndarray,
    tri: np.ndarray,
    colours: np.ndarray,
    size: int,
    background: np.ndarray | tuple = (0, 0, 0),
    max_candidates: int = 2_000_000,
) -> np.ndarray:
    """Draw triangles with a z-buffer; returns ``(size, size, 3)`` uint8.

    Args:
        xy: ``(N, 2)`` vertex positions in pixels (x right, y down; pixel i's centre is at i).
        depth: ``(N,)`` vertex depth, larger = nearer to the viewer (wins the z-test).
        tri: ``(F, 3)`` vertex indices.
        colours: ``(F, 3)`` flat colour per triangle (0..255).
        size: image width = height.
        background: colour of uncovered pixels.
        max_candidates: cap on candidate pixels tested at once (memory bound).

    A pixel belongs to a triangle when its centre lies inside or on an edge (barycentric
    weights >= 0); depth is interpolated with the same weights. Ties keep the lower triangle
    index, so the output does not depend on numpy's scatter order.
    """
    img = np.empty((size * size, 3), np.uint8)
    img[:] = np.asarray(background, np.uint8)
    p = xy[tri]  # (F, 3, 2)
    x0 = np.clip(np.ceil(p[..., 0].min(1) - 1e-9), 0, size).astype(np.int64)
    x1 = np.clip(np.floor(p[..., 0].max(1) + 1e-9), -1, size - 1).astype(np.int64)
    y0 = np.clip(np.ceil(p[..., 1].min(1) - 1e-9), 0, size).astype(np.int64)
    y1 = np.clip(np.floor(p[..., 1].max(1) + 1e-9), -1, size - 1).astype(np.int64)
    w, h = x1 - x0 + 1, y1 - y0 + 1
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = (w > 0) & (h > 0) & (np.abs(area) > 1e-12)
    ext = np.maximum(w, h)
    pix_all, dep_all, face_all = [], [], []
    kb = 1
    while True:
        sel = np.flatnonzero(ok & (ext <= kb) & (ext > kb // 2))
        if sel.size:
            oy, ox = np.divmod(np.arange(kb * kb), kb)
            step = max(1, max_candidates // (kb * kb))
            for s in range(0, sel.size, step):
                f = sel[s : s + step]
                px = x0[f, None] + ox[None, :]
                py = y0[f, None] + oy[None, :]
                inb = (px <= x1[f, None]) & (py <= y1[f, None])
                fi = np.broadcast_to(f[:, None], px.shape)[inb]
                px, py = px[inb], py[inb]
                a = p[fi, 0]
                dx, dy = px - a[:, 0], py - a[:, 1]
                # barycentric weights of vertices 1 and 2 (Cramer's rule), then vertex 0
                ar = area[fi]
                b1 = (dx * e2[fi, 1] - dy * e2[fi, 0]) / ar
                b2 = (e1[fi, 0] * dy - e1[fi, 1] * dx) / ar
                b0 = 1.0 - b1 - b2
                inside = (b0 >= -1e-9) & (b1 >= -1e-9) & (b2 >= -1e-9)
                fi = fi[inside]
                zt = depth[tri[fi]]
                z = b0[inside] * zt[:, 0] + b1[inside] * zt[:, 1] + b2[inside] * zt[:, 2]
                pix_all.append(py[inside] * size + px[inside])
                dep_all.append(z)
                face_all.append(fi)
        if kb >= size:
            break
        kb *= 2
    if pix_all:
        pix = np.concatenate(pix_all)
        dep = np.concatenate(dep_all)
        face = np.concatenate(face_all)
        order = np.lexsort((face, -dep, pix))  # per pixel: nearest first, then lowest face index
        pix_s = pix[order]
        first = np.flatnonzero(np.r_[True, pix_s[1:] != pix_s[:-1]])
        img[pix_s[first]] = np.clip(np.round(colours[face[order[first]]]), 0, 255).astype(np.uint8)
    return img.reshape(size, size, 3)


class FaceVerseRenderer(Renderer):
    """The FaceVerse v2 mean-identity mesh driven by ``tdmm`` (expression + pose)."""

    name = "faceverse"
    needs = ("tdmm",)

    def __init__(self, cfg: RendererConfig, camera_distance: float = 10.0, fill: float = 0.9) -> None:
        super().__init__(cfg.size, load_mean_face(cfg.mean_face))
        self.model = load_faceverse_model(cfg.faceverse_model)
        self.camera_distance = float(camera_distance)
        extent = np.ptp(self.model.mean[:, :2], axis=0).max()
        #: pixels per model unit for the mean face at translation 0
        self.scale = fill * self.size / max(extent, 1e-12)
        m = self.model
        self.face_colour = m.colour[m.tri].mean(1) if m.colour is not None else np.broadcast_to(_SKIN, (m.tri.shape[0], 3))

    def vertices(self, tdmm: np.ndarray) -> np.ndarray:
        """``(T, N, 3)`` posed vertices in model units (before the zoom and pixel mapping)."""
        m = self.model
        v = m.mean[None] + np.einsum("nck,tk->tnc", m.ex_base, tdmm[:, :N_EXP].astype(np.float64))
        R = euler_to_matrix(tdmm[:, 52:55])
        return np.einsum("tij,tnj->tni", R, v) + np.concatenate(
            [tdmm[:, 55:57], np.zeros((tdmm.shape[0], 1))], 1
        )[:, None, :].astype(np.float64)

    def render(self, emotion, tdmm=None, *, source=None) -> np.ndarray:
        _, tdm, T = check_features(emotion, tdmm, self.needs, "faceverse renderer")
        tdm = self.coefficients(tdm)
        verts = self.vertices(tdm)
        zoom = self.camera_distance / np.maximum(self.camera_distance - tdm[:, 57].astype(np.float64), 1e-3)
        c = (self.size - 1) / 2
        m = self.model
        out = np.empty((T, self.size, self.size, 3), np.uint8)
        for t in range(T):
            v = verts[t]
            s = self.scale * zoom[t]
            xy = np.stack([c + s * v[:, 0], c - s * v[:, 1]], -1)  # y up -> image y down
            tv = v[m.tri]
            n = np.cross(tv[:, 1] - tv[:, 0], tv[:, 2] - tv[:, 0])
            nz = np.abs(n[:, 2]) / np.maximum(np.linalg.norm(n, axis=1), 1e-12)
            shade = 0.25 + 0.75 * nz
            out[t] = rasterize_flat(xy, v[:, 2], m.tri, self.face_colour * shade[:, None], self.size, _BACKGROUND)
        return out


def write_tiny_faceverse_model(path: str | os.PathLike, n: int = 16, seed: int = 0) -> Path:
    """A tiny model file in the FaceVerse v2 format (an ellipsoid cap), for tests and demos.

    Expression column 0 opens a "jaw" (moves the lower third down), column 1 widens the face;
    the other 50 columns are small smooth random fields. Not a face model: a stand-in with the
    same keys and shapes, so the loader and renderer run end to end without the licensed file.
    """
    rng = np.random.default_rng(seed)
    u, v = np.meshgrid(np.linspace(-1, 1, n), np.linspace(-1, 1, n))
    x, y = 0.8 * u, 1.0 * v
    z = 0.5 * np.sqrt(np.clip(1 - u**2 * 0.6 - v**2 * 0.6, 0, 1))
    mean = np.stack([x, y, z], -1).reshape(-1, 3)
    N = mean.shape[0]
    ex = np.zeros((N, 3, N_EXP))
    low = (mean[:, 1] < -0.33).astype(float)
    ex[:, 1, 0] = -0.4 * low  # jaw down (y up in the model frame)
    ex[:, 0, 1] = 0.3 * mean[:, 0]
    ex[:, :, 2:] = 0.02 * rng.standard_normal((1, 3, N_EXP - 2)) * mean[:, :1, None]
    tri = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, i * n + j + 1, (i + 1) * n + j, (i + 1) * n + j + 1
            tri += [(a, b, d), (a, d, c)]
    tex = np.tile(np.array([[220.0, 180.0, 150.0]]), (N, 1))
    tex[low > 0] = [200, 90, 90]
    d = {
        "meanshape": mean.astype(np.float32),
        "idBase": np.zeros((3 * N, 150), np.float32),
        "exBase": ex.reshape(3 * N, N_EXP).astype(np.float32),
        "tri": np.array(tri, np.int32),
        "meantex": tex.reshape(-1).astype(np.float32),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, d, allow_pickle=True)
    return path
