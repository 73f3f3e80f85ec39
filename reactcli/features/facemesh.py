"""MediaPipe Face Mesh as a landmarker: offline, the models ship inside the mediapipe wheel.

Kept apart from :mod:`reactcli.features.landmarks` because the FAN backend uses it too (its
``mediapipe`` face boxes) and the landmarks extractor builds the FAN backend: one module each way
would import the other.
"""

from __future__ import annotations

import numpy as np

from reactcli.errors import ConfigError


class MediaPipeLandmarker:
    """MediaPipe Face Mesh: 478 (or 468) points ``(x, y, z)`` per frame."""

    point_dims = 3

    def __init__(self, refine_landmarks: bool = True, static_image_mode: bool = False,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5) -> None:
        try:
            import mediapipe as mp

            self._mesh_cls = mp.solutions.face_mesh.FaceMesh
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"the mediapipe landmark backend needs mediapipe==0.10.21 with the solutions API ({exc})") from exc
        self.refine_landmarks = refine_landmarks
        self.static_image_mode = static_image_mode
        self.min_detection_confidence = min_detection_confidence
        self.min_tracking_confidence = min_tracking_confidence
        self.num_points = 478 if refine_landmarks else 468

    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(frames)
        pts = np.zeros((n, self.num_points, 3), np.float32)
        valid = np.zeros(n, bool)
        # a fresh graph per call (one clip): tracking state never leaks between clips
        with self._mesh_cls(static_image_mode=self.static_image_mode, max_num_faces=1,
                            refine_landmarks=self.refine_landmarks,
                            min_detection_confidence=self.min_detection_confidence,
                            min_tracking_confidence=self.min_tracking_confidence) as mesh:
            for i, f in enumerate(frames):
                res = mesh.process(np.ascontiguousarray(f))
                if res.multi_face_landmarks:
                    lm = res.multi_face_landmarks[0].landmark
                    pts[i] = np.array([(p.x, p.y, p.z) for p in lm], np.float32)
                    valid[i] = True
        return pts, valid
