"""A fast, built-in 2D cartoon face driven by the 25-d emotion features and the 3DMM head pose.

Why it exists: the real renderers (PIRender, FaceVerse/EMOCA meshes) need licensed assets that are
never available here, yet every stage downstream of "features" wants pictures: the synthetic
corpus needs face videos, the render stage needs a preview of generated reactions, and tests need
frames whose content is *known*. This face is drawn with OpenCV primitives from a handful of
geometric parameters, each tied to one facial action unit (AU), so that a frame can be read back
by eye ("the brows are up, so AU1/AU2 are on") and tests can check that every AU moves the part of
the face it names.

Coordinates: the face is defined in a canonical frame with x to the image right, y down, both in
[-1, 1] across the image at scale 1, and z toward the camera. Points get a depth from the face
ellipsoid so that head rotation (pitch, yaw, roll from 3DMM dims 52:55, in radians) rotates them
in 3D before an orthographic projection. Translation (3DMM dims 55:58): ``tx, ty`` shift the face
by that fraction of half the image (0.1 = 5 % of the width), ``tz`` scales it by ``exp(-tz)``
(positive = farther away).

Inputs follow data.md: emotion ``[0:15]`` AU1, AU2, AU4, AU6, AU7, AU9, AU10, AU12, AU14, AU15,
AU17, AU23, AU24, AU25, AU26 in [0, 1] (binary occurrence or a continuous intensity; both are
drawn proportionally); ``[15:17]`` valence, arousal in [-1, 1] (tint the background and the
cheeks); ``[17:25]`` expression probabilities (Surprise/Fear widen the eyes, Happy/Sad curve the
mouth slightly). Out-of-range values are clipped, non-finite ones refused.

What each AU does (and the region a test looks at):

=====  ======================  =============================================================
AU1    inner brow raiser       inner ends of both brows go up
AU2    outer brow raiser       outer ends of both brows go up
AU4    brow lowerer            brows go down and toward the midline; vertical furrows appear
AU6    cheek raiser            cheek patches rise and redden; crow's-feet at the eye corners
AU7    lid tightener           lower lids rise, upper lids drop a little (narrower eyes)
AU9    nose wrinkler           wrinkles across the nose bridge; nostrils lift
AU10   upper lip raiser        the centre of the upper lip rises; nasolabial folds deepen
AU12   lip corner puller       mouth corners go up and out (smile)
AU14   dimpler                 corners pulled in, dimples beside them
AU15   lip corner depressor    mouth corners go down
AU17   chin raiser             the chin boss rises (chin crease) and pushes the lower lip up
AU23   lip tightener           lips narrow and thin
AU24   lip presser             lips flatten into a pressed line
AU25   lips part               a dark gap opens between the lips
AU26   jaw drop                the jaw and chin move down, the mouth opens wider
=====  ======================  =============================================================

Speed: geometry is computed for all frames at once with numpy; only the ~40 OpenCV draw calls per
frame run in a Python loop. See :func:`render_sequence` (measured on one busy core: ~800 frames/s at
256x256 with every AU active, ~1600 with a neutral face, ~1900 at 128x128).
"""

from __future__ import annotations

from typing import Iterator

import cv2
import numpy as np

from reactcli.errors import InputError

__all__ = [
    "AU_NAMES",
    "EMOTION_NAMES",
    "AU_REGIONS",
    "render",
    "render_sequence",
    "iter_frames",
    "region_mask",
]

AU_NAMES: tuple[str, ...] = (
    "AU1", "AU2", "AU4", "AU6", "AU7", "AU9", "AU10", "AU12",
    "AU14", "AU15", "AU17", "AU23", "AU24", "AU25", "AU26",
)
EXPR_NAMES: tuple[str, ...] = (
    "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt",
)
EMOTION_NAMES: tuple[str, ...] = AU_NAMES + ("valence", "arousal") + EXPR_NAMES

