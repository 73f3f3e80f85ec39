from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from reactcli.errors import MissingAssetError
from reactcli.features import ClipInputs, get_extractor


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    cfg = Wav2Vec2Config(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                         conv_dim=(8,) * 7, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
                         do_stable_layer_norm=False, feat_extract_norm="group")
    torch.manual_seed(0)
    d = tmp_path_factory.mktemp("w2v")
    Wav2Vec2Model(cfg).save_pretrained(d)
    return d


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(MissingAssetError, match="wav2vec2 checkpoint.*--wav2vec2-path"):
        get_extractor("wav2vec2")
    with pytest.raises(MissingAssetError, match="--wav2vec2-path"):
        get_extractor("wav2vec2", path=str(tmp_path / "nope"))


def test_tiny_checkpoint_shapes_and_token_layout(tiny_ckpt: Path, tmp_path: Path) -> None:
    from transformers import Wav2Vec2Model

    rng = np.random.default_rng(0)
    sr = 44100  # resampled to 16 kHz inside
    x = (0.1 * rng.standard_normal(int(1.2 * sr))).astype(np.float32)
    sf.write(tmp_path / "a.wav", x, sr, subtype="FLOAT")
    ext = get_extractor("wav2vec2", path=str(tiny_ckpt))
    assert ext.dims == {"wav2vec2": 32}
    out = ext.extract(ClipInputs("c", audio=tmp_path / "a.wav", num_frames=30))["wav2vec2"]
    assert out.shape == (30, 32) and out.dtype == np.float32 and np.isfinite(out).all()
    # independent path: resample, normalise, run the model, interpolate 59 tokens -> 60
    from scipy.signal import resample_poly

    y = resample_poly(x.astype(np.float64), 160, 441).astype(np.float32)[:19200]
    y = (y - y.mean()) / np.sqrt(y.var() + 1e-7)
    m = Wav2Vec2Model.from_pretrained(tiny_ckpt).eval()
    with torch.no_grad():
        h = m(torch.from_numpy(y)[None]).last_hidden_state[0].numpy()
    assert h.shape[0] == 59  # one short of 2 per frame: why we interpolate
    pos = np.linspace(0, 58, 60)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, 58)
    w = (pos - lo)[:, None]
    ref = (1 - w) * h[lo] + w * h[hi]
    np.testing.assert_allclose(out[:, :16], ref[0::2], atol=1e-4)  # token 2i first
    np.testing.assert_allclose(out[:, 16:], ref[1::2], atol=1e-4)
    # deterministic
    np.testing.assert_array_equal(out, ext.extract(ClipInputs("c", audio=tmp_path / "a.wav", num_frames=30))["wav2vec2"])
