"""CLI round trip, atomic report, FID path with a randomly initialised InceptionV3 file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from reactcli.cli.evaluate import app
from reactcli.errors import MissingAssetError
from reactcli.metrics import fid as fidmod
from reactcli.metrics.report import metrics_table, write_report


def _app():
    root = typer.Typer()
    root.add_typer(app, name="evaluate")
    return root


def test_cli_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    N, K, T, D = 3, 2, 55, 25
    arrays = {
        "pred": rng.random((N, K, T, D)).astype(np.float32),
        "listener": rng.random((N, T, D)).astype(np.float32),
        "speaker": rng.random((N, T, D)).astype(np.float32),
        "appropriate": np.eye(N, dtype=np.int64),
    }
    args = ["evaluate", "arrays"]
    for key, arr in arrays.items():
        np.save(tmp_path / f"{key}.npy", arr)
        args += [f"--{key}", str(tmp_path / f"{key}.npy")]
    out = tmp_path / "m.json"
    res = CliRunner().invoke(_app(), args + ["--out", str(out), "--compat", "official"])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["compat"] == "official" and data["N"] == 3 and data["FRRea"] is None
    from reactcli.metrics import evaluate_arrays

    direct = evaluate_arrays(*arrays.values(), compat="official")
    assert data["FRdist"] == pytest.approx(direct["FRdist"])
    # a named error exits non-zero with the message, no traceback
    bad = arrays["appropriate"].copy()
    bad[1] = 0
    np.save(tmp_path / "appropriate.npy", bad)
    res = CliRunner().invoke(_app(), args + ["--out", str(out)])
    assert res.exit_code == 1
    assert "row 1 has no appropriate" in res.output


def test_write_report_is_atomic_and_rejects_nan(tmp_path):
    path = write_report({"FRDiv": 0.1, "timings_s": {"FRDiv": np.float64(0.5)}}, tmp_path / "a" / "r.json")
    assert json.loads(path.read_text())["timings_s"]["FRDiv"] == 0.5
    with pytest.raises(ValueError):
        write_report({"FRDiv": float("nan")}, path)
    assert json.loads(path.read_text())["FRDiv"] == 0.1  # old file intact
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temp files left
    table = metrics_table({"a": {"FRDiv": 0.1366}, "b": {}})
    assert table.row_count == 2


def test_frechet_distance_vs_scipy_and_shift():
    import scipy.linalg

    rng = np.random.default_rng(1)
    a = rng.standard_normal((200, 6))
    b = rng.standard_normal((200, 6)) @ rng.standard_normal((6, 6))
    mu1, s1 = fidmod.feature_stats(a)
    mu2, s2 = fidmod.feature_stats(b)
    expected = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real))
    assert fidmod.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)
    assert fidmod.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)
    d1 = fidmod.frechet_distance(mu1, s1, mu1 + 1.0, s1)
    d2 = fidmod.frechet_distance(mu1, s1, mu1 + 2.0, s1)
    assert d1 == pytest.approx(6.0) and d2 == pytest.approx(24.0)


def test_missing_weights_is_a_named_asset_error(tmp_path):
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(MissingAssetError, match="--inception-weights"):
        fidmod.fid_from_frames(frames, frames, None)
    with pytest.raises(MissingAssetError, match="InceptionV3 weights"):
        fidmod.fid_from_frames(frames, frames, tmp_path / "nope.pth")


@pytest.mark.slow
def test_fid_with_random_inception_weights(tmp_path):
    pytest.importorskip("torch")
    try:
        weights = fidmod.random_inception_weights(tmp_path / "inception.pth", seed=0)
    except Exception as exc:  # torch-fidelity not installed
        pytest.skip(f"torch-fidelity unavailable: {exc}")
    rng = np.random.default_rng(2)
    real = rng.integers(0, 256, (4, 48, 48, 3), dtype=np.uint8)
    fake = rng.integers(0, 256, (4, 48, 48, 3), dtype=np.uint8)
    same = fidmod.fid_from_frames(real, real, weights, batch_size=4)
    assert same["fid"] == pytest.approx(0.0, abs=1e-6)
    assert same["n_real"] == 4
    other = fidmod.fid_from_frames(real, fake, weights, batch_size=4)
    assert np.isfinite(other["fid"]) and other["fid"] >= -1e-6
