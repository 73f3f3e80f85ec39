from pathlib import Path

import numpy as np
import pytest

from reactcli.features import ClipInputs, get_extractor
from tests.media.synth import write_frames_video

pytest.importorskip("mediapipe")


def test_landmarks_on_real_face_video(tmp_path: Path) -> None:
    import skimage.data

    img = skimage.data.astronaut()[20:276, 110:366]  # 256x256 crop around the face
    frames = np.stack([img] * 5 + [np.zeros_like(img)] * 3)
    video = write_frames_video(tmp_path / "astronaut.mp4", frames)
    ext = get_extractor("landmarks", static_image_mode=True)
    out = ext.extract(ClipInputs("astro", video=video, num_frames=8))
    pts, valid = out["landmarks"], out["landmarks_valid"]
    assert pts.shape == (8, 478 * 3) and valid.shape == (8, 1)
    np.testing.assert_array_equal(valid[:, 0], [1, 1, 1, 1, 1, 0, 0, 0])
    assert np.all(pts[5:] == 0)
    p = pts[0].reshape(478, 3)
    # geometry of a face seen from the front: image-left eye corner (33) left of the other
    # (263), nose tip (1) between them and below; mouth (13) below the nose; all inside the frame
    assert p[33, 0] < p[1, 0] < p[263, 0]
    assert p[1, 1] > max(p[33, 1], p[263, 1]) and p[13, 1] > p[1, 1]
    assert np.all((p[:, :2] > 0) & (p[:, :2] < 1))
    # the face occupies the crop region where the astronaut's face is (known from the photo:
    # roughly x 180..270, y 70..180 in the 512 px image -> crop coordinates / 256)
    assert 0.15 < p[:, 0].min() and p[:, 0].max() < 0.75
    assert 0.1 < p[:, 1].min() and p[:, 1].max() < 0.8
    # identical frames -> (nearly) identical landmarks; deterministic across runs
    np.testing.assert_allclose(pts[1], pts[0], atol=5e-3)
    again = ext.extract(ClipInputs("astro", video=video, num_frames=8))["landmarks"]
    np.testing.assert_array_equal(again, pts)
