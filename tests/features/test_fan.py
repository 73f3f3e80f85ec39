"""face-alignment's FAN as a landmark backend, on its real code path.

Its weights cannot be downloaded here, so the fixture builds the networks with random weights in
face-alignment's own architectures (``face_alignment.models.FAN``, S3FD) and saves their state
dicts under the names and in the layout face-alignment itself caches them
(``$TORCH_HOME/hub/checkpoints``). The landmarks are then compared with what face-alignment
computes on its own from that cache, with every download function made to fail.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from reactcli.errors import MissingAssetError
from reactcli.features import ClipInputs, get_extractor
from tests.media.synth import write_frames_video

face_alignment = pytest.importorskip("face_alignment")
pytest.importorskip("mediapipe")

FAN_FILE = "2DFAN4-11f355bf06.pth.tar"
SFD_FILE = "s3fd-619a316812.pth"


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TORCH_HOME whose hub cache holds random-weight FAN-4 and S3FD files."""
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    home = tmp_path_factory.mktemp("torch_home")
    ckpt = home / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(FAN(4).state_dict(), ckpt / FAN_FILE)
    # S3FD with random features, but its score heads set so that only the coarsest level (stride
    # 128, prior boxes of 512 px) finds a "face" and the box regression is zero: random heads
    # would return hundreds of boxes, and FAN runs once per box
    sfd = s3fd().state_dict()
    for k in sfd:
        if "_mbox_" in k:
            sfd[k] = torch.zeros_like(sfd[k])
        if "_mbox_conf.bias" in k:  # (background logits..., face logit)
            sfd[k] = torch.tensor([5.0] * (len(sfd[k]) - 1) + [-5.0])
    sfd["conv7_2_mbox_conf.bias"] = torch.tensor([-5.0, 5.0])
    torch.save(sfd, ckpt / SFD_FILE)
    return home


@pytest.fixture()
def no_downloads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"tried to download {args[:1]}")

    import face_alignment.utils as fa_utils
    import torch.hub

    # every way face-alignment fetches a file ends in one of these (load_state_dict_from_url and
    # load_file_from_url look in the hub cache first, then call them)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(fa_utils, "download_url_to_file", refuse)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))  # nothing cached there


@pytest.fixture(scope="module")
def face_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import skimage.data

    img = skimage.data.astronaut()[:400]  # 512 x 400, the face off-centre
    frames = np.stack([img, np.zeros_like(img)])
    return write_frames_video(tmp_path_factory.mktemp("fanvid") / "astronaut.mp4", frames)


def _face_alignment_itself(torch_home: Path, monkeypatch: pytest.MonkeyPatch, **kwargs: object):
    """face-alignment's own API, finding its weights in its own cache (TORCH_HOME)."""
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    fa = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, device="cpu", flip_input=False,
                                      compile=False, **kwargs)
    monkeypatch.setenv("TORCH_HOME", str(torch_home.parent / "empty_torch_home"))
    return fa


