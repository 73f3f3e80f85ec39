"""The REACT reader on a tiny layout: the happy path and one broken thing at a time."""

import json
import shutil

import numpy as np
import pytest

from reactcli.manifest import ClipRecord, PairRecord, read_manifest
from reactcli.storage import FeatureStore
from reactcli.synthetic.react_layout import write_tiny_react


@pytest.fixture
def root(tmp_path):
    return write_tiny_react(tmp_path / "react", pairs_per_split=2)


def _nothing_written(work):
    return not (work / "manifests").exists() and not list(work.glob("features/*.h5"))


def test_prepare_react_happy_path_and_resume(cli, root, tmp_path):
    work = tmp_path / "work"
    res = cli("prepare", "react", "--root", root, "--work", work)
    assert res.exit_code == 0, res.output
    pairs = read_manifest(work / "manifests/pairs.jsonl", PairRecord)
    val = [p for p in pairs if p.split == "val"]
    assert len(val) == 4 and [p.index for p in val] == [0, 1, 2, 3]
    assert val[2].speaker == val[0].listener and val[2].listener == val[0].speaker and val[2].mirrored
    clips = read_manifest(work / "manifests/clips.jsonl", ClipRecord)
    assert len(clips) == 12
    store = FeatureStore(work)
    for c in clips:
        assert store.read(c.id, "emotion").shape == (751, 25)
        assert store.read(c.id, "tdmm").shape == (751, 58)  # (1,751,58) files are squeezed too
    m = np.load(work / "appropriate/val.npy")
    assert m.shape == (4, 4) and (m.sum(1) >= 1).all()
    # The P1/P2-named emotion file was found for the Expert_video clip and imported exactly.
    emo_src = root / "val/Emotion/NoXI/065_2016-04-14_Nottingham/P1/11.csv"
    want = np.loadtxt(emo_src, delimiter=",", skiprows=1, dtype=np.float32)
    np.testing.assert_allclose(store.read("NoXI/065_2016-04-14_Nottingham/Expert_video/11", "emotion"), want)
    mtime = (work / "features/react-precomputed.h5").stat().st_mtime_ns
    res2 = cli("prepare", "react", "--root", root, "--work", work)
    assert res2.exit_code == 0 and "already stored: 12" in res2.output
    assert [p.name for p in (work / "features").glob("*.h5")] == ["react-precomputed.h5"]
    assert (work / "features/react-precomputed.h5").stat().st_mtime_ns == mtime


def test_png_folder_videos_are_accepted(cli, root, tmp_path):
    mp4 = root / "train/Video_files/NoXI/065_2016-04-14_Nottingham/Expert_video/1.mp4"
    mp4.unlink()
    folder = mp4.with_suffix("")
    folder.mkdir()
    for i in range(1, 752):
        (folder / f"{i}.png").write_bytes(b"")
    res = cli("prepare", "react", "--root", root, "--work", tmp_path / "w")
    assert res.exit_code == 0, res.output
    clip = [c for c in read_manifest(tmp_path / "w/manifests/clips.jsonl") if c.id.endswith("Expert_video/1")][0]
    assert clip.video == str(folder)


NOXI = "NoXI/065_2016-04-14_Nottingham"


def _emo(root, person="P1", clip="11", split="val"):
    return root / split / "Emotion" / NOXI / person / f"{clip}.csv"


def _tdmm(root, person="Expert_video", clip="11", split="val"):
    return root / split / "3D_FV_files" / NOXI / person / f"{clip}.npy"


def _write_emo(path, arr):
    np.savetxt(path, arr, delimiter=",", header=",".join(f"c{i}" for i in range(arr.shape[1])), comments="")


