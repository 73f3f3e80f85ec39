"""CLI round trip, atomic report, FID path with a randomly initialised InceptionV3 file."""

from __future__ import annotations

import hashlib
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
    (tmp_path / "model.pt").write_bytes(b"weights")
    res = CliRunner().invoke(_app(), args + ["--out", str(out), "--compat", "official",
                                             "--checkpoint", str(tmp_path / "model.pt"), "--generation-seed", "5"])
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["compat"] == "official" and data["N"] == 3 and data["FRRea"] is None
    assert data["checkpoint_sha256"] == hashlib.sha256(b"weights").hexdigest() and data["seed"] == 5
    assert data["reactcli_version"]
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


def test_frechet_from_features_is_exact_with_few_frames():
    """Fewer frames than dimensions: the singular-value route agrees with the covariance route
    (up to the noise of the latter's ~D zero eigenvalues) and gives exactly 0 for a set against
    itself, where a D x D square root (pytorch-fid's sqrtm, or eigh) does not."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((40, 300))
    b = rng.standard_normal((30, 300)) * np.linspace(0.5, 2, 300) + 0.1
    full = fidmod.frechet_distance(*fidmod.feature_stats(a), *fidmod.feature_stats(b))
    assert fidmod.frechet_distance_from_features(a, b) == pytest.approx(full, rel=1e-7)
    feats = rng.standard_normal((48, 2048)) * 0.3
    assert abs(fidmod.frechet_distance_from_features(feats, feats)) < 1e-10  # eigh/sqrtm: ~1e-5 off here
    assert fidmod.frechet_distance_from_features(feats, feats + 1.0) == pytest.approx(2048.0, rel=1e-12)
    # more frames than dimensions: the covariance route
    c = rng.standard_normal((50, 20))
    assert fidmod.frechet_distance_from_features(c, c + 2.0) == pytest.approx(80.0, rel=1e-9)


@pytest.fixture(scope="module")
def scored_work(tmp_path_factory):
    """A tiny work dir with a generation run (placeholder media) for ``evaluate run``."""
    from reactcli.corpora.react import ReactConfig, prepare_react
    from reactcli.generation.store import write_generated
    from reactcli.synthetic.react_layout import write_tiny_react
    from reactcli.manifest.items import load_items

    base = tmp_path_factory.mktemp("eval")
    root = write_tiny_react(base / "root", pairs_per_split=2, frames=61, splits=("test",), seed=0)
    work = base / "work"
    prepare_react(root, work, ReactConfig(frames=61, splits=("test",)))
    table = load_items(work, "test")
    rng = np.random.default_rng(0)

    def batches():
        for i in range(table.n):
            yield [i], {"emotion": rng.random((1, 2, 60, 25)).astype(np.float32),
                        "tdmm": (0.1 * rng.standard_normal((1, 2, 60, 58))).astype(np.float32)}

    write_generated(work, "r1", "test", table, batches(), num_samples=2, seed=0, meta={})
    return work


def _run_app():
    from reactcli.cli.evaluate_run import run_command

    root = typer.Typer()
    root.command("run")(run_command)
    root.command("noop")(lambda: None)
    return root


def test_evaluate_run_fid_options(scored_work, tmp_path):
    from reactcli.render.fid_frames import export_fid_frames

    runner = CliRunner()
    base = ["run", "--work", str(scored_work), "--run", "r1", "--split", "test"]
    res = runner.invoke(_run_app(), base + ["--inception-weights", str(tmp_path / "w.pth")])
    assert res.exit_code == 1 and "--inception-weights needs --fid-frames" in res.output
    res = runner.invoke(_run_app(), base + ["--run", "r2", "--fid-frames", str(tmp_path)])
    assert res.exit_code == 1 and "single --run" in res.output
    # the cartoon drawn on both sides: a motion-only FID, so the weights are what is missing
    export_fid_frames(scored_work, "r1", "test", tmp_path / "fid", every=10, renderer="face2d", items=[0])
    res = runner.invoke(_run_app(), base + ["--fid-frames", str(tmp_path / "fid"),
                                            "--inception-weights", str(tmp_path / "none.pth")])
    assert res.exit_code == 1 and "InceptionV3 weights" in res.output and "--inception-weights" in res.output
    # a face2d export whose real frames came from video is refused before any weights are read
    meta = json.loads((tmp_path / "fid" / "frames.json").read_text())
    (tmp_path / "fid" / "frames.json").write_text(json.dumps({**meta, "real_from_video": 1}))
    res = runner.invoke(_run_app(), base + ["--fid-frames", str(tmp_path / "fid")])
    assert res.exit_code == 1 and "drawing style" in res.output
    # without FID options FRRea stays unavailable
    res = runner.invoke(_run_app(), base + ["--out-dir", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "m" / "r1-test.json").read_text())["FRRea"] is None


@pytest.mark.slow
def test_evaluate_run_reports_frrea(scored_work, tmp_path):
    try:
        weights = fidmod.random_inception_weights(tmp_path / "inception.pth", seed=0)
    except Exception as exc:  # torch-fidelity not installed
        pytest.skip(f"torch-fidelity unavailable: {exc}")
    from reactcli.render.fid_frames import export_fid_frames

    export_fid_frames(scored_work, "r1", "test", tmp_path / "fid", every=20, renderer="face2d", items=[0, 1])
    res = CliRunner().invoke(_run_app(), ["run", "--work", str(scored_work), "--run", "r1", "--split", "test",
                                          "--out-dir", str(tmp_path / "m"), "--fid-frames", str(tmp_path / "fid"),
                                          "--inception-weights", str(weights)])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "m" / "r1-test.json").read_text())
    direct = fidmod.fid_from_frames(tmp_path / "fid" / "real", tmp_path / "fid" / "fake", weights)
    assert data["FRRea"] == pytest.approx(direct["fid"])
    assert data["FRRea_detail"]["n_real"] == 6 and data["FRRea_detail"]["preprocess"] == "pytorch-fid"
    assert data["FRRea_detail"]["frames"]["renderer"] == "face2d"
