"""``--executor slurm`` against a real one-node Slurm cluster started by the test.

The cluster (``tests.helpers.slurm``) needs root and Debian's Slurm packages; where it
cannot start, every test here is skipped with the reason (``pytest -rs`` prints it).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import pytest
import torch
import submitit  # noqa: F401 - imported before any CliRunner run, so that submitit's log handler
# binds to the real stderr and not to a captured stream that CliRunner closes afterwards

from reactcli.corpora.react import ReactConfig, prepare_react
from reactcli.execution import ExecConfig, ShardFailed, shard_dir, shard_path
from reactcli.features.stage import ExtractConfig, run_extract, stage_name
from reactcli.manifest import ClipRecord, read_manifest, shard_records
from reactcli.synthetic.react_layout import write_tiny_react
from tests.helpers.slurm import slurm_fixture
from tests.execution.helpers import prepared_work, snapshot

pytestmark = pytest.mark.slurm

FEATURES = "emotion,tdmm"
CFG = ExtractConfig(features=FEATURES.split(","))
STAGE = stage_name(CFG)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    yield from slurm_fixture(tmp_path_factory)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_tiny_react(tmp_path_factory.mktemp("react") / "r", pairs_per_split=3)


@pytest.fixture(scope="module")
def reference(root, tmp_path_factory, slurm):
    """A local one-job run through the CLI: the arrays and manifest every other run must match."""
    work = tmp_path_factory.mktemp("ref") / "work"
    prepare_react(root, work, ReactConfig(import_features=False))
    t0 = time.perf_counter()
    res = _cli("extract", "--work", work, "--features", FEATURES)
    seconds = time.perf_counter() - t0
    assert res.exit_code == 0, res.output
    return snapshot(work), seconds


def _cli(*args):
    from typer.testing import CliRunner

    from reactcli.cli.main import app

    return CliRunner().invoke(app, [str(a) for a in args])


def _assert_same(work, reference):
    (a1, m1), _ = reference
    a, m = snapshot(work)
    assert len(a1) == 2 * 18
    assert m == m1
    assert a.keys() == a1.keys()
    for k in a1:
        assert a[k].dtype == a1[k].dtype and a[k].tobytes() == a1[k].tobytes(), k


def test_cluster_is_idle_and_isolated(slurm):
    assert os.environ["SLURM_CONF"] == str(slurm.conf)
    r = slurm.run("sinfo", "-h", "-N", "-o", "%N %T")
    assert r.stdout.split() == [slurm.node, "idle"]
    assert all(p.poll() is None for p in slurm.procs.values())  # the three daemons we own run
    print(f"\nlocal Slurm: node idle {slurm.startup_seconds:.2f} s after the first daemon started "
          f"(package install {slurm.install_seconds:.1f} s)")


def test_slurm_array_matches_local_run(root, tmp_path, slurm, reference):
    work = prepared_work(root, tmp_path, "slurm")
    t0 = time.perf_counter()
    res = _cli("extract", "--work", work, "--features", FEATURES, "--executor", "slurm", "--num-jobs", 2,
               "--slurm-timeout", 90)
    seconds = time.perf_counter() - t0
    assert res.exit_code == 0, res.output
    _assert_same(work, reference)
    assert not (work / "features" / "shards").exists()  # merged and cleaned up
    logs = sorted((work / "logs" / "slurm" / STAGE).glob("*_log.err"))
    assert len(logs) == 2  # one log per array task, kept for inspection
    print(f"\nsharded extract (18 pairs x 2 features): local 1 job {reference[1]:.2f} s, "
          f"Slurm array of 2 {seconds:.2f} s")


def _clips_of_shard(work, i, n):
    clips = read_manifest(work / "manifests" / "clips.jsonl", ClipRecord)
    return shard_records(clips, i, n)


def test_scancel_leaves_no_half_written_output_and_rerun_completes(root, tmp_path, slurm, reference):
    work = prepared_work(root, tmp_path, "cancel")
    # Shard 0 stalls (fault injection, inherited by the array tasks through sbatch's exported
    # environment) before its last clip, so its earlier clips are already in the shard's .partial
    # file when the array is cancelled and the task dies in the middle of its shard. The stall
    # outlasts scancel's SIGTERM + KillWait=2 s on any machine, however fast.
    victim_rec = _clips_of_shard(work, 0, 2)[-1]
    os.environ["REACTCLI_TEST_SLOW_CLIP"] = f"{victim_rec.id}=120"
    box: dict = {}

    def drive():
        try:
            box["summary"] = run_extract(work, CFG, ExecConfig(executor="slurm", num_jobs=2, slurm_timeout=60))
        except Exception as exc:  # noqa: BLE001 - handed to the test thread
            box["error"] = exc

    th = threading.Thread(target=drive, daemon=True)
    try:
        th.start()
        partial = shard_path(work, STAGE, 0, 2).with_name(shard_path(work, STAGE, 0, 2).name + ".partial")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (partial.exists() and shard_path(work, STAGE, 1, 2).exists()):
            time.sleep(0.1)
        assert partial.exists(), "shard 0 never started writing"
        time.sleep(0.3)  # shard 0 is now parsing the long CSV
        # the array id, from the submission script submitit left in the log folder
        subs = list((work / "logs" / "slurm" / STAGE).glob("*_submission.sh"))
        assert len(subs) == 1, subs
        array_id = subs[0].name.split("_")[0]
        r = slurm.run("scancel", array_id)
        assert r.returncode == 0, r.stderr
        th.join(60)
        assert not th.is_alive(), "the driver did not notice the cancelled task"
    finally:
        os.environ.pop("REACTCLI_TEST_SLOW_CLIP", None)
    err = box.get("error")
    context = f"{box!r}; queue {slurm.jobs()}"
    assert isinstance(err, ShardFailed), context
    msg = str(err)
    assert "shard 0/2" in msg and "CANCELLED" in msg and "log:" in msg, context
    assert "shard 1/2" not in msg, context  # the finished shard is not reported
    # Nothing merged, nothing half-written under a final name.
    assert not list((work / "features").glob("*.h5"))
    names = sorted(p.name for p in shard_dir(work, STAGE).iterdir())
    assert names == ["0000-of-0002.h5.partial", "0001-of-0002.h5"], names
    # The partial file of the killed shard holds some, not all, of its outputs (when HDF5 can
    # still open it); the rerun resumes from it or discards it.
    with contextlib.suppress(OSError), h5py.File(shard_dir(work, STAGE) / names[0], "r") as h5:
        part = []
        h5.visititems(lambda k, o: part.append(k) if isinstance(o, h5py.Dataset) else None)
        assert len(part) < 2 * len(_clips_of_shard(work, 0, 2))
    # The committed shard holds exactly its clips' complete outputs.
    with h5py.File(shard_path(work, STAGE, 1, 2), "r") as h5:
        keys = []
        h5.visititems(lambda k, o: keys.append(k) if isinstance(o, h5py.Dataset) else None)
    assert len(keys) == 2 * len(_clips_of_shard(work, 1, 2))
    # Rerunning the same command resubmits only shard 0 and completes.
    res = _cli("extract", "--work", work, "--features", FEATURES, "--executor", "slurm", "--num-jobs", 2,
               "--slurm-timeout", 90)
    assert res.exit_code == 0, f"{res.output}; queue {slurm.jobs()}"
    _assert_same(work, reference)
    logs = sorted((work / "logs" / "slurm" / STAGE).glob("*_log.err"))
    assert len(logs) == 3, logs  # two tasks of the first array + only shard 0 again in the rerun


def test_failing_shard_reported_by_id_with_log(root, tmp_path, slurm, reference):
    work = prepared_work(root, tmp_path, "fail")
    victim_rec = _clips_of_shard(work, 1, 2)[0]
    victim = victim_rec.sidecars["tdmm"]
    saved = open(victim, "rb").read()
    with open(victim, "wb") as fh:
        fh.write(b"broken")
    try:
        res = _cli("extract", "--work", work, "--features", FEATURES, "--executor", "slurm", "--num-jobs", 2,
                   "--slurm-timeout", 90)
    finally:
        with open(victim, "wb") as fh:
            fh.write(saved)
    assert res.exit_code != 0
    flat = "".join(res.output.split())  # rich wraps long lines anywhere
    assert "shard1/2" in flat and "failed" in flat and "shard0/2" not in flat
    assert os.path.basename(victim) in flat
    logs = re.findall(r"log:(/\S+?_log\.err)", flat)
    assert len(logs) == 1, flat
    log = Path(logs[0])
    assert log.parent == work / "logs" / "slurm" / STAGE and log.name.split("_")[1] == "1"  # task 1
    assert os.path.basename(victim) in log.read_text()  # the log holds the traceback
    assert shard_path(work, STAGE, 0, 2).exists() and not shard_path(work, STAGE, 1, 2).exists()
    res = _cli("extract", "--work", work, "--features", FEATURES, "--executor", "slurm", "--num-jobs", 2,
               "--slurm-timeout", 90)
    assert res.exit_code == 0, res.output
    _assert_same(work, reference)


TEMPLATES = Path(__file__).resolve().parents[2] / "pipelines" / "slurm"


def _wait_jobs(slurm, ids, timeout=120.0):
    """Wait until every job id in ``ids`` has ended; returns {id: state}."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {}
        for jid, state in slurm.jobs():
            states.setdefault(jid.split("_")[0], []).append(state)
        if all(i in states and all(s not in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING") for s in states[i])
               for i in ids):
            return {i: states[i] for i in ids}
        time.sleep(0.25)
    raise AssertionError(f"jobs {ids} still running after {timeout} s: {slurm.jobs()}")


def test_extract_array_template(root, tmp_path, slurm, reference):
    """pipelines/slurm/extract_array.sbatch: array of --shard tasks, then the afterok merge."""
    work = prepared_work(root, tmp_path, "template")
    env = {**slurm.env, "WORK": str(work), "FEATURES": FEATURES, "N": "2",
           "REACTCLI": str(Path(sys.executable).parent / "reactcli")}
    r = subprocess.run(["bash", str(TEMPLATES / "extract_array.sbatch"), "submit"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    ids = re.findall(r"job (\d+)", r.stdout)
    assert len(ids) == 2, r.stdout
    states = _wait_jobs(slurm, ids)
    assert states == {ids[0]: ["COMPLETED", "COMPLETED"], ids[1]: ["COMPLETED"]}, states
    _assert_same(work, reference)
    out = sorted(p.name for p in (work / "logs" / "slurm").iterdir())
    assert out == [f"extract-{ids[0]}_0.out", f"extract-{ids[0]}_1.out", f"extract-merge-{ids[1]}.out"]
    assert "shard 1/2" in (work / "logs" / "slurm" / f"extract-{ids[0]}_1.out").read_text()


@pytest.mark.slow
def test_train_ddp_template(tmp_path, slurm):
    """pipelines/slurm/train_ddp.sbatch on CPUs: srun -> torchrun (2 processes, gloo) -> the
    tiny training script of tests/training/test_ddp.py; rank 0 writes a world-size-2 model."""
    from tests.training.test_ddp import _reference_two_ranks

    run_dir = tmp_path / "run"
    script = Path(__file__).resolve().parents[1] / "training" / "test_ddp.py"
    env = {**slurm.env, "NPROC": "2", "ENTRY": str(script), "REACTCLI_PYTHON": sys.executable}
    r = subprocess.run(["sbatch", "--parsable", "--gpus-per-node=0", "--cpus-per-task=2",
                        f"--output={tmp_path / 'train-%j.out'}", str(TEMPLATES / "train_ddp.sbatch"), str(run_dir)],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    jid = r.stdout.strip().split(";")[0]
    states = _wait_jobs(slurm, [jid], timeout=240)
    log = (tmp_path / f"train-{jid}.out").read_text()
    assert states[jid] == ["COMPLETED"], log
    assert "1 node(s) x 2 process(es)" in log
    from reactcli.models.checkpoint import load_checkpoint

    ck = load_checkpoint(run_dir / "model.pt")
    assert ck["world_size"] == 2
    for k, v in _reference_two_ranks().items():
        torch.testing.assert_close(ck["state_dict"][k], v, rtol=1e-5, atol=1e-6)
