import h5py
import numpy as np
import pytest

import reactcli
from reactcli.errors import InputError
from reactcli.storage import ARRAYS_MANIFEST, FeatureStore, crc32


def test_write_read_attrs_and_manifest(tmp_path):
    store = FeatureStore(tmp_path)
    a = np.arange(751 * 25, dtype=np.float64).reshape(751, 25)
    with store.writer("emo") as w:
        ref = w.write("NoXI/s/Expert_video/1", "emotion", a, fps=25.0, extractor="precomputed", config={"k": 1})
    assert ref.shape == [751, 25] and ref.dtype == "float32" and ref.store == "features/emo.h5"
    refs = store.refresh()
    assert (tmp_path / ARRAYS_MANIFEST).is_file() and len(refs) == 1
    fresh = FeatureStore(tmp_path)
    got = fresh.read("NoXI/s/Expert_video/1", "emotion")
    np.testing.assert_array_equal(got, a.astype(np.float32))
    attrs = fresh.attrs("NoXI/s/Expert_video/1", "emotion")
    assert attrs["fps"] == 25.0 and attrs["extractor"] == "precomputed"
    assert attrs["reactcli_version"] == reactcli.__version__ and '"k": 1' in attrs["config"]
    assert fresh.read("NoXI/s/Expert_video/1", "emotion", slice(0, 10)).shape == (10, 25)
    with pytest.raises(InputError, match="not in the store"):
        fresh.read("NoXI/s/Expert_video/1", "mfcc")


def test_interrupted_writer_resumes_and_drops_incomplete(tmp_path):
    store = FeatureStore(tmp_path)
    w = store.writer("x")
    w.open()
    w.write("c1", "f", np.ones((3, 2)), fps=25)
    w.write("c2", "f", np.ones((3, 2)), fps=25)
    # simulate a crash in the middle of c2: the dataset exists but was never marked complete
    w._h5["c2/f"].attrs["complete"] = 0
    w.close(commit=False)
    assert not (tmp_path / "features/x.h5").exists()  # nothing committed under the final name
    assert store.scan() == []
    w2 = store.writer("x")
    with w2:
        assert w2.has("c1", "f") and not w2.has("c2", "f")
        w2.write("c2", "f", np.zeros((3, 2)), fps=25)
    assert sorted(r.clip for r in store.refresh()) == ["c1", "c2"]


def test_corrupt_partial_is_discarded(tmp_path):
    store = FeatureStore(tmp_path)
    (tmp_path / "features").mkdir()
    (tmp_path / "features/x.h5.partial").write_bytes(b"\x89HDF\r\n\x1a\n garbage truncated")
    with store.writer("x") as w:
        assert w.keys() == set()
        w.write("c", "f", np.ones(2), fps=25)
    assert [r.clip for r in store.refresh()] == ["c"]


def test_crc_mismatch_in_partial_is_dropped(tmp_path):
    store = FeatureStore(tmp_path)
    w = store.writer("x")
    w.open()
    w.write("c", "f", np.ones(4), fps=25)
    w._h5["c/f"][0] = 5.0  # bytes changed after the CRC was recorded (torn write)
    w.close(commit=False)
    with store.writer("x") as w2:
        assert not w2.has("c", "f")


def test_committed_files_are_never_rewritten(tmp_path):
    store = FeatureStore(tmp_path)
    with store.writer("x") as w:
        w.write("c1", "f", np.ones(2), fps=25)
    with store.writer("x") as w:
        w.write("c2", "f", np.ones(2), fps=25)
    assert sorted(p.name for p in store.files()) == ["x-1.h5", "x.h5"]
    assert {r.clip for r in store.refresh()} == {"c1", "c2"}


def test_truncated_committed_file_named(tmp_path):
    store = FeatureStore(tmp_path)
    with store.writer("x") as w:
        w.write("c1", "f", np.ones((100, 10)), fps=25)
    path = tmp_path / "features/x.h5"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match=r"x\.h5: HDF5 store file is unreadable or truncated"):
        FeatureStore(tmp_path).scan()


def test_store_pickles_without_handles_for_workers(tmp_path):
    import pickle

    store = FeatureStore(tmp_path)
    with store.writer("x") as w:
        w.write("c1", "f", np.arange(6.0).reshape(3, 2), fps=25)
    store.refresh()
    store.read("c1", "f")
    assert store._handles
    clone = pickle.loads(pickle.dumps(store))
    assert clone._handles == {}
    np.testing.assert_array_equal(clone.read("c1", "f"), np.arange(6.0).reshape(3, 2))


def test_crc_attr_matches(tmp_path):
    store = FeatureStore(tmp_path)
    arr = np.random.default_rng(0).random((5, 3)).astype(np.float32)
    with store.writer("x") as w:
        w.write("c", "f", arr, fps=25)
    with h5py.File(tmp_path / "features/x.h5") as h5:
        assert h5["c/f"].attrs["crc32"] == crc32(arr)


def _commit_and_refresh(work, tag, n):
    import random
    import time

    scan = FeatureStore.scan
    rng = random.Random(tag)
    # a slow, uneven file system: between a rescan and the manifest it writes, the other
    # process may commit and write its own manifest, which a stale one then overwrites
    FeatureStore.scan = lambda self: (scan(self), time.sleep(rng.uniform(0, 0.03)))[0]
    store = FeatureStore(work)
    for i in range(n):
        time.sleep(rng.uniform(0, 0.02))
        listed = set(FeatureStore(work).clips("f"))  # the manifest as any other process reads it now
        missing = {f"{tag}/{j}" for j in range(i)} - listed
        assert not missing, f"committed and refreshed, then lost from the manifest: {sorted(missing)}"
        with store.writer(f"{tag}-{i}") as w:
            w.write(f"{tag}/{i}", "f", np.ones((3, 2)), fps=25)
        store.refresh()


def test_concurrent_refreshes_never_lose_a_committed_file(tmp_path):
    """Two processes (make -j2, local shards, Slurm tasks) commit files and refresh the manifest
    at the same time. Each rescan + rewrite holds a lock, so the last manifest written lists every
    file; without it a process could overwrite the manifest with a scan made before the other's
    commit, and the other's arrays would be "not in the store"."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_commit_and_refresh, args=(tmp_path, tag, 25)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    clips = FeatureStore(tmp_path).clips("f")  # from the manifest, as a later process reads it
    assert len(clips) == 50 and len(FeatureStore(tmp_path).scan()) == 50
