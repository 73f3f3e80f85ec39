"""1 job, 2 jobs and 2 hand-run shards merged give identical arrays and manifests."""

import pytest

from reactcli.execution import ExecConfig, shard_path
from reactcli.features.stage import ExtractConfig, run_extract, stage_name
from reactcli.storage import FeatureStore
from reactcli.synthetic.react_layout import write_tiny_react
from tests.execution.helpers import prepared_work, snapshot


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_tiny_react(tmp_path_factory.mktemp("react") / "r", pairs_per_split=3)


def test_jobs_and_shards_identical(root, tmp_path):
    cfg = ExtractConfig(features=["emotion", "tdmm"])
    w1 = prepared_work(root, tmp_path, "one")
    run_extract(w1, cfg, ExecConfig(num_jobs=1))
    w2 = prepared_work(root, tmp_path, "two")
    run_extract(w2, cfg, ExecConfig(num_jobs=2))
    w3 = prepared_work(root, tmp_path, "hand")
    run_extract(w3, cfg, ExecConfig(shard=(1, 2)))
    assert shard_path(w3, stage_name(cfg), 1, 2).exists()
    assert not list((w3 / "features").glob("*.h5"))  # nothing merged yet
    run_extract(w3, cfg, ExecConfig(shard=(0, 2)))
    run_extract(w3, cfg, ExecConfig(num_jobs=2))  # same command without --shard merges
    a1, m1 = snapshot(w1)
    assert len(a1) == 2 * 18
    for w in (w2, w3):
        a, m = snapshot(w)
        assert m == m1
        assert a.keys() == a1.keys()
        for k in a1:
            assert a[k].tobytes() == a1[k].tobytes()
    assert not (w3 / "features/shards").exists()


def test_failed_shard_named_and_rerun_completes_only_it(root, tmp_path):
    from typer.testing import CliRunner

    from reactcli.cli.main import app

    work = prepared_work(root, tmp_path, "fail")
    # Break one clip's sidecar so that the shard holding it fails.
    clip_npys = sorted((root / "test/3D_FV_files").rglob("*.npy"))
    victim = clip_npys[-1]
    saved = victim.read_bytes()
    victim.write_bytes(b"broken")
    try:
        res = CliRunner().invoke(app, ["extract", "--work", str(work), "--features", "emotion,tdmm", "--num-jobs", "2"])
        assert res.exit_code != 0
        flat = " ".join(res.output.split())
        assert "shard" in flat and "failed" in flat and victim.name in flat
    finally:
        victim.write_bytes(saved)
    stage = stage_name(ExtractConfig(features=["emotion", "tdmm"]))
    done = [i for i in range(2) if shard_path(work, stage, i, 2).exists()]
    assert len(done) == 1  # the good shard was committed
    res = CliRunner().invoke(app, ["extract", "--work", str(work), "--features", "emotion,tdmm", "--num-jobs", "2"])
    assert res.exit_code == 0, res.output
    assert len(FeatureStore(work).refresh()) == 36
    assert not shard_path(work, stage, done[0], 2).exists()  # merged


def test_skip_bad_clip_reports_name(root, tmp_path):
    work = prepared_work(root, tmp_path, "skip")
    victim = sorted((root / "val/Emotion").rglob("*.csv"))[0]
    saved = victim.read_bytes()
    victim.write_text("h\n1,2\n")
    try:
        s = run_extract(work, ExtractConfig(features=["emotion", "tdmm"], on_error="skip"), ExecConfig())
    finally:
        victim.write_bytes(saved)
    assert len(s["skipped"]) == 1 and victim.name in s["skipped"][0]
