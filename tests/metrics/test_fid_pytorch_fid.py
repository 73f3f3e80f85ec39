"""FRRea as the challenge computes it: reactcli's FID against pytorch-fid's own numbers.

``tests/fixtures/make_fid_fixture.py`` ran pytorch-fid 0.3.0 (its network, its PNG loading, its
``calculate_fid_given_paths``) on the rule frames of ``fid_rule.py`` with the rule weights in its
own layout, and saved the results under ``tests/fixtures/fid/``. Here the same weights and frames
go through reactcli (torch-fidelity's InceptionV3, reactcli's pre-processing and distance).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from reactcli.errors import ConfigError, InputError, MissingAssetError
from reactcli.metrics import fid as fidmod
from tests.fixtures.fid_rule import inception_state_dict, rule_frames

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "fid"


def _layout() -> dict[str, tuple[int, ...]]:
    return {k: tuple(v) for k, v in json.loads((FIX / "inception_shapes.json").read_text())["shapes"].items()}


@pytest.fixture(scope="module")
def inception(tmp_path_factory):
    try:
        fidmod._inception_class()
    except ConfigError as exc:
        pytest.skip(str(exc))
    path = tmp_path_factory.mktemp("inception") / "pt_inception-rule.pth"
    torch.save({k: torch.from_numpy(v) for k, v in inception_state_dict(_layout()).items()}, path)
    return path


def test_pytorch_fid_weights_file_layout_loads(inception) -> None:
    """pytorch-fid's 566 tensors are torch-fidelity's, key for key and shape for shape."""
    own = {k: tuple(v.shape) for k, v in fidmod._bare_inception("meta").state_dict().items()}
    assert own == _layout() and len(own) == 566
    model = fidmod.load_inception(inception)
    w = inception_state_dict({"Mixed_7c.branch_pool.conv.weight": _layout()["Mixed_7c.branch_pool.conv.weight"]})
    assert torch.equal(model.Mixed_7c.branch_pool.conv.weight, torch.from_numpy(w["Mixed_7c.branch_pool.conv.weight"]))


def test_pool_features_match_pytorch_fid(inception) -> None:
    """First real and first fake frame: pytorch-fid's pre-processing reproduces its features."""
    model = fidmod.load_inception(inception)
    acts = np.load(FIX / "activations.npz")
    frames = np.concatenate([rule_frames(1, 224, "real"), rule_frames(1, 224, "fake")])
    want = np.stack([acts["real"][0], acts["fake"][0]])
    got = fidmod.inception_features(model, frames)
    assert np.abs(got - want).max() < 1e-4, np.abs(got - want).max()
    assert np.abs(want).mean() > 0.05  # the rule weights give non-trivial features
    # the TensorFlow-FID pre-processing (TF1 bilinear resize, (x - 128) / 128) is measurably different
    tf = fidmod.inception_features(model, frames[:1], preprocess="tensorflow")
    assert np.abs(tf - want[:1]).max() > 1e-3


@pytest.mark.slow
def test_fid_value_matches_pytorch_fid(inception, tmp_path) -> None:
    """48 + 48 PNG frames from folders: reactcli's FID vs pytorch-fid's (about 2 min on 2 cores)."""
    from PIL import Image

    ref = json.loads((FIX / "pytorch_fid.json").read_text())
    for kind in ("real", "fake"):
        (tmp_path / kind).mkdir()
        for i, img in enumerate(rule_frames(ref[f"n_{kind}"], ref["size"], kind)):
            Image.fromarray(img).save(tmp_path / kind / f"{i:04d}.png")
    ours = fidmod.fid_from_frames(tmp_path / "real", tmp_path / "fake", inception)
    assert (ours["n_real"], ours["n_fake"], ours["preprocess"]) == (48, 48, "pytorch-fid")
    # pytorch-fid's sqrtm of the singular 2048 x 2048 product is biased by ~1.5e-5 (see the
    # same-set test in test_cli_report_fid.py); reactcli's value is exact
    assert abs(ours["fid"] - ref["fid"]) < 5e-5, (ours["fid"], ref["fid"])
    tf = fidmod.fid_from_frames(tmp_path / "real", tmp_path / "fake", inception, preprocess="tensorflow")
    assert abs(tf["fid"] - ref["fid"]) / ref["fid"] > 0.01, (tf["fid"], ref["fid"])


def test_cartoon_against_video_export_is_refused(tmp_path) -> None:
    for kind in ("real", "fake"):
        (tmp_path / "fid" / kind).mkdir(parents=True)
    meta = {"renderer": "face2d", "photoreal": False, "real_from_video": 2, "run": "r1"}
    (tmp_path / "fid" / "frames.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="face2d renderer against real video"):
        fidmod.fid_from_frames(tmp_path / "fid" / "real", tmp_path / "fid" / "fake", None)
    # drawn on both sides it is a (motion-only) comparison, and the weights are asked for
    (tmp_path / "fid" / "frames.json").write_text(json.dumps({**meta, "real_from_video": 0}))
    with pytest.raises(MissingAssetError, match="--inception-weights"):
        fidmod.fid_from_frames(tmp_path / "fid" / "real", tmp_path / "fid" / "fake", None)
    with pytest.raises(ConfigError, match="pre-processing"):
        fidmod.fid_from_frames(tmp_path / "fid" / "real", tmp_path / "fid" / "fake", None, preprocess="bicubic")


def test_weights_file_errors(tmp_path) -> None:
    try:
        fidmod._inception_class()
    except ConfigError as exc:
        pytest.skip(str(exc))
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(InputError, match="not an InceptionV3 weights file"):
        fidmod.load_inception(tmp_path / "junk.pth")
    torch.save({"fc.weight": torch.zeros(2)}, tmp_path / "partial.pth")
    with pytest.raises(InputError, match="565 tensors missing, 0 unexpected"):
        fidmod.load_inception(tmp_path / "partial.pth")
