"""EMOCA / FaceVerse / GraphAU adapters with tiny TorchScript stand-ins honouring the interface
``(N, 3, S, S)`` RGB in [0, 1] -> ``(N, D)``."""

from pathlib import Path

import numpy as np
import pytest
import torch

from reactcli.errors import ConfigError, InputError, MissingAssetError
from reactcli.features import ClipInputs, get_extractor
from tests.media.synth import write_frames_video

N = 12


class ChannelMeans(torch.nn.Module):
    """Stand-in model: mean of each colour channel times a fixed (3, D) matrix."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("w", w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3)) @ self.w


def _colours() -> np.ndarray:
    i = np.arange(N)
    return np.stack([(i * 20) % 256, 255 - i * 15, np.full(N, 128)], axis=1).astype(np.uint8)


@pytest.fixture(scope="module")
def colour_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # uniform frames: any crop/resize keeps the channel means, so the expected output is exact
    frames = np.broadcast_to(_colours()[:, None, None, :], (N, 64, 64, 3))
    return write_frames_video(tmp_path_factory.mktemp("v") / "colours.mp4", frames)


def _script(tmp: Path, d: int, seed: int = 0) -> tuple[Path, np.ndarray]:
    w = torch.from_numpy(np.random.default_rng(seed).uniform(-1, 1, (3, d)).astype(np.float32))
    p = tmp / f"model{d}.pt"
    torch.jit.save(torch.jit.script(ChannelMeans(w)), str(p))
    return p, w.numpy()


@pytest.mark.parametrize("name,dim,feature,option", [
    ("emoca", 56, "emoca", "--emoca-path"),
    ("faceverse", 58, "tdmm", "--faceverse-path"),
])
def test_adapter_with_torchscript_standin(name: str, dim: int, feature: str, option: str,
                                          colour_video: Path, tmp_path: Path) -> None:
    p, w = _script(tmp_path, dim)
    ext = get_extractor(name, path=str(p), batch_size=5)
    assert ext.dims == {feature: dim, f"{name}_crop": 5} and ext.requires == ("video",)
    res = ext.extract(ClipInputs("c", video=colour_video, num_frames=N))
    out = res[feature]
    expected = (_colours() / 255.0) @ w
    assert out.shape == (N, dim) and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=0.03)  # yuv420 coding error
    # no face in uniform frames: the crop falls back to the whole (square) frame, recorded per frame
    np.testing.assert_array_equal(res[f"{name}_crop"], np.tile([0, 0, 1, 1, 0], (N, 1)).astype(np.float32))
    # pad the boundary frame, not more
    out13 = ext.extract(ClipInputs("c", video=colour_video, num_frames=N + 1))[feature]
    np.testing.assert_array_equal(out13[-1], out13[-2])
    with pytest.raises(InputError, match="colours.mp4"):
        ext.extract(ClipInputs("c", video=colour_video, num_frames=N + 3))
    with pytest.raises(MissingAssetError, match=option):
        get_extractor(name)
    with pytest.raises(MissingAssetError, match=f"{option}"):
        get_extractor(name, path=str(tmp_path / "missing.pt"))


def test_wrong_output_width_and_bad_file(colour_video: Path, tmp_path: Path) -> None:
    p, _ = _script(tmp_path, 50)
    with pytest.raises(ConfigError, match=r"returned \(12, 50\).*expected \(12, 56\)"):
        get_extractor("emoca", path=str(p)).extract(ClipInputs("c", video=colour_video, num_frames=N))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    with pytest.raises(MissingAssetError, match="--emoca-path"):
        get_extractor("emoca", path=str(junk))


def test_graphau_binarises_aus(colour_video: Path, tmp_path: Path) -> None:
    p, w = _script(tmp_path, 25, seed=3)
    expected = (_colours() / 255.0) @ w
    out = get_extractor("graphau", path=str(p)).extract(ClipInputs("c", video=colour_video, num_frames=N))["emotion"]
    clear = np.abs(expected[:, :15] - 0.5) > 0.05  # away from the threshold
    np.testing.assert_array_equal(out[:, :15][clear], (expected[:, :15] >= 0.5)[clear].astype(np.float32))
    np.testing.assert_allclose(out[:, 15:], expected[:, 15:], atol=0.03)
    raw = get_extractor("graphau", path=str(p), binarize_aus=False).extract(
        ClipInputs("c", video=colour_video, num_frames=N))["emotion"]
    np.testing.assert_allclose(raw, expected, atol=0.03)


def test_factory_interface(colour_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    w = np.eye(3, 58, dtype=np.float32)
    mod = types.ModuleType("fake_faceverse_install")
    mod.build = lambda path: ChannelMeans(torch.from_numpy(w))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_faceverse_install", mod)
    ext = get_extractor("faceverse", factory="fake_faceverse_install:build")
    out = ext.extract(ClipInputs("c", video=colour_video, num_frames=N))["tdmm"]
    np.testing.assert_allclose(out[:, :3], _colours() / 255.0, atol=0.03)
    with pytest.raises(MissingAssetError, match="--faceverse-factory"):
        get_extractor("faceverse", factory="no_such_module_xyz:build")


FACTORY_FILE = """
import torch