#: Canonical-frame boxes ``(x0, x1, y0, y1)`` (unrotated face at scale 1) where each AU's change
#: must mostly fall; used by tests and handy for documentation. Symmetric AUs list one box that
#: spans both sides.
AU_REGIONS: dict[str, tuple[float, float, float, float]] = {
    "AU1": (-0.42, 0.42, -0.62, -0.18),
    "AU2": (-0.66, 0.66, -0.62, -0.18),
    "AU4": (-0.60, 0.60, -0.55, -0.12),
    "AU6": (-0.68, 0.68, -0.32, 0.36),
    "AU7": (-0.50, 0.50, -0.30, 0.00),
    "AU9": (-0.22, 0.22, -0.22, 0.30),
    "AU10": (-0.36, 0.36, 0.08, 0.48),
    "AU12": (-0.42, 0.42, 0.12, 0.58),
    "AU14": (-0.42, 0.42, 0.25, 0.58),
    "AU15": (-0.42, 0.42, 0.25, 0.62),
    "AU17": (-0.36, 0.36, 0.34, 0.90),
    "AU23": (-0.38, 0.38, 0.25, 0.58),
    "AU24": (-0.38, 0.38, 0.25, 0.58),
    "AU25": (-0.38, 0.38, 0.25, 0.58),
    "AU26": (-0.75, 0.75, 0.25, 1.00),
}

# ---- colours (RGB) ---------------------------------------------------------------------------
_SKIN = np.array([232, 190, 160], np.float32)
_DARK = np.array([70, 45, 35], np.float32)
_BROW = np.array([80, 55, 40], np.float32)
_LIP = np.array([190, 80, 85], np.float32)
_MOUTH_IN = np.array([60, 15, 25], np.float32)
_EYE_WHITE = (245, 245, 245)
_IRIS = (60, 90, 120)
_BLUSH = np.array([235, 120, 120], np.float32)

_SHIFT = 4  # sub-pixel bits for OpenCV's anti-aliased drawing
_ONE = 1 << _SHIFT

# Face outline: half-width, half-height and centre of the head ellipse.
_FW, _FH, _FCY = 0.62, 0.80, 0.05


