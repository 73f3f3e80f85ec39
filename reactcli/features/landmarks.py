"""Face landmarks per frame, from one of two backends.

``mediapipe`` (the default) runs offline with no user file: MediaPipe Face Mesh ships its models
inside the wheel. Output ``landmarks``: 478 points (468 mesh + 10 iris points; 468 with
``refine_landmarks=False``) as ``[x0, y0, z0, x1, ...]``, with x, y normalised to the frame
(0..1 from the left / top edge) and z MediaPipe's relative depth (same scale as x, smaller =
closer to the camera, origin near the head centre). ``static_image_mode=False`` (default) tracks
the face across frames (faster, steadier, still deterministic for a given clip); ``True`` detects
in every frame independently. Requires mediapipe 0.10.21 (later wheels dropped the legacy
``solutions`` API and its models).

``fan`` runs face-alignment's 2D-FAN-4 (:mod:`reactcli.features.fan`): the 68 iBUG points that
EMOCA users crop with, from weights in ``fan_dir`` (``--fan-dir``). Output ``landmarks68``:
``[x0, y0, x1, y1, ...]`` normalised the same way. The feature names differ per backend so that
the two point sets never overwrite or stand in for each other in one store.

Frames where no face is found get a row of zeros and ``<feature>_valid = 0`` (a separate
``(N, 1)`` array, 1 where a face was found) instead of NaN rows, so the arrays stay finite and a
consumer masks with the validity column. :func:`make_landmarker` is also what the face-model
adapters use to find the face they crop (:mod:`reactcli.features.facecrop`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from reactcli.errors import ConfigError
from reactcli.features.facemesh import MediaPipeLandmarker
from reactcli.features.registry import ClipInputs, Extractor, read_video_frames, register_extractor

BACKENDS = ("mediapipe", "fan")
#: backend -> name of its landmark feature in the store
FEATURE = {"mediapipe": "landmarks", "fan": "landmarks68"}


class Landmarker(Protocol):
    """``frames (N, H, W, 3) uint8 RGB -> (points (N, P, D) float32, valid (N,) bool)``; x, y of
    each point are fractions of the frame's width and height."""

    num_points: int
    point_dims: int

    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def make_landmarker(backend: str = "mediapipe", *, fan_dir: str | None = None, fan_detector: str = "sfd",
                    device: str = "cpu", **mediapipe_options: object) -> Landmarker:
    """The landmarker of ``backend`` (``mediapipe`` or ``fan``); ``device`` applies to ``fan``."""
    if backend == "mediapipe":
        return MediaPipeLandmarker(**mediapipe_options)  # type: ignore[arg-type]
    if backend == "fan":
        from reactcli.features.fan import FanLandmarker

        return FanLandmarker(fan_dir, detector=fan_detector, device=device)
    raise ConfigError(f"--landmarks-backend {backend!r}: expected one of {', '.join(BACKENDS)}")


@dataclass
class LandmarksConfig:
    """Options of the ``landmarks`` extractor."""

    backend: str = "mediapipe"
    """``mediapipe`` (offline, no files, 478 points) or ``fan`` (face-alignment, 68 points)."""
    fan_dir: str | None = None
    """Folder with face-alignment's weight files (``--fan-dir``), for ``backend="fan"``."""
    fan_detector: str = "sfd"
    """Face boxes for FAN: ``sfd`` (face-alignment's S3FD, its file in ``fan_dir``) or ``mediapipe``."""
    device: str = "cpu"
    """Torch device for FAN (``cpu``, ``cuda``, ``cuda:N``, ``auto``); MediaPipe runs on the CPU."""
    refine_landmarks: bool = True
    """MediaPipe: add the 10 iris points (478 in all) instead of 468."""
    static_image_mode: bool = False
    """MediaPipe: detect in every frame independently instead of tracking."""
    min_detection_confidence: float = 0.5
    """MediaPipe: face detector threshold."""
    min_tracking_confidence: float = 0.5
    """MediaPipe: tracking threshold below which the detector runs again."""
    fps: float = 25.0
    """Video frame rate (rows per second)."""
    max_pad_frames: int = 1
    """Missing final frames that may be filled by repeating the last one."""


@register_extractor("landmarks")
class LandmarksExtractor(Extractor):
    """Face landmarks (MediaPipe or FAN) + per-frame validity."""

    requires = ("video",)
    Config = LandmarksConfig
    cfg: LandmarksConfig

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        c = self.cfg
        self.landmarker = make_landmarker(
            c.backend, fan_dir=c.fan_dir, fan_detector=c.fan_detector, device=c.device,
            **({"refine_landmarks": c.refine_landmarks, "static_image_mode": c.static_image_mode,
                "min_detection_confidence": c.min_detection_confidence,
                "min_tracking_confidence": c.min_tracking_confidence} if c.backend == "mediapipe" else {}))

    @property
    def feature(self) -> str:
        return FEATURE[self.cfg.backend]

    @property
    def num_points(self) -> int:
        return self.landmarker.num_points

    @property
    def dims(self) -> dict[str, int]:
        return {self.feature: self.num_points * self.landmarker.point_dims, f"{self.feature}_valid": 1}

    def landmarks_from_frames(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, H, W, 3)`` uint8 RGB -> (``(N, P*D)`` float32, ``(N, 1)`` float32 validity)."""
        pts, valid = self.landmarker(frames)
        return pts.reshape(len(frames), -1).astype(np.float32), valid.astype(np.float32)[:, None]

    def extract(self, inputs: ClipInputs) -> dict[str, np.ndarray]:
        path = inputs.need("video")
        frames = read_video_frames(path, inputs.num_frames, max_pad_frames=self.cfg.max_pad_frames,
                                   what=f"{inputs.clip_id}: {path}")
        pts, valid = self.landmarks_from_frames(frames)
        return {self.feature: pts, f"{self.feature}_valid": valid}
