"""The documented adapter wrappers in examples/adapters/, reached the way the README says
(``--<model>-factory examples/adapters/<model>.py:build``).

EMOCA, OpenGraphAU, EmoNet and FaceVerse are not installable here, so their packages are stood in
by small modules with the same import paths and call signatures (what each example relies on:
``gdl_apps.EMOCA.utils.load.load_model``, ``model.ANFL.MEFARG``, ``emonet.models.EmoNet``,
``model.FaceVerseModel.FaceVerseModel`` and ``model.losses``). The examples' own code (loading,
preprocessing, packing into reactcli's layout, FaceVerse's fitting loop) runs for real.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from reactcli.errors import MissingAssetError
from reactcli.features import ClipInputs, get_extractor
from reactcli.features.registry import read_video_frames
from tests.media.synth import write_frames_video

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "adapters"
N = 6


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (N, 32, 32, 3), dtype=np.uint8).repeat(2, axis=1).repeat(2, axis=2)
    return write_frames_video(tmp_path_factory.mktemp("ex") / "v.mp4", frames)


def _module(monkeypatch: pytest.MonkeyPatch, name: str, **attrs: object) -> types.ModuleType:
    mod = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(mod, k, v)
    monkeypatch.setitem(sys.modules, name, mod)
    return mod


@pytest.mark.parametrize("name,files,missing", [
    ("emoca", [], "gdl_apps"),
    ("graphau", ["OpenGprahAU-ResNet50_first_stage.pth", "emonet_8.pth"], "emonet"),
    ("faceverse", ["faceverse_simple_v2.npy"], "model"),
])
def test_examples_without_the_real_code_say_what_is_missing(name: str, files: list[str], missing: str,
                                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for m in ("model", "emonet", "gdl_apps"):
        monkeypatch.delitem(sys.modules, m, raising=False)
    for f in files:
        (tmp_path / f).write_bytes(b"")
    with pytest.raises(MissingAssetError, match=f"--{name}-path") as e:
        get_extractor(name, factory=f"{EXAMPLES / name}.py:build", path=str(tmp_path), crop="center")
    assert f"No module named '{missing}" in str(e.value) and "\n" not in str(e.value)
    if files:  # the weight files are checked first, by name
        (tmp_path / files[0]).unlink()
        with pytest.raises(MissingAssetError, match=files[0]):
            get_extractor(name, factory=f"{EXAMPLES / name}.py:build", path=str(tmp_path), crop="center")


# ------------------------------------------------------------------ EMOCA


class FakeEmoca(torch.nn.Module):
    """EMOCA's encode interface: {"image": (N,3,224,224)} -> codes incl. expcode (50), posecode (6)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(3, 56)

    def encode(self, batch: dict, training: bool = True) -> dict:
        assert not training and batch["image"].shape[1:] == (3, 224, 224)
        z = self.proj(batch["image"].mean(dim=(2, 3)))
        return {"expcode": z[:, :50], "posecode": z[:, 50:], "shapecode": torch.zeros(len(z), 100)}


def test_emoca_example(video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    fake = FakeEmoca()

    def load_model(path_to_models: str, run_name: str, stage: str):
        calls.append((path_to_models, run_name, stage))
        return fake, {}

    for pkg in ("gdl_apps", "gdl_apps.EMOCA", "gdl_apps.EMOCA.utils"):
        _module(monkeypatch, pkg)
    _module(monkeypatch, "gdl_apps.EMOCA.utils.load", load_model=load_model)
    model_dir = tmp_path / "assets" / "EMOCA" / "models" / "EMOCA_v2_lr_mse_20"
    model_dir.mkdir(parents=True)
    ext = get_extractor("emoca", factory=f"{EXAMPLES}/emoca.py:build", path=str(model_dir), crop="center")
    assert calls == [(str(model_dir.parent), "EMOCA_v2_lr_mse_20", "detail")]
    out = ext.extract(ClipInputs("c", video=video, num_frames=N))["emoca"]
    crops, _ = ext.crops(read_video_frames(video, N))
    with torch.no_grad():
        codes = fake.encode({"image": torch.from_numpy(crops)}, training=False)
    np.testing.assert_allclose(out[:, :50], codes["expcode"].numpy(), atol=1e-5)
    np.testing.assert_allclose(out[:, 50:], codes["posecode"].numpy(), atol=1e-5)


# ------------------------------------------------------------------ GraphAU + EmoNet


class FakeMEFARG(torch.nn.Module):
    def __init__(self, num_main_classes: int, num_sub_classes: int, backbone: str, neighbor_num: int, metric: str):
        super().__init__()
        assert (num_main_classes, num_sub_classes) == (27, 14)
        self.head = torch.nn.Linear(3, 41)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x)
        return torch.sigmoid(self.head(x.mean(dim=(2, 3))))


class FakeEmoNet(torch.nn.Module):
    def __init__(self, n_expression: int):
        super().__init__()
        self.head = torch.nn.Linear(3, n_expression + 2)
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> dict:
        self.seen.append(x)
        z = self.head(x.mean(dim=(2, 3)))
        return {"expression": z[:, 2:], "valence": 3 * torch.tanh(z[:, 0]), "arousal": z[:, 1], "heatmap": None}