def _check_inputs(emotion: np.ndarray, tdmm: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    emo = np.asarray(emotion, dtype=np.float32)
    if emo.ndim != 2 or emo.shape[1] != 25:
        raise InputError(f"emotion features: expected shape (T, 25), got {emo.shape}")
    if not np.all(np.isfinite(emo)):
        raise InputError("emotion features contain NaN or inf")
    if tdmm is None:
        pose = np.zeros((emo.shape[0], 6), np.float32)
    else:
        arr = np.asarray(tdmm, dtype=np.float32)
        if arr.ndim == 3 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 2 or arr.shape[0] != emo.shape[0] or arr.shape[1] not in (6, 58):
            raise InputError(
                f"3DMM/pose: expected (T, 58) or (T, 6) with T = {emo.shape[0]}, got {arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise InputError("3DMM/pose values contain NaN or inf")
        pose = arr[:, 52:58] if arr.shape[1] == 58 else arr
    return emo, pose


class _Geometry:
    """All drawable point sets for T frames, in canonical coordinates, before the pose transform.

    Each attribute is an array ``(T, n, 2)``; building them all at once keeps the per-frame loop
    down to draw calls.
    """

    def __init__(self, emo: np.ndarray) -> None:
        T = emo.shape[0]
        au = {n: np.clip(emo[:, i], 0.0, 1.0)[:, None] for i, n in enumerate(AU_NAMES)}
        val = np.clip(emo[:, 15], -1, 1)[:, None]
        probs = np.clip(emo[:, 17:25], 0.0, 1.0)
        self.au = au
        self.valence = val[:, 0]
        self.arousal = np.clip(emo[:, 16], -1, 1)
        surprise = (probs[:, 3] + probs[:, 4])[:, None]
        happy_sad = (probs[:, 1] - probs[:, 2])[:, None]

        # ---- jaw / face outline -----------------------------------------------------------
        jaw = 0.13 * au["AU26"]  # downward jaw displacement
        th = np.linspace(0, 2 * np.pi, 48, endpoint=False)[None, :]
        ox = _FW * np.sin(th)
        oy = _FCY - _FH * np.cos(th)  # th = 0 at the top
        low = np.clip((oy - 0.15) / (_FCY + _FH - 0.15), 0, 1)  # 0 above cheeks, 1 at chin
        self.outline = np.stack(np.broadcast_arrays(ox, oy + jaw * low**1.5), -1)

        # ---- brows (inner -> outer), right side of image = +x --------------------------------
        u = np.linspace(0, 1, 6)[None, :]
        bx = 0.11 + 0.38 * u
        by = -0.34 - 0.07 * np.sin(np.pi * (0.3 + 0.7 * u))
        by = by - 0.13 * au["AU1"] * (1 - u) ** 1.5 - 0.13 * au["AU2"] * u**1.5
        by = by + 0.07 * au["AU4"] * (1 - 0.4 * u)
        bx = bx - 0.05 * au["AU4"] * (1 - u)
        bx = np.broadcast_to(bx, by.shape)
        self.brow_r = np.stack([bx, by], -1)
        self.brow_l = self.brow_r * np.array([-1.0, 1.0])

        # ---- eyes -------------------------------------------------------------------------
        ex = np.linspace(-1, 1, 9)[None, :]
        bell = 1 - ex**2
        h_up = 0.075 * (1 - 0.35 * au["AU7"] - 0.1 * au["AU6"]) * (1 + 0.5 * surprise)
        h_lo = 0.050 * (1 - 0.75 * au["AU7"] - 0.35 * au["AU6"]) * (1 + 0.3 * surprise)
        ecx, ecy = 0.27, -0.15
        up = np.stack(np.broadcast_arrays(ecx + 0.11 * ex, ecy - h_up * bell), -1)
        lo = np.stack(np.broadcast_arrays(ecx + 0.11 * ex[:, ::-1], ecy + h_lo * bell), -1)
        self.eye_r = np.concatenate([up, lo], 1)
        self.eye_l = self.eye_r * np.array([-1.0, 1.0])
        self.upper_lid_r = up
        self.upper_lid_l = up * np.array([-1.0, 1.0])
        # iris: centre and vertical radius limited by the aperture
        ir = np.minimum(0.045, 0.9 * (h_up + h_lo) / 2)[:, 0]
        self.iris_r = np.stack([np.full(T, ecx), ecy + (h_lo - h_up)[:, 0] / 2, ir], -1)

        # crow's feet (AU6): three short lines fanning out from the outer eye corner
        cf = []
        for ang in (-0.5, 0.0, 0.5):
            d = np.array([np.cos(ang), np.sin(ang)])
            p0 = np.array([ecx + 0.14, ecy])
            cf.append(np.stack([p0, p0 + 0.09 * d]))
        self.crows = np.array(cf)  # (3, 2, 2) static; drawn with AU6-weighted colour

        # cheeks (AU6): ellipse centre rises
        self.cheek_cy = (0.14 - 0.10 * au["AU6"])[:, 0]

        # ---- brow furrows (AU4) and nose ---------------------------------------------------
        self.furrows = np.array([[[-0.045, -0.34], [-0.035, -0.22]], [[0.045, -0.34], [0.035, -0.22]]])
        self.nose_bridge = np.array([[0.0, -0.12], [0.0, 0.10]])
        nlift = 0.035 * au["AU9"] + 0.015 * au["AU10"]
        nx = np.array([-0.09, -0.05, 0.0, 0.05, 0.09])[None, :]
        ny = np.array([0.17, 0.20, 0.205, 0.20, 0.17])[None, :] - nlift
        self.nose_base = np.stack(np.broadcast_arrays(nx * (1 + 0.2 * au["AU9"]), ny), -1)
        self.wrinkles = np.array([[[-0.07, y], [0.07, y]] for y in (-0.08, -0.035, 0.01)])
        # nasolabial folds (AU10, a little with AU12): wing of the nose -> beside the mouth corner
        self.nasolab = np.array([[[0.11, 0.16], [0.19, 0.27], [0.23, 0.38]]])

        # ---- mouth -------------------------------------------------------------------------
        mcy = 0.42
        w = 0.20 * (1 + 0.22 * au["AU12"] - 0.25 * au["AU23"] - 0.12 * au["AU14"] - 0.05 * au["AU24"])
        corner_y = mcy - 0.075 * au["AU12"] + 0.08 * au["AU15"] - 0.02 * happy_sad
        t_up = 0.045 * (1 - 0.45 * au["AU23"] - 0.6 * au["AU24"])
        t_lo = 0.055 * (1 - 0.45 * au["AU23"] - 0.6 * au["AU24"])
        lift_up = 0.05 * au["AU10"]  # upper lip centre rises
        push_lo = 0.035 * au["AU17"]  # chin raiser pushes the lower lip up
        gap = 0.075 * au["AU25"] + 0.75 * jaw  # opening between the lips
        mid_up = mcy - lift_up - 0.3 * gap  # upper contact line at the centre
        mid_lo = mcy - push_lo + gap  # lower contact line at the centre

        mx = np.linspace(-1, 1, 13)[None, :]
        mb = 1 - mx**2  # 0 at the corners, 1 in the middle
        xs = w * mx
        y_in_up = corner_y + (mid_up - corner_y) * mb
        y_in_lo = corner_y + (mid_lo - corner_y) * mb
        y_out_up = y_in_up - t_up * mb**0.6 - 0.012 * mb
        y_out_lo = y_in_lo + t_lo * mb**0.6
        # cupid's bow: a small dip at the centre of the upper lip
        y_out_up = y_out_up + 0.012 * np.exp(-((mx / 0.12) ** 2)) * (1 - au["AU24"])
        self.lips_outer = np.concatenate(
            [np.stack(np.broadcast_arrays(xs, y_out_up), -1), np.stack(np.broadcast_arrays(xs[:, ::-1], y_out_lo[:, ::-1]), -1)], 1
        )
        self.mouth_inner = np.concatenate(
            [np.stack(np.broadcast_arrays(xs, y_in_up), -1), np.stack(np.broadcast_arrays(xs[:, ::-1], y_in_lo[:, ::-1]), -1)], 1
        )
        self.lip_line = np.stack(np.broadcast_arrays(xs, (y_in_up + y_in_lo) / 2), -1)
        self.open_amount = (gap[:, 0] > 0.004)
        # dimples (AU14): short arcs just outside the corners
        self.corner_r = np.stack([w[:, 0], corner_y[:, 0]], -1)
        # chin crease (AU17): an arc below the lower lip that rises with AU17, drops with the jaw
        cx_ = np.linspace(-0.12, 0.12, 7)[None, :]
        cy_ = 0.64 - 0.07 * au["AU17"] + jaw + 0.02 * (cx_ / 0.12) ** 2
        self.chin = np.stack(np.broadcast_arrays(cx_, cy_), -1)
        # press lines (AU24): short horizontal bulges above and below the lips
        self.w = w[:, 0]
        self.corner_y = corner_y[:, 0]


def _depth(xy: np.ndarray) -> np.ndarray:
    """z of a canonical point on the face ellipsoid (0 at the rim, about 0.35 at the centre)."""
    r2 = (xy[..., 0] / _FW) ** 2 + ((xy[..., 1] - _FCY) / _FH) ** 2
    return 0.35 * np.sqrt(np.clip(1 - r2, 0, 1))


def _pose_matrices(pose: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame 2x3 projection (rotation * scale, pixels per canonical unit) and pixel offset.

    The head rotates about its own centre (0, _FCY, 0); ``off`` is where that centre lands.
    """
    pitch, yaw, roll = pose[:, 0], pose[:, 1], pose[:, 2]
    cp, sp, cy, sy, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(yaw), np.sin(yaw), np.cos(roll), np.sin(roll)
    T = pose.shape[0]
    Rx = np.zeros((T, 3, 3)); Rx[:, 0, 0] = 1; Rx[:, 1, 1] = cp; Rx[:, 1, 2] = -sp; Rx[:, 2, 1] = sp; Rx[:, 2, 2] = cp  # noqa: E702
    Ry = np.zeros((T, 3, 3)); Ry[:, 1, 1] = 1; Ry[:, 0, 0] = cy; Ry[:, 0, 2] = sy; Ry[:, 2, 0] = -sy; Ry[:, 2, 2] = cy  # noqa: E702
    Rz = np.zeros((T, 3, 3)); Rz[:, 2, 2] = 1; Rz[:, 0, 0] = cr; Rz[:, 0, 1] = -sr; Rz[:, 1, 0] = sr; Rz[:, 1, 1] = cr  # noqa: E702
    R = Rz @ Ry @ Rx
    scale = 0.5 * size * 0.92 * np.exp(-np.clip(pose[:, 5], -1.5, 1.5))
    M = R[:, :2, :] * scale[:, None, None]  # (T, 2, 3)
    off = np.stack(
        [(size - 1) / 2 + pose[:, 3] * size / 2, (size - 1) / 2 + pose[:, 4] * size / 2 + _FCY * scale], -1
    )
    return M, off


def _project(pts: np.ndarray, M: np.ndarray, off: np.ndarray, lift: float = 0.0) -> np.ndarray:
    """Canonical (T, n, 2) or static (n, 2) points -> fixed-point pixel coords (T, n, 2) int32.

    ``lift`` pushes a feature out of the ellipsoid surface (the nose, the lips) so that it
    slides over the face under yaw/pitch as a real protruding part would.
    """
    if pts.ndim == 2:
        pts = np.broadcast_to(pts, (M.shape[0],) + pts.shape)
    z = _depth(pts) + lift
    p3 = np.concatenate([pts[..., :1], pts[..., 1:2] - _FCY, z[..., None]], -1)  # (T, n, 3)
    xy = np.einsum("tij,tnj->tni", M, p3) + off[:, None, :]
    return np.round(xy * _ONE).astype(np.int32)


def _check_size(size: int) -> int:
    size = int(size)
    if size < 16 or size % 2:
        raise InputError(f"face size must be an even number of pixels >= 16, got {size}")
    return size


def iter_frames(
    emotion: np.ndarray, tdmm: np.ndarray | None = None, size: int = 256, chunk: int = 256
) -> Iterator[np.ndarray]:
    """Yield ``(t, size, size, 3)`` uint8 chunks of at most ``chunk`` frames.

    Streaming matters for whole sessions: 17 minutes at 256x256 would be 5 GB as one array.
    """
    emo, pose = _check_inputs(emotion, tdmm)
    size = _check_size(size)
    for s in range(0, emo.shape[0], max(1, int(chunk))):
        yield _render_block(emo[s : s + chunk], pose[s : s + chunk], size)


def render_sequence(emotion: np.ndarray, tdmm: np.ndarray | None = None, size: int = 256) -> np.ndarray:
    """Render ``(T, 25)`` emotion features (+ optional ``(T, 58)`` 3DMM or ``(T, 6)`` pose).

    Only the pose part of the 3DMM (dims 52:58) is used; the expression is read from the AUs so
    that the picture shows what the challenge metrics measure. Returns ``(T, size, size, 3)``.
    """
    emo, pose = _check_inputs(emotion, tdmm)
    return _render_block(emo, pose, _check_size(size))


def render(emotion25: np.ndarray, pose6: np.ndarray | None = None, size: int = 256) -> np.ndarray:
    """Render one frame from a ``(25,)`` emotion vector and an optional ``(6,)`` pose."""
    emo = np.asarray(emotion25, np.float32).reshape(1, -1)
    pose = None if pose6 is None else np.asarray(pose6, np.float32).reshape(1, -1)
    return render_sequence(emo, pose, size)[0]


def region_mask(region: tuple[float, float, float, float], size: int) -> np.ndarray:
    """Boolean ``(size, size)`` mask of a canonical-frame box for an unrotated, centred face."""
    M, off = _pose_matrices(np.zeros((1, 6)), size)
    corners = np.array([[region[0], region[2]], [region[1], region[3]]])
    pix = _project(corners[None] * 1.0, M, off) / _ONE
    # depth does not move x/y without rotation, so the box maps to an axis-aligned pixel box
    (x0, y0), (x1, y1) = pix[0]
    yy, xx = np.mgrid[0:size, 0:size]
    return (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)


def _render_block(emo: np.ndarray, pose: np.ndarray, size: int) -> np.ndarray:
    T = emo.shape[0]
    g = _Geometry(emo)
    M, off = _pose_matrices(pose.astype(np.float64), size)
    P = lambda pts, lift=0.0: _project(np.asarray(pts, np.float64), M, off, lift)  # noqa: E731

    outline = P(g.outline, -0.0)
    brow_r, brow_l = P(g.brow_r, 0.05), P(g.brow_l, 0.05)
    eye_r, eye_l = P(g.eye_r, 0.03), P(g.eye_l, 0.03)
    lid_r, lid_l = P(g.upper_lid_r, 0.03), P(g.upper_lid_l, 0.03)
    flip = np.array([-1.0, 1.0])
    crows_r = [P(c, 0.0) for c in g.crows]
    crows_l = [P(c * flip, 0.0) for c in g.crows]
    furrows = [P(f, 0.08) for f in g.furrows]
    bridge = P(g.nose_bridge, 0.12)
    nose_base = P(g.nose_base, 0.15)
    wrinkles = [P(wr, 0.12) for wr in g.wrinkles]
    naso_r = P(g.nasolab[0], 0.05)
    naso_l = P(g.nasolab[0] * flip, 0.05)
    lips = P(g.lips_outer, 0.08)
    mouth_in = P(g.mouth_inner, 0.08)
    lip_line = P(g.lip_line, 0.08)
    chin = P(g.chin, 0.05)
    iris_c = np.stack([g.iris_r[:, :2], g.iris_r[:, :2] * flip], 1)  # (T, 2, 2)
    iris_px = P(iris_c, 0.05)
    cheek_c = np.stack(
        [np.stack([np.full(T, 0.33), g.cheek_cy], -1), np.stack([np.full(T, -0.33), g.cheek_cy], -1)], 1
    )
    cheek_px = P(cheek_c, 0.0)
    dimple_c = np.stack([g.corner_r + [0.035, 0.0], g.corner_r * flip + [-0.035, 0.0]], 1)
    dimple_px = P(dimple_c, 0.05)
    press_up = np.stack([np.stack([-0.6 * g.w, g.corner_y - 0.085], -1), np.stack([0.6 * g.w, g.corner_y - 0.085], -1)], 1)
    press_lo = np.stack([np.stack([-0.5 * g.w, g.corner_y + 0.09], -1), np.stack([0.5 * g.w, g.corner_y + 0.09], -1)], 1)
    press_up_px, press_lo_px = P(press_up, 0.08), P(press_lo, 0.08)
    scale_px = np.hypot(M[:, 0, 0], M[:, 0, 1])  # pixels per canonical unit, per frame

    au = {k: v[:, 0].astype(np.float64) for k, v in g.au.items()}
    val, aro = g.valence.astype(np.float64), g.arousal.astype(np.float64)

    # Per-frame colours, computed for all frames at once and turned into Python tuples once:
    # the draw loop below then does no numpy arithmetic at all (that overhead dominated).
    def mix(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> list:
        a2 = a if a.ndim == 2 else np.broadcast_to(a, (T, 3))
        b2 = b if b.ndim == 2 else np.broadcast_to(b, (T, 3))
        return (a2 + (b2 - a2) * np.clip(w, 0, 1)[:, None]).tolist()

    bg_base = np.array([200, 205, 215], np.float64)
    warm, cool = np.array([30, 10, -25], np.float64), np.array([-25, -5, 25], np.float64)
    bg = bg_base + np.where(val[:, None] > 0, warm * val[:, None], cool * -val[:, None])
    skin = np.clip(_SKIN + np.array([8, -6, -6]) * aro[:, None], 0, 255)
    one = np.ones(T)
    c_skin = skin.tolist()
    c_outline = mix(skin, _DARK, 0.5 * one)
    c_cheek = mix(skin, _BLUSH, 0.18 + 0.55 * au["AU6"] + 0.1 * np.maximum(aro, 0))
    c_eye_line = mix(skin, _DARK, 0.85 * one)
    c_lid = mix(skin, _DARK, 0.95 * one)
    c_crows = mix(skin, _DARK, 0.75 * au["AU6"])
    c_furrow = mix(skin, _DARK, 0.8 * au["AU4"])
    c_bridge = mix(skin, _DARK, 0.35 * one)
    c_nose = mix(skin, _DARK, 0.7 * one)
    c_wrinkle = mix(skin, _DARK, 0.85 * au["AU9"])
    c_naso = mix(skin, _DARK, 0.15 + 0.75 * (au["AU10"] + 0.3 * au["AU12"]))
    c_lipline = mix(_LIP, _MOUTH_IN, 0.6 + 0.4 * au["AU24"])
    c_press = mix(skin, _DARK, 0.6 * au["AU24"])
    c_dimple = mix(skin, _DARK, 0.85 * au["AU14"])
    c_chin = mix(skin, _DARK, 0.2 + 0.7 * au["AU17"])
    a4, a6, a9, a14, a24 = (au[k].tolist() for k in ("AU4", "AU6", "AU9", "AU14", "AU24"))
    thick24 = (au["AU24"] > 0.5).astype(int).tolist()
    thick17 = (au["AU17"] > 0.5).astype(int).tolist()
    iris_ry = (g.iris_r[:, 2] * scale_px * _ONE).astype(int).tolist()
    iris_rx = (0.045 * scale_px * _ONE).astype(int).tolist()
    cheek_axes = np.stack([0.11 * scale_px * _ONE, 0.065 * scale_px * _ONE], -1).astype(int).tolist()
    dimple_r = (0.025 * scale_px * _ONE).astype(int).tolist()
    iris_pts = iris_px.tolist()
    cheek_pts = cheek_px.tolist()
    dimple_pts = dimple_px.tolist()
    lip_c = tuple(float(c) for c in _LIP)
    mouth_c = tuple(float(c) for c in _MOUTH_IN)
    brow_c = tuple(float(c) for c in _BROW)

    frames = np.empty((T, size, size, 3), np.uint8)
    bg_u8 = np.clip(bg, 0, 255).astype(np.uint8)
    lw = max(1, int(round(size / 64)))
    bw = max(2, int(round(size / 28)))
    AA = cv2.LINE_AA
    for t in range(T):
        img = frames[t]
        # background: fill one row, then copy it down (much faster than broadcasting a colour)
        img[0] = bg_u8[t]
        img[1:] = img[:1]
        cv2.fillPoly(img, [outline[t]], c_skin[t], AA, _SHIFT)
        cv2.polylines(img, [outline[t]], True, c_outline[t], lw, AA, _SHIFT)
        # cheeks (AU6 raises and reddens them; arousal adds a little colour)
        for c in cheek_pts[t]:
            cv2.ellipse(img, (c[0], c[1]), cheek_axes[t], 0, 0, 360, c_cheek[t], -1, AA, _SHIFT)
        # eyes
        cv2.fillPoly(img, [eye_r[t], eye_l[t]], _EYE_WHITE, AA, _SHIFT)
        ry, rx = iris_ry[t], iris_rx[t]
        if ry > 0:
            for ic in iris_pts[t]:
                cv2.ellipse(img, (ic[0], ic[1]), (rx, ry), 0, 0, 360, _IRIS, -1, AA, _SHIFT)
                cv2.ellipse(img, (ic[0], ic[1]), (rx // 2, max(1, ry // 2)), 0, 0, 360, (20, 20, 25), -1, AA, _SHIFT)
        cv2.polylines(img, [eye_r[t], eye_l[t]], True, c_eye_line[t], lw, AA, _SHIFT)
        cv2.polylines(img, [lid_r[t], lid_l[t]], False, c_lid[t], lw + 1, AA, _SHIFT)
        if a6[t] > 0.02:
            cv2.polylines(img, [c[t] for c in crows_r + crows_l], False, c_crows[t], lw, AA, _SHIFT)
        # brows and furrows
        cv2.polylines(img, [brow_r[t], brow_l[t]], False, brow_c, bw, AA, _SHIFT)
        if a4[t] > 0.02:
            cv2.polylines(img, [f[t] for f in furrows], False, c_furrow[t], lw, AA, _SHIFT)
        # nose
        cv2.polylines(img, [bridge[t]], False, c_bridge[t], lw, AA, _SHIFT)
        cv2.polylines(img, [nose_base[t]], False, c_nose[t], lw + 1, AA, _SHIFT)
        if a9[t] > 0.02:
            cv2.polylines(img, [wr[t] for wr in wrinkles], False, c_wrinkle[t], lw, AA, _SHIFT)
        cv2.polylines(img, [naso_r[t], naso_l[t]], False, c_naso[t], lw, AA, _SHIFT)
        # mouth
        cv2.fillPoly(img, [lips[t]], lip_c, AA, _SHIFT)
        if g.open_amount[t]:
            cv2.fillPoly(img, [mouth_in[t]], mouth_c, AA, _SHIFT)
        cv2.polylines(img, [lip_line[t]], False, c_lipline[t], lw + thick24[t], AA, _SHIFT)
        if a24[t] > 0.02:
            cv2.polylines(img, [press_up_px[t], press_lo_px[t]], False, c_press[t], lw, AA, _SHIFT)
        if a14[t] > 0.02:
            r = dimple_r[t]
            for d in dimple_pts[t]:
                cv2.ellipse(img, (d[0], d[1]), (r, 2 * r), 0, 0, 360, c_dimple[t], -1, AA, _SHIFT)
        cv2.polylines(img, [chin[t]], False, c_chin[t], lw + thick17[t], AA, _SHIFT)
    return frames
