from pathlib import Path

import numpy as np
import pytest

from reactcli.errors import ConfigError, InputError
from reactcli.features import ClipInputs, get_extractor


def _csv(path: Path, a: np.ndarray) -> Path:
    header = ",".join(f"c{i}" for i in range(a.shape[1]))
    path.write_text(header + "\n" + "\n".join(",".join(repr(float(v)) for v in r) for r in a) + "\n")
    return path


def test_reads_both_layouts(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    emo = rng.uniform(-1, 1, (751, 25)).astype(np.float32)
    fv = rng.normal(size=(1, 751, 58)).astype(np.float32)
    np.save(tmp_path / "a.npy", fv)
    inp = ClipInputs("c", num_frames=750, sidecars={"emotion": _csv(tmp_path / "a.csv", emo),
                                                    "tdmm": tmp_path / "a.npy"})
    out = get_extractor("precomputed").extract(inp)
    np.testing.assert_array_equal(out["emotion"], emo[:750])
    np.testing.assert_array_equal(out["tdmm"], fv[0, :750])
    np.save(tmp_path / "b.npy", fv[0])
    out = get_extractor("precomputed", kinds=["tdmm"]).extract(
        ClipInputs("c", num_frames=752, sidecars={"tdmm": tmp_path / "b.npy"}))
    assert set(out) == {"tdmm"} and out["tdmm"].shape == (752, 58)
    np.testing.assert_array_equal(out["tdmm"][751], fv[0, 750])  # boundary frame padded


def test_named_errors(tmp_path: Path) -> None:
    ext = get_extractor("precomputed", kinds=["emotion"])
    a = np.zeros((10, 25), np.float32)
    a[4, 3] = np.nan
    with pytest.raises(InputError, match=r"nan.csv: emotion CSV has NaN/inf \(first at frame 4"):
        ext.extract(ClipInputs("c", num_frames=10, sidecars={"emotion": _csv(tmp_path / "nan.csv", a)}))
    with pytest.raises(InputError, match=r"w.csv: emotion CSV has shape \(\d+, 24\), expected \(frames, 25\)"):
        ext.extract(ClipInputs("c", num_frames=10, sidecars={"emotion": _csv(tmp_path / "w.csv", a[:, :24])}))
    with pytest.raises(InputError, match="short.csv.*needs 10"):
        ext.extract(ClipInputs("c", num_frames=10, sidecars={"emotion": _csv(tmp_path / "short.csv", np.zeros((5, 25)))}))
    with pytest.raises(InputError, match="c: emotion file not found"):
        ext.extract(ClipInputs("c", num_frames=10, sidecars={"emotion": tmp_path / "none.csv"}))
    with pytest.raises(InputError, match="c: no emotion file"):
        ext.extract(ClipInputs("c", num_frames=10))
    np.save(tmp_path / "bad.npy", np.zeros((751, 56)))
    with pytest.raises(InputError, match=r"bad.npy: 3DMM array has shape \(751, 56\)"):
        get_extractor("precomputed", kinds=["tdmm"]).extract(
            ClipInputs("c", num_frames=751, sidecars={"tdmm": tmp_path / "bad.npy"}))
    with pytest.raises(ConfigError, match="unknown kinds"):
        get_extractor("precomputed", kinds=["au"])