def test_graphau_example(video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: dict[str, torch.nn.Module] = {}

    def mefarg(**kw):
        built["au"] = FakeMEFARG(**kw)
        return built["au"]

    def emonet(**kw):
        built["emo"] = FakeEmoNet(**kw)
        return built["emo"]

    _module(monkeypatch, "model")
    _module(monkeypatch, "model.ANFL", MEFARG=mefarg)
    _module(monkeypatch, "emonet")
    _module(monkeypatch, "emonet.models", EmoNet=emonet)
    torch.manual_seed(0)
    au_ref, emo_ref = FakeMEFARG(27, 14, "resnet50", 4, "dots"), FakeEmoNet(8)
    # the authors' files: OpenGraphAU wraps its DataParallel state dict in "state_dict"; EmoNet's is bare
    torch.save({"state_dict": {f"module.{k}": v for k, v in au_ref.state_dict().items()}},
               tmp_path / "OpenGprahAU-ResNet50_first_stage.pth")
    torch.save(emo_ref.state_dict(), tmp_path / "emonet_8.pth")
    ext = get_extractor("graphau", factory=f"{EXAMPLES}/graphau.py:build", path=str(tmp_path), crop="center",
                        binarize_aus=False)
    out = ext.extract(ClipInputs("c", video=video, num_frames=N))["emotion"]
    assert out.shape == (N, 25)
    au_in, emo_in = torch.cat(built["au"].seen), torch.cat(built["emo"].seen)
    assert au_in.shape[-1] == 224 and emo_in.shape[-1] == 256
    # OpenGraphAU sees ImageNet-normalised crops, EmoNet plain [0, 1] crops
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    np.testing.assert_allclose((au_in.mean(dim=(2, 3)) * std + mean).numpy(), emo_in.mean(dim=(2, 3)).numpy(),
                               atol=2e-3)
    with torch.no_grad():
        aus = au_ref(au_in)[:, [0, 1, 2, 4, 5, 6, 7, 9, 11, 12, 14, 19, 20, 21, 22]]
        emo = emo_ref(emo_in)
    np.testing.assert_allclose(out[:, :15], aus.numpy(), atol=1e-5)
    np.testing.assert_allclose(out[:, 15], emo["valence"].clamp(-1, 1).numpy(), atol=1e-5)
    np.testing.assert_allclose(out[:, 16], emo["arousal"].clamp(-1, 1).numpy(), atol=1e-5)
    np.testing.assert_allclose(out[:, 17:], torch.softmax(emo["expression"], 1).numpy(), atol=1e-5)
    assert np.allclose(out[:, 17:].sum(1), 1, atol=1e-5)


# ------------------------------------------------------------------ FaceVerse v2 fitting


class FakeFaceVerseModel(torch.nn.Module):
    """FaceVerseModel's fitting interface: coefficient tensors + landmark projection (linear here)."""

    def __init__(self, model_dict: dict, batch_size: int, focal: float, img_size: int, device: str):
        super().__init__()
        self.img_size, self.device = img_size, torch.device(device)
        g = torch.Generator().manual_seed(1)
        self.basis = torch.randn(4 + 52 + 6, 132, generator=g) * 3
        self.id_tensor = torch.zeros(1, 4, requires_grad=True)
        self.exp_tensor = torch.zeros(1, 52, requires_grad=True)
        self.rot_tensor = torch.zeros(1, 3, requires_grad=True)
        self.trans_tensor = torch.zeros(1, 3, requires_grad=True)

    def get_id_tensor(self): return self.id_tensor  # noqa: E704
    def get_exp_tensor(self): return self.exp_tensor  # noqa: E704
    def get_rot_tensor(self): return self.rot_tensor  # noqa: E704
    def get_trans_tensor(self): return self.trans_tensor  # noqa: E704

    def get_packed_tensors(self) -> torch.Tensor:
        return torch.cat([self.id_tensor, self.exp_tensor, self.rot_tensor, self.trans_tensor], 1)

    def forward(self, coeffs: torch.Tensor, render: bool = True) -> dict:
        assert not render
        return {"lms_proj": (112 + coeffs @ self.basis).view(-1, 66, 2)}


def _fake_losses() -> types.ModuleType:
    def lm_loss(pred, gt, weight, img_size=224):
        return (((pred - gt) / img_size) ** 2).sum(2).mul(weight).sum(1).mean()

    return types.SimpleNamespace(lm_loss=lm_loss, get_l2=lambda t: (t ** 2).sum(),
                                 get_lm_weights=lambda device: torch.full((66,), 1 / 66))


def test_faceverse_example_fits_the_landmarks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("fv_example", EXAMPLES / "faceverse.py")
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    fv = FakeFaceVerseModel({}, 1, 1315, 224, "cpu")
    # targets from known coefficients (expression >= 0, as v2's blendshape weights are)
    true = torch.cat([torch.zeros(1, 4), torch.rand(1, 52) * 0.3, torch.randn(1, 6) * 0.3], 1)
    with torch.no_grad():
        lms66 = fv(true, render=False)["lms_proj"][0].numpy()
    lms68 = np.insert(lms66, [60, 63], 0.0, axis=0)  # the inner mouth corners: not used
    assert np.array_equal(lms68[list(ex.KEEP_68_TO_66)], lms66)
    pts = np.stack([lms68 / 224, lms68 / 224, np.zeros_like(lms68)])
    landmarker = lambda frames: (pts[:len(frames)], np.array([True, True, False])[:len(frames)])  # noqa: E731
    fitter = ex.FaceVerseLandmarkFitter(fv, _fake_losses(), landmarker, first_iters=400, next_iters=50)
    with torch.inference_mode():  # how reactcli calls it
        out = fitter(torch.rand(3, 3, 224, 224))
    assert out.shape == (3, 58) and fitter.fitted_once
    assert (out[:, :52] >= 0).all()
    with torch.no_grad():
        fitted = fv(torch.cat([fv.id_tensor, out[1:2]], 1), render=False)["lms_proj"][0].numpy()
    err0 = np.abs(lms66 - 112).mean()
    assert np.abs(fitted - lms66).mean() < 0.05 * err0  # the landmark fit converged
    np.testing.assert_array_equal(out[2], out[1])  # no face: the last fit is repeated
