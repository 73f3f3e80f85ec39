"""`prepare react` notices a changed corpus (issue 27 item 1)."""

import numpy as np

from reactcli.corpora.common import sidecar_settings
from reactcli.corpora.react import prepare_react
from reactcli.features.registry import settings_of
from reactcli.storage import FeatureStore
from reactcli.synthetic.react_layout import write_tiny_react


def test_changed_emotion_csv_is_imported_again(tmp_path):
    root = write_tiny_react(tmp_path / "r", pairs_per_split=2)
    work = tmp_path / "w"
    s1 = prepare_react(root, work)
    assert s1.imported == s1.clips and s1.already_stored == 0
    csv = sorted((root / "train/Emotion").rglob("*.csv"))[0]
    lines = csv.read_text().splitlines()
    lines[1] = ",".join(["0.5"] * 25)  # a corrected first frame
    csv.write_text("\n".join(lines) + "\n")
    s2 = prepare_react(root, work)
    assert (s2.imported, s2.reimported, s2.already_stored) == (1, 1, s1.clips - 1)
    store = FeatureStore(work)
    changed = [c for c in store.clips("emotion") if np.allclose(store.read(c, "emotion")[0], 0.5)]
    assert len(changed) == 1
    arrays = (work / "manifests/arrays.jsonl").read_text().splitlines()
    assert len(arrays) == 2 * s1.clips  # one record per (clip, feature), no duplicates
    s3 = prepare_react(root, work)
    assert (s3.imported, s3.already_stored) == (0, s1.clips)


def test_other_root_replaces_arrays_and_stale_built_matrix(tmp_path):
    work = tmp_path / "w"
    prepare_react(write_tiny_react(tmp_path / "a", pairs_per_split=2, seed=0), work)
    (work / "appropriate").mkdir(exist_ok=True)
    np.save(work / "appropriate/train.npy", np.eye(2, dtype=np.uint8))  # as `appropriate build` leaves it
    root_b = write_tiny_react(tmp_path / "b", pairs_per_split=2, seed=1)  # same clip ids, other values
    s = prepare_react(root_b, work)
    assert s.reimported == s.clips
    store = FeatureStore(work)
    clip = store.clips("tdmm")[0]
    want = np.load(next((root_b / "train/3D_FV_files").rglob("*.npy")), allow_pickle=False)
    got = {c: store.read(c, "tdmm") for c in store.clips("tdmm")}
    assert any(np.array_equal(g, want.reshape(g.shape)) for g in got.values()) and clip in got
    assert not (work / "appropriate/train.npy").exists()  # built from the old corpus: removed
    assert (work / "appropriate/val.npy").exists()  # official matrix of the new root


def test_prepare_and_extract_agree_on_sidecar_settings():
    assert sidecar_settings(25.0) == settings_of("precomputed", {"kinds": ["emotion"]})