def _break(case, root):
    """Apply one defect; return the text the error must contain."""
    if case == "missing video":
        (root / "val/Video_files" / NOXI / "Expert_video/11.mp4").unlink()
        return "Expert_video/11.mp4: video not found"
    if case == "empty video":
        (root / "val/Video_files" / NOXI / "Expert_video/11.mp4").write_bytes(b"")
        return "11.mp4: video file is empty"
    if case == "png folder wrong count":
        p = root / "val/Video_files" / NOXI / "Expert_video/11.mp4"
        p.unlink()
        p.with_suffix("").mkdir()
        for i in range(1, 751):
            (p.with_suffix("") / f"{i}.png").write_bytes(b"")
        return "PNG frame folder has 750 frames, expected 751"
    if case == "missing audio":
        (root / "val/Audio_files" / NOXI / "Novice_video/11.wav").unlink()
        return "Novice_video/11.wav: audio not found"
    if case == "missing emotion csv":
        _emo(root).unlink()
        return "P1/11.csv: emotion CSV not found"
    if case == "missing 3dmm":
        _tdmm(root).unlink()
        return "Expert_video/11.npy: 3DMM .npy not found"
    if case == "emotion 24 columns":
        _write_emo(_emo(root), np.zeros((751, 24)))
        return "P1/11.csv: emotion CSV has shape (751, 24), expected (frames, 25)"
    if case == "emotion 750 frames":
        _write_emo(_emo(root), np.zeros((750, 25)))
        return "P1/11.csv: emotion CSV has 750 frames, expected 751"
    if case == "emotion NaN":
        a = np.zeros((751, 25))
        a[7, 3] = np.nan
        _write_emo(_emo(root), a)
        return "emotion CSV has NaN/inf (first at frame 7, column 3)"
    if case == "emotion garbage":
        _emo(root).write_text("a,b\n1,x\n")
        return "P1/11.csv: emotion CSV has non-numeric"
    if case == "3dmm wrong dims":
        np.save(_tdmm(root), np.zeros((751, 57), np.float32))
        return "Expert_video/11.npy: 3DMM array has shape (751, 57), expected (frames, 58)"
    if case == "3dmm 750 frames":
        np.save(_tdmm(root), np.zeros((1, 750, 58), np.float32))
        return "3DMM array has 750 frames, expected 751"
    if case == "3dmm NaN":
        a = np.zeros((751, 58), np.float32)
        a[5, 52] = np.inf
        np.save(_tdmm(root), a)
        return "3DMM array has NaN/inf (first at frame 5, dim 52)"
    if case == "3dmm not npy":
        _tdmm(root).write_bytes(b"not a numpy file")
        return "Expert_video/11.npy: cannot read 3DMM .npy"
    if case == "matrix not square":
        np.save(root / "neighbour_emotion_val.npy", np.ones((4, 3)))
        return "neighbour_emotion_val.npy: appropriateness matrix has shape (4, 3), expected square (4, 4)"
    if case == "matrix wrong size":
        np.save(root / "neighbour_emotion_val.npy", np.eye(3))
        return "neighbour_emotion_val.npy: appropriateness matrix is 3x3, expected 4x4"
    if case == "matrix empty row":
        m = np.eye(4)
        m[2, 2] = 0
        np.save(root / "neighbour_emotion_val.npy", m)
        return "appropriateness row 2 (item val/2) is empty"
    if case == "matrix not binary":
        np.save(root / "neighbour_emotion_val.npy", np.eye(4) * 0.5)
        return "must hold only 0/1 values"
    if case == "row pointing nowhere":
        with open(root / "val.csv", "a") as fh:
            fh.write(f"2,{NOXI}/Expert_video/99,{NOXI}/Novice_video/99\n")
        return "Expert_video/99.mp4: video not found"
    if case == "unknown person":
        with open(root / "test.csv", "a") as fh:
            fh.write(f"2,{NOXI}/Teacher_video/1,{NOXI}/Novice_video/21\n")
        return "test.csv:4: unknown person name 'Teacher_video'"
    if case == "malformed clip path":
        with open(root / "test.csv", "a") as fh:
            fh.write(f"2,{NOXI}/1,{NOXI}/Novice_video/21\n")
        return "is not <site>/<session>/<person>/<clip>"
    if case == "csv without columns":
        (root / "train.csv").write_text("a,b\n1,2\n")
        return "train.csv: header ['a', 'b'] lacks speaker_path/listener_path"
    raise AssertionError(case)


