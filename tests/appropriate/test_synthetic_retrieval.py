"""Issue 3's done-criterion: `appropriate build` at its defaults recovers the synthetic truth.

The synthetic corpus (reactcli.synthetic) knows which speaker items behaved alike (same
speaking pattern); the builder only sees the stored emotion features. Precision and recall of the
built matrices against ``<root>/truth/appropriate_<split>.npy`` must both reach 0.9 on every split.
Everything runs through the real CLI (synth -> prepare react -> appropriate build/check/sweep).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from reactcli.appropriate import precision_recall
from reactcli.appropriate.build import sweep
from reactcli.cli.main import app

SPLITS = ("train", "val", "test")


def _invoke(args: list[str]) -> str:
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, f"{' '.join(args)}\n{res.output}"
    return res.output


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """8 sessions x 1 minute, no video: 16 clip pairs -> 32 mirrored items (train 16, val 8, test 8)."""
    base = tmp_path_factory.mktemp("retrieval")
    root, work = base / "corpus", base / "W"
    _invoke(["synth", "--out", str(root), "--layout", "react", "--sessions", "8", "--minutes", "1",
             "--no-video", "--audio-rate", "8000", "--seed", "0"])
    _invoke(["prepare", "react", "--root", str(root), "--work", str(work), "--no-require-media"])
    for split in SPLITS:
        _invoke(["appropriate", "build", "--work", str(work), "--split", split])
    return root, work


def _pairs(work, split: str) -> list[dict]:
    rows = [json.loads(x) for x in (work / "manifests" / "pairs.jsonl").read_text().splitlines() if x.strip()]
    rows = [r for r in rows if r.get("type", "pair") == "pair" and r["split"] == split]
    return sorted(rows, key=lambda r: r["index"])


def test_truth_is_in_the_prepared_item_order(built) -> None:
    """Truth row i is prepared item i: items 0..n-1 as listed, n..2n-1 mirrored (roles swapped)."""
    root, work = built
    truth = json.loads((root / "truth" / "truth.json").read_text())
    for split in SPLITS:
        clips = [c for c in truth["clips"] if c["split"] == split]
        n = len(clips)
        pairs = _pairs(work, split)
        assert len(pairs) == 2 * n == np.load(root / "truth" / f"appropriate_{split}.npy").shape[0]
        want = [(c["speaker_path"], c["listener_path"]) for c in clips]
        want += [(lis, spk) for spk, lis in want]
        assert [(p["speaker"], p["listener"]) for p in pairs] == want
        assert [p["mirrored"] for p in pairs] == [False] * n + [True] * n


def test_default_build_recovers_the_truth(built) -> None:
    root, work = built
    for split in SPLITS:
        a = np.load(work / "appropriate" / f"{split}.npy")
        t = np.load(root / "truth" / f"appropriate_{split}.npy")
        pr = precision_recall(a, t)
        print(f"{split}: n={a.shape[0]} precision {pr['precision']:.3f} recall {pr['recall']:.3f} F1 {pr['f1']:.3f}")
        assert pr["tp"] > 0, f"{split}: no true neighbour found at all"
        assert pr["precision"] >= 0.9 and pr["recall"] >= 0.9, (split, pr)
        # the CLI's check reads the same numbers
        out = _invoke(["appropriate", "check", "--work", str(work), "--split", split,
                       "--truth", str(root / "truth" / f"appropriate_{split}.npy")])
        assert f"precision {pr['precision']:.3f}" in out


def test_sweep_lists_the_other_settings(built) -> None:
    """The sweep reuses the cached distances; its 'auto' row is the default build."""
    root, work = built
    t = np.load(root / "truth" / "appropriate_train.npy")
    rows = sweep(work, "train", t)
    for r in rows:
        print(f"train sweep {r['rule']:>18}: P {r['precision']:.3f} R {r['recall']:.3f} F1 {r['f1']:.3f} per item {r['mean_per_item']:.1f}")
    auto = rows[0]
    default = precision_recall(np.load(work / "appropriate" / "train.npy"), t)
    assert auto["rule"].startswith("auto") and auto["f1"] == pytest.approx(default["f1"])
    # each row's numbers are consistent with its counts
    for r in rows:
        assert r["precision"] == pytest.approx(r["tp"] / max(r["tp"] + r["fp"], 1) if r["tp"] + r["fp"] else 1.0)
