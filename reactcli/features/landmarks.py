"""Face landmarks that run offline: MediaPipe Face Mesh (the model ships inside the wheel).

Output per frame (``landmarks``): 478 points (468 mesh + 10 iris points; 468 with
``refine_landmarks=False``) as ``[x0, y0, z0, x1, ...]``, with x, y normalised to the frame
(0..1 from the left / top edge) and z MediaPipe's relative depth (same scale as x, smaller =
closer to the camera, origin near the head centre). Frames where no face is found get a row of
zeros and ``landmarks_valid = 0`` (a separate ``(N, 1)`` array, 1 where a face was found)
instead of NaN rows, so the arrays stay finite and a consumer masks with the validity column.

``static_image_mode=False`` (default) tracks the face across frames (faster, steadier, still
deterministic for a given clip); ``True`` detects in every frame independently.
Requires mediapipe 0.10.21 (later wheels dropped the legacy ``solutions`` API and its models).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reactcli.errors import ConfigError
from reactcli.features.registry import ClipInputs, Extractor, read_video_frames, register_extractor


@dataclass
class LandmarksConfig:
    """Options of the ``landmarks`` extractor."""

    refine_landmarks: bool = True
    """Add the 10 iris points (478 in all) instead of 468."""
    static_image_mode: bool = False
    """Detect in every frame independently instead of tracking."""
    min_detection_confidence: float = 0.5
    """Face detector threshold."""
    min_tracking_confidence: float = 0.5
    """Tracking threshold below which the detector runs again."""
    fps: float = 25.0
    """Video frame rate (rows per second)."""
    max_pad_frames: int = 1
    """Missing final frames that may be filled by repeating the last one."""


@register_extractor("landmarks")
class LandmarksExtractor(Extractor):
    """MediaPipe Face Mesh landmarks + per-frame validity."""

    requires = ("video",)
    Config = LandmarksConfig
    cfg: LandmarksConfig

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        try:
            import mediapipe as mp

            self._mesh_cls = mp.solutions.face_mesh.FaceMesh
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"landmarks: needs mediapipe==0.10.21 with the solutions API ({exc})") from exc

    @property
    def num_points(self) -> int:
        return 478 if self.cfg.refine_landmarks else 468

    @property
    def dims(self) -> dict[str, int]:
        return {"landmarks": self.num_points * 3, "landmarks_valid": 1}

    def landmarks_from_frames(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, H, W, 3)`` uint8 RGB -> (``(N, P*3)`` float32, ``(N, 1)`` float32 validity)."""
        c = self.cfg
        n = len(frames)
        pts = np.zeros((n, self.num_points * 3), np.float32)
        valid = np.zeros((n, 1), np.float32)
        # a fresh graph per clip: tracking state never leaks between clips
        with self._mesh_cls(static_image_mode=c.static_image_mode, max_num_faces=1,
                            refine_landmarks=c.refine_landmarks,
                            min_detection_confidence=c.min_detection_confidence,
                            min_tracking_confidence=c.min_tracking_confidence) as mesh:
            for i, f in enumerate(frames):
                res = mesh.process(np.ascontiguousarray(f))
                if res.multi_face_landmarks:
                    lm = res.multi_face_landmarks[0].landmark
                    pts[i] = np.array([(p.x, p.y, p.z) for p in lm], np.float32).reshape(-1)
                    valid[i] = 1.0
        return pts, valid

    def extract(self, inputs: ClipInputs) -> dict[str, np.ndarray]:
        path = inputs.need("video")
        frames = read_video_frames(path, inputs.num_frames, max_pad_frames=self.cfg.max_pad_frames,
                                   what=f"{inputs.clip_id}: {path}")
        pts, valid = self.landmarks_from_frames(frames)
        return {"landmarks": pts, "landmarks_valid": valid}