class ChannelMeans(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.register_buffer("w", w)

    def forward(self, x):
        return x.mean(dim=(2, 3)) @ self.w


def build(path):
    import numpy as np

    return ChannelMeans(torch.from_numpy(np.load(path)))


def broken(path):
    import gdl_apps_not_installed  # noqa: F401  (the user's EMOCA install is missing)
"""


def test_factory_from_a_file_path(colour_video: Path, tmp_path: Path) -> None:
    """``file.py:function``: the form the README and examples/adapters use (no install needed)."""
    (tmp_path / "my wrappers").mkdir()
    factory = tmp_path / "my wrappers" / "emoca_wrapper.py"
    factory.write_text(FACTORY_FILE)
    w = np.random.default_rng(1).uniform(-1, 1, (3, 56)).astype(np.float32)
    np.save(tmp_path / "weights.npy", w)
    ext = get_extractor("emoca", factory=f"{factory}:build", path=str(tmp_path / "weights.npy"))
    out = ext.extract(ClipInputs("c", video=colour_video, num_frames=N))["emoca"]
    np.testing.assert_allclose(out, (_colours() / 255.0) @ w, atol=0.03)
    # every failure is one line naming the option to fix
    for spec, option, what in [(f"{factory}:nope", "--emoca-factory", "AttributeError"),
                               (f"{tmp_path / 'missing.py'}:build", "--emoca-factory", "missing.py"),
                               (f"{factory}:broken", "--emoca-path", "gdl_apps_not_installed"),
                               ("no colon", "--emoca-factory", "expected package.module:function")]:
        with pytest.raises((MissingAssetError, ConfigError), match=option) as e:
            get_extractor("emoca", factory=spec, path=str(tmp_path / "weights.npy"))
        assert what in str(e.value) and "\n" not in str(e.value)


# ---------------------------------------------------------------- face crops on a real face


class PooledCrop(torch.nn.Module):
    """Stand-in that shows what it was fed: the crop averaged over a 4x4 grid (48 values) + 0s."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)
        return torch.cat([pooled, torch.zeros(x.shape[0], 8)], dim=1)


@pytest.fixture(scope="module")
def astronaut_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 512x400 frame with a real face (not a square, not centred), then frames with no face."""
    import skimage.data

    img = skimage.data.astronaut()[:400]
    frames = np.stack([img] * 3 + [np.zeros_like(img)] * 2)
    return write_frames_video(tmp_path_factory.mktemp("astro") / "astronaut.mp4", frames)


def test_adapters_see_the_face_crop_recorded_per_frame(astronaut_video: Path, tmp_path: Path) -> None:
    pytest.importorskip("mediapipe")
    from reactcli.features.registry import read_video_frames

    script = tmp_path / "pooled.pt"
    torch.jit.save(torch.jit.script(PooledCrop()), str(script))
    ext = get_extractor("emoca", path=str(script))  # crop="face", MediaPipe landmarks: the defaults
    res = ext.extract(ClipInputs("astro", video=astronaut_video, num_frames=5))
    rec = res["emoca_crop"]
    assert rec.shape == (5, 5)
    np.testing.assert_array_equal(rec[:, 4], [1, 1, 1, 0, 0])  # face found in the first 3 frames
    box = rec[0, :4] * [512, 400, 512, 400]
    # the astronaut's face lies at about x 178..273, y 70..176 (pixels of the photograph)
    cx, cy, side = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0]
    assert 200 < cx < 250 and 100 < cy < 150 and 110 < side < 180
    assert box[3] - box[1] == pytest.approx(side)  # square in pixels
    np.testing.assert_allclose(rec[1:3, :4], rec[:1, :4].repeat(2, 0), atol=3 / 400)  # steady
    np.testing.assert_array_equal(rec[3:, :4], rec[2:3, :4].repeat(2, 0))  # no face: nearest box
    # what the model saw is that box of the frame (checked here by block averages of the box)
    frames = read_video_frames(astronaut_video, 5)
    for i in (0, 4):
        x0, y0, x1, y1 = np.round(rec[i, :4] * [512, 400, 512, 400]).astype(int)
        patch = frames[i, y0:y1, x0:x1].astype(np.float64) / 255.0
        k = (x1 - x0) // 4
        blocks = patch[:4 * k, :4 * k].reshape(4, k, 4, k, 3).mean(axis=(1, 3)).transpose(2, 0, 1).reshape(-1)
        np.testing.assert_allclose(res["emoca"][i, :48], blocks, atol=0.03)
    # the previous centre crop of the whole frame is still there, and is not the face
    centre = get_extractor("emoca", path=str(script), crop="center").extract(
        ClipInputs("astro", video=astronaut_video, num_frames=5))
    np.testing.assert_allclose(centre["emoca_crop"][0], [16 / 256, 16 / 256, 240 / 256, 240 / 256, 0])
    assert np.abs(centre["emoca"][0] - res["emoca"][0]).max() > 0.1


def test_face_boxes_rules() -> None:
    from reactcli.features.facecrop import boxes_from_landmarks, crop_faces

    pts = np.zeros((4, 3, 2), np.float32)
    pts[1] = [[0.1, 0.2], [0.3, 0.2], [0.2, 0.4]]  # box 20 x 20 px in a 100 x 100 frame
    pts[3] = [[0.9, 0.9], [1.0, 0.95], [0.95, 1.0]]  # at the corner: the crop leaves the frame
    b = boxes_from_landmarks(pts, np.array([False, True, False, True]), 100, 100, scale=1.0)
    side = round(1.1 * 20)
    assert b.boxes[1].tolist() == [20 - side // 2, 30 - side // 2, 20 - side // 2 + side, 30 - side // 2 + side]
    # frame 0 and frame 2 (a tie) take the earlier found frame's box
    assert b.boxes[0].tolist() == b.boxes[1].tolist() == b.boxes[2].tolist()
    frames = np.full((4, 100, 100, 3), 200, np.uint8)
    crops = crop_faces(frames, b, 16)
    assert crops.shape == (4, 3, 16, 16) and np.allclose(crops[1], 200 / 255)
    assert crops[3, :, -1, -1].max() == 0 and crops[3, :, 0, 0].min() > 0.7  # black outside the frame
    none = boxes_from_landmarks(pts, np.zeros(4, bool), 120, 80)
    assert none.boxes.tolist() == [[20, 0, 100, 80]] * 4 and not none.found.any()