def test_fan_landmarks_equal_face_alignment_with_mediapipe_boxes(torch_home: Path, face_video: Path,
                                                                 no_downloads: None,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from reactcli.features.facemesh import MediaPipeLandmarker
    from reactcli.features.registry import read_video_frames

    ext = get_extractor("landmarks", backend="fan", fan_dir=str(torch_home / "hub" / "checkpoints"),
                        fan_detector="mediapipe")
    assert ext.dims == {"landmarks68": 136, "landmarks68_valid": 1}
    out = ext.extract(ClipInputs("astro", video=face_video, num_frames=2))
    pts, valid = out["landmarks68"].reshape(2, 68, 2), out["landmarks68_valid"][:, 0]
    np.testing.assert_array_equal(valid, [1, 0])
    assert np.all(pts[1] == 0)
    # the same frames through face-alignment's own pipeline, with the mesh's box as its detection
    frames = read_video_frames(face_video, 2)
    mesh, ok = MediaPipeLandmarker(refine_landmarks=False)(frames)
    assert ok.tolist() == [True, False]
    fa = _face_alignment_itself(torch_home, monkeypatch, face_detector="folder")
    for i in (0,):
        x, y = mesh[i, :, 0] * 512, mesh[i, :, 1] * 400
        box = np.array([x.min(), y.min(), x.max(), y.max()], np.float32)
        ref = fa.get_landmarks_from_image(frames[i], detected_faces=[box])[0]
        np.testing.assert_allclose(pts[i] * [512, 400], ref, atol=1e-3)
        # FAN looks only inside its crop around the box: centre raised by 12% of the box height,
        # side 200 * (w + h) / 195 (face-alignment's rule), so every point lies in that square
        w, h = box[2] - box[0], box[3] - box[1]
        cx, cy, half = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2 - 0.12 * h, 100 * (w + h) / 195
        assert np.all(np.abs(ref[:, 0] - cx) <= half + 4) and np.all(np.abs(ref[:, 1] - cy) <= half + 4)


@pytest.mark.slow  # S3FD + FAN twice on CPU: ~15 s
def test_fan_with_its_own_s3fd_detector(torch_home: Path, face_video: Path, no_downloads: None,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The default detector: S3FD from --fan-dir (here a TORCH_HOME: the hub/checkpoints below it)."""
    import skimage.data
    import skimage.transform

    from reactcli.features.fan import FanLandmarker

    frame = (skimage.transform.resize(skimage.data.astronaut(), (256, 256)) * 255).astype(np.uint8)
    ours = FanLandmarker(torch_home, detector="sfd")
    pts, valid = ours(frame[None])
    fa = _face_alignment_itself(torch_home, monkeypatch, face_detector="sfd")
    lms, _, boxes = fa.get_landmarks_from_image(frame, return_bboxes=True, return_landmark_score=True)
    # the crafted detector finds a few boxes (its coarsest priors); ours keeps the largest
    assert valid.tolist() == [True] and 1 <= len(lms) <= 9
    best = int(np.argmax([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]))
    np.testing.assert_allclose(pts[0] * 256, lms[best], atol=1e-3)


def test_missing_fan_files_are_one_named_line(torch_home: Path, tmp_path: Path, no_downloads: None) -> None:
    with pytest.raises(MissingAssetError, match=f"{FAN_FILE} \\+ {SFD_FILE}.*--fan-dir") as e:
        get_extractor("landmarks", backend="fan")
    assert "\n" not in str(e.value)
    only_fan = tmp_path / "fan_only"
    only_fan.mkdir()
    (only_fan / FAN_FILE).symlink_to(torch_home / "hub" / "checkpoints" / FAN_FILE)
    with pytest.raises(MissingAssetError, match=f"{SFD_FILE}.*looked at {only_fan}.*--fan-dir"):
        get_extractor("landmarks", backend="fan", fan_dir=str(only_fan))
    # the mediapipe boxes need no detector file
    assert get_extractor("landmarks", backend="fan", fan_dir=str(only_fan), fan_detector="mediapipe").num_points == 68
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / FAN_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(MissingAssetError, match=f"FAN weights.*{FAN_FILE}.*--fan-dir"):
        get_extractor("landmarks", backend="fan", fan_dir=str(junk), fan_detector="mediapipe")


def test_face_crop_from_fan_landmarks(torch_home: Path, face_video: Path, no_downloads: None, tmp_path: Path) -> None:
    class Means(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(2, 3)).repeat(1, 20)[:, :58]

    script = tmp_path / "means.pt"
    torch.jit.save(torch.jit.script(Means()), str(script))
    ext = get_extractor("faceverse", path=str(script), landmarks="fan", fan_dir=str(torch_home),
                        fan_detector="mediapipe")
    rec = ext.extract(ClipInputs("astro", video=face_video, num_frames=2))["faceverse_crop"]
    np.testing.assert_array_equal(rec[:, 4], [1, 0])
    np.testing.assert_array_equal(rec[1, :4], rec[0, :4])  # no face: the nearest frame's box
    x0, y0, x1, y1 = rec[0, :4] * [512, 400, 512, 400]
    assert x1 - x0 > 8 and (x1 - x0) == pytest.approx(y1 - y0, abs=1)
