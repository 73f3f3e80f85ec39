"""A second process on the same stage, a read-only or full disk: one line, then a clean rerun (issue 27)."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reactcli.cli.main import app
from reactcli.errors import BusyError
from reactcli.io import process_lock
from reactcli.manifest import ClipRecord, read_manifest
from reactcli.synthetic.react_layout import write_tiny_react
from tests.execution.helpers import prepared_work, snapshot

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_tiny_react(tmp_path_factory.mktemp("react") / "r", pairs_per_split=2)


def _flat(res):
    return " ".join(res.output.split())


def _one_error_line(res):
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    return len(lines) == 1 and "Traceback" not in res.output


def test_second_extract_on_the_same_work_stops_with_one_line(root, tmp_path):
    work = prepared_work(root, tmp_path, "w")
    first = read_manifest(work / "manifests/clips.jsonl", ClipRecord)[0].id
    env = {**os.environ, "PYTHONPATH": str(REPO), "REACTCLI_TEST_SLOW_CLIP": f"{first}=60"}
    proc = subprocess.Popen([sys.executable, "-m", "reactcli.cli.main", "extract", "--work", str(work),
                             "--features", "emotion,tdmm"], env=env, cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = work / "locks/extract-emotion-tdmm.lock"
    try:
        deadline = time.monotonic() + 60
        while not (lock.is_file() and lock.read_text().strip() == str(proc.pid)):
            assert proc.poll() is None and time.monotonic() < deadline, "first extract did not start"
            time.sleep(0.1)
        res = CliRunner().invoke(app, ["extract", "--work", str(work), "--features", "emotion,tdmm"])
        assert res.exit_code == 1 and "Traceback" not in res.output
        assert f"is being written by another process (pid {proc.pid})" in _flat(res)
        assert _one_error_line(res)
    finally:
        proc.kill()  # the process this test started, by its handle
        proc.wait()
    res = CliRunner().invoke(app, ["extract", "--work", str(work), "--features", "emotion,tdmm"])
    assert res.exit_code == 0, res.output  # the killed run's lock went with it
    ref = prepared_work(root, tmp_path, "ref")
    assert CliRunner().invoke(app, ["extract", "--work", str(ref), "--features", "emotion,tdmm"]).exit_code == 0
    a, m = snapshot(work)
    a0, m0 = snapshot(ref)
    assert m == m0 and all(a[k].tobytes() == a0[k].tobytes() for k in a0)


def test_process_lock_names_the_holder(tmp_path):
    code = ("import sys, time; sys.path.insert(0, sys.argv[2]); from reactcli.io import process_lock\n"
            "with process_lock(sys.argv[1], 'x'):\n    print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "l.lock"), str(REPO)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(BusyError, match=rf"run 'r' is being written by another process \(pid {proc.pid}\)"):
            with process_lock(tmp_path / "l.lock", "run 'r'"):
                pass
    finally:
        proc.kill()
        proc.wait()
    with process_lock(tmp_path / "l.lock", "run 'r'"):  # free again
        pass


def _full_disk(monkeypatch, after: int = 0):
    """Make the (after+1)-th temp file of an atomic write fail as on a full disk."""
    import reactcli.io as rio

    real = rio.tempfile.mkstemp
    calls = {"n": 0}

    def mkstemp(*a, **kw):
        calls["n"] += 1
        if calls["n"] > after:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(kw.get("dir", "?")))
        return real(*a, **kw)

    monkeypatch.setattr(rio.tempfile, "mkstemp", mkstemp)


@pytest.mark.parametrize("after", [0, 1])
def test_full_disk_in_prepare_is_one_line_and_rerun_is_identical(root, tmp_path, monkeypatch, after):
    work, ref = tmp_path / "w", tmp_path / "ref"
    args = ["prepare", "react", "--root", str(root), "--work"]
    with monkeypatch.context() as m:
        _full_disk(m, after)
        res = CliRunner().invoke(app, [*args, str(work)])
    assert res.exit_code == 1 and _one_error_line(res)
    assert "No space left on device" in res.output and str(work) in _flat(res)
    assert CliRunner().invoke(app, [*args, str(work)]).exit_code == 0
    assert CliRunner().invoke(app, [*args, str(ref)]).exit_code == 0
    for f in ("manifests/clips.jsonl", "manifests/pairs.jsonl", "manifests/arrays.jsonl"):
        want = (ref / f).read_text().replace(str(ref), "<w>")
        assert (work / f).read_text().replace(str(work), "<w>") == want


def test_full_disk_while_writing_the_store_is_one_line(root, tmp_path, monkeypatch):
    import reactcli.storage.store as st

    work = prepared_work(root, tmp_path, "w")
    real = st.ShardWriter.write
    calls = {"n": 0}

    def write(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "Can't write data (file write failed: errno = 28, error message = "
                          f"'No space left on device') in {self.partial}")
        return real(self, *a, **kw)

    with monkeypatch.context() as m:
        m.setattr(st.ShardWriter, "write", write)
        res = CliRunner().invoke(app, ["extract", "--work", str(work), "--features", "emotion,tdmm"])
    assert res.exit_code == 1 and _one_error_line(res)
    assert ".partial" in _flat(res) and "free some space" in _flat(res)
    assert CliRunner().invoke(app, ["extract", "--work", str(work), "--features", "emotion,tdmm"]).exit_code == 0
    ref = prepared_work(root, tmp_path, "ref")
    assert CliRunner().invoke(app, ["extract", "--work", str(ref), "--features", "emotion,tdmm"]).exit_code == 0
    a, m_ = snapshot(work)
    a0, m0 = snapshot(ref)
    assert m_ == m0 and a.keys() == a0.keys() and all(a[k].tobytes() == a0[k].tobytes() for k in a0)


def test_second_generate_of_the_same_run_stops_with_one_line(tmp_path):
    """`generate --run R` while another process writes run R (its lock held): one line with the pid."""
    from reactcli.corpora.react import ReactConfig, prepare_react

    root = write_tiny_react(tmp_path / "r", pairs_per_split=2, frames=61, splits=("test",))
    work = tmp_path / "w"
    prepare_react(root, work, ReactConfig(frames=61, splits=("test",)))
    code = ("import sys, time; sys.path.insert(0, sys.argv[2]); from reactcli.execution import stage_lock\n"
            "with stage_lock(sys.argv[1], 'generate-mime-test'):\n    print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(work), str(REPO)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        res = CliRunner().invoke(app, ["generate", "--work", str(work), "--baseline", "mime", "--split", "test",
                                       "--frames", "60", "--num-samples", "2"])
        assert res.exit_code == 1 and _one_error_line(res)
        assert f"run 'mime' (test) is being written by another process (pid {proc.pid})" in _flat(res)
        assert not (work / "manifests/generated-mime-test.jsonl").exists()
    finally:
        proc.kill()
        proc.wait()


def test_second_prepare_writing_the_same_store_file_stops_with_one_line(root, tmp_path):
    work = tmp_path / "w"
    code = ("import sys, time; sys.path.insert(0, sys.argv[2]); from reactcli.storage import FeatureStore\n"
            "w = FeatureStore(sys.argv[1]).writer('react-precomputed'); w.open()\n"
            "print('held', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(work), str(REPO)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        res = CliRunner().invoke(app, ["prepare", "react", "--root", str(root), "--work", str(work)])
        assert res.exit_code == 1 and _one_error_line(res)
        assert f"react-precomputed.h5.partial is being written by another process (pid {proc.pid})" in _flat(res)
    finally:
        proc.kill()
        proc.wait()
