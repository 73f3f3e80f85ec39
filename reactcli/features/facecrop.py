"""Face crops for the face-model adapters (EMOCA, FaceVerse, GraphAU), one box per frame.

Why: those models were trained on faces cropped around landmarks, not on whole frames. A raw
NoXI/RECOLA frame shows a person in a room; a centre crop of it feeds the model mostly wall.
``crop="face"`` (the default) therefore finds the face's landmarks in every frame
(:func:`reactcli.features.landmarks.make_landmarker`: MediaPipe by default, or face-alignment's
FAN, the landmarks EMOCA itself crops with) and cuts a square around them, following the
DECA/EMOCA convention: centre = centre of the landmarks' bounding box, side =
``scale * 1.1 * (width + height) / 2`` of that box, ``scale = 1.25``. (With MediaPipe's mesh the
box reaches the forehead, so its crops are a little looser than FAN's for the same scale.)

A frame where no face is found takes the box of the nearest frame that has one (the earlier on a
tie); a clip with no face at all falls back to the largest centred square. Parts of a box outside
the frame are black. The box of every frame is returned with the crops, so the extract stage
stores it (``<extractor>_crop``, see :func:`box_record`) beside the features it produced.

``crop="center"`` and ``crop="resize"`` keep the previous behaviour for inputs that are face
crops already (the REACT clips are 256x256 face crops): resize the frame to
``round(S * 256 / 224)`` and take the central ``S`` (the challenge's Resize(256)/CenterCrop(224)),
or resize it to ``S`` directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reactcli.errors import ConfigError

CROP_MODES = ("face", "center", "resize")
#: columns of the per-frame crop record
RECORD_COLUMNS = ("x0", "y0", "x1", "y1", "face_found")


@dataclass(frozen=True)
class FaceBoxes:
    """Square crop boxes of a clip, in pixels of its frames."""

    boxes: np.ndarray
    """``(N, 4)`` int64 ``[x0, y0, x1, y1]``, ``x1``/``y1`` exclusive; may reach outside the frame."""
    found: np.ndarray
    """``(N,)`` bool: the box comes from this frame's own landmarks."""
    width: int
    """Frame width in pixels."""
    height: int
    """Frame height in pixels."""


def boxes_from_landmarks(points: np.ndarray, valid: np.ndarray, width: int, height: int,
                         scale: float = 1.25) -> FaceBoxes:
    """Square boxes around each frame's landmarks (x, y as fractions of width and height)."""
    if scale <= 0:
        raise ConfigError(f"face crop scale must be > 0, got {scale}")
    n = len(points)
    boxes = np.zeros((n, 4), np.int64)
    ok = np.asarray(valid, bool)
    for i in np.flatnonzero(ok):
        x, y = points[i, :, 0] * width, points[i, :, 1] * height
        left, right, top, bottom = x.min(), x.max(), y.min(), y.max()
        side = max(1, int(round(scale * 1.1 * ((right - left) + (bottom - top)) / 2)))
        x0 = int(round((left + right) / 2 - side / 2))
        y0 = int(round((top + bottom) / 2 - side / 2))
        boxes[i] = (x0, y0, x0 + side, y0 + side)
    have = np.flatnonzero(ok)
    if len(have) == 0:
        side = min(width, height)
        x0, y0 = (width - side) // 2, (height - side) // 2
        boxes[:] = (x0, y0, x0 + side, y0 + side)
    else:
        for i in np.flatnonzero(~ok):
            boxes[i] = boxes[have[np.argmin(np.abs(have - i))]]  # argmin: the earlier on a tie
    return FaceBoxes(boxes, ok.copy(), int(width), int(height))


def crop_faces(frames: np.ndarray, boxes: FaceBoxes, size: int) -> np.ndarray:
    """``(N, H, W, 3)`` uint8 -> ``(N, 3, size, size)`` float32 in [0, 1]: each frame's box,
    black outside the frame, resized with OpenCV (area averaging when shrinking, else bilinear)."""
    import cv2

    n, h, w = frames.shape[:3]
    out = np.empty((n, 3, size, size), np.float32)
    for i, (x0, y0, x1, y1) in enumerate(boxes.boxes):
        side = int(x1 - x0)
        patch = np.zeros((side, side, 3), np.uint8)
        sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if sx1 > sx0 and sy1 > sy0:
            patch[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = frames[i, sy0:sy1, sx0:sx1]
        interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
        out[i] = cv2.resize(patch, (size, size), interpolation=interp).transpose(2, 0, 1) / 255.0
    return out


def crop_fixed(frames: np.ndarray, mode: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The landmark-free crops (``center`` / ``resize``) and their boxes as fractions of the frame,
    ``(N, 4)`` float32 (the same box for every frame)."""
    import cv2

    if mode not in ("center", "resize"):
        raise ConfigError(f"crop {mode!r}: expected one of {', '.join(CROP_MODES)}")
    big = int(round(size * 256 / 224)) if mode == "center" else size
    o = (big - size) // 2
    out = np.empty((len(frames), 3, size, size), np.float32)
    for i, f in enumerate(frames):
        r = cv2.resize(f, (big, big), interpolation=cv2.INTER_LINEAR)[o:o + size, o:o + size]
        out[i] = r.transpose(2, 0, 1) / 255.0
    box = np.array([o / big, o / big, (o + size) / big, (o + size) / big], np.float32)
    return out, np.tile(box, (len(frames), 1))


def box_record(boxes: FaceBoxes) -> np.ndarray:
    """``(N, 5)`` float32 per frame: ``x0, y0, x1, y1`` as fractions of the frame's width and
    height (outside [0, 1] where the box leaves the frame) and ``face_found`` (1 or 0)."""
    wh = np.array([boxes.width, boxes.height, boxes.width, boxes.height], np.float64)
    return np.concatenate([boxes.boxes / wh, boxes.found[:, None]], axis=1).astype(np.float32)