CASES = ["missing video", "empty video", "png folder wrong count", "missing audio", "missing emotion csv",
         "missing 3dmm", "emotion 24 columns", "emotion 750 frames", "emotion NaN", "emotion garbage",
         "3dmm wrong dims", "3dmm 750 frames", "3dmm NaN", "3dmm not npy", "matrix not square",
         "matrix wrong size", "matrix empty row", "matrix not binary", "row pointing nowhere", "unknown person",
         "malformed clip path", "csv without columns"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_named_error_nonzero_nothing_written(cli, root, tmp_path, case):
    expected = _break(case, root)
    work = tmp_path / "work"
    res = cli("prepare", "react", "--root", root, "--work", work)
    assert res.exit_code != 0
    flat = " ".join(res.output.split())
    assert expected in flat, res.output
    assert "Traceback" not in res.output
    assert _nothing_written(work)


def test_skip_bad_drops_item_and_its_mirror(cli, root, tmp_path):
    _tdmm(root).unlink()  # val item 0 (NoXI pair) and its mirror (item 2) become bad
    work = tmp_path / "work"
    res = cli("prepare", "react", "--root", root, "--work", work, "--skip-bad")
    assert res.exit_code == 0, res.output
    val = [p for p in read_manifest(work / "manifests/pairs.jsonl") if p.split == "val"]
    assert len(val) == 2 and all("RECOLA" in p.speaker for p in val)
    assert np.load(work / "appropriate/val.npy").shape == (2, 2)
    report = json.loads((work / "reports/prepare-react.json").read_text())
    assert len(report["skipped_items"]) == 2 and "3DMM .npy not found" in report["skipped_items"][0]


def test_truncated_store_from_interrupted_run(cli, root, tmp_path):
    work = tmp_path / "work"
    assert cli("prepare", "react", "--root", root, "--work", work).exit_code == 0
    h5 = work / "features/react-precomputed.h5"
    h5.write_bytes(h5.read_bytes()[:2000])
    (work / "manifests/arrays.jsonl").unlink()
    res = cli("prepare", "react", "--root", root, "--work", work)
    assert res.exit_code != 0
    assert "react-precomputed.h5: HDF5 store file is unreadable or truncated" in " ".join(res.output.split())


def test_debug_shows_traceback(root, tmp_path):
    from typer.testing import CliRunner

    from reactcli.cli.main import app
    from reactcli.errors import InputError

    shutil.rmtree(root / "val/Emotion")
    res = CliRunner().invoke(app, ["--debug", "prepare", "react", "--root", str(root), "--work", str(tmp_path / "w")])
    assert res.exit_code != 0 and isinstance(res.exception, InputError)


# ---------------------------------------------------------------- identity maps
def _identity_map(tmp_path, mapping) -> str:
    path = tmp_path / "identities.json"
    path.write_text(json.dumps(mapping) if not isinstance(mapping, str) else mapping)
    return str(path)


def test_identity_map_joins_persons_across_sessions(cli, root, tmp_path):
    from reactcli.manifest.items import load_items

    work = tmp_path / "work"
    noxi, recola = "NoXI/065_2016-04-14_Nottingham/Expert_video", "RECOLA/group-1/P25"
    # a participant key for one person, a clip-id key for one clip of the other
    ids = _identity_map(tmp_path, {noxi: "host", "RECOLA/group-1/P25/11": "host", "Unknown/x/y": "z"})
    res = cli("prepare", "react", "--root", root, "--work", work, "--identities", ids)
    assert res.exit_code == 0, res.output
    assert "identities: 4 persons" in res.output  # Expert, Novice, P26 + the joined host (P25 of train/test keeps its own)
    kept = json.loads((work / "manifests/identities.json").read_text())
    assert kept == {noxi: "host", "RECOLA/group-1/P25/11": "host"}  # entries of other corpora dropped
    val = load_items(work, "val")
    listeners = [p.listener for p in val.pairs]
    assert listeners[2].startswith(noxi) and listeners[3] == "RECOLA/group-1/P25/11"
    assert val.listener_id(2) == val.listener_id(3)
    assert len({val.listener_id(i) for i in range(4)}) == 3
    train = load_items(work, "train")  # clip 1 of P25 is not in the map: its own identity
    assert train.resolver("RECOLA/group-1/P25/1") == recola and train.resolver(f"{noxi}/1") == "host"
    # prepared again without a map: the old one must not linger
    assert cli("prepare", "react", "--root", root, "--work", work).exit_code == 0
    assert not (work / "manifests/identities.json").exists()
    val = load_items(work, "val")
    assert len({val.listener_id(i) for i in range(4)}) == 4


@pytest.mark.parametrize("content, expected", [
    ("{not json", "identities.json: not valid JSON"),
    ('["a", "b"]', "identities.json: expected a JSON object"),
    ('{"RECOLA/group-1/P25": ""}', "identities.json: entry 'RECOLA/group-1/P25': expected a non-empty identity string"),
    ('{"Other/corpus/person": "a"}', "identities.json: none of its 1 keys (e.g. 'Other/corpus/person') names a participant"),
])
def test_bad_identity_map_named_error_nothing_written(cli, root, tmp_path, content, expected):
    work = tmp_path / "work"
    res = cli("prepare", "react", "--root", root, "--work", work, "--identities", _identity_map(tmp_path, content))
    assert res.exit_code != 0
    assert expected in " ".join(res.output.split()), res.output
    assert "Traceback" not in res.output
    assert _nothing_written(work)
