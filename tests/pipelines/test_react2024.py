"""pipelines/react2024 runs unchanged on a tiny synthetic REACT-layout corpus (shrunk configs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.pipelines.test_recipes import FRAMES, shrink

ROOT = Path(__file__).resolve().parents[2]
HERE = ROOT / "pipelines" / "react2024"


@pytest.mark.slow  # ~25 CLI processes (each imports torch): 2-5 minutes on 2 cores
@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_react2024_recipe_end_to_end(tmp_path):
    reactcli = Path(sys.executable).with_name("reactcli")
    corpus, work, configs = tmp_path / "corpus", tmp_path / "work", tmp_path / "configs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([str(reactcli), "synth", "--out", str(corpus), "--sessions", "5", "--minutes", "0.2",
                    "--clip-seconds", "4", "--no-video", "--patterns", "2"], check=True, capture_output=True, env=env)
    configs.mkdir()
    for cfg in sorted((ROOT / "reactcli" / "recipes" / "react2024").glob("*.yaml")):
        recipe = yaml.safe_load(cfg.read_text())
        (configs / cfg.name).write_text(yaml.safe_dump(shrink(recipe)))
    cmd = ["make", "-C", str(HERE), "all", f"ROOT={corpus}", f"WORK={work}", f"CONFIGS={configs}",
           f"REACTCLI={reactcli}", f"FRAMES={FRAMES}", f"CLIP_FRAMES={FRAMES + 1}", "K=2", "GEN_STEPS=2",
           "RENDER_ITEMS=1", "DEVICE=cpu", "PREPARE_ARGS=--no-require-media"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    runs = ("reactface", "perfrdiff-generic", "perfrdiff-personalised", "mime", "random", "meanseq", "meanfr", "gt")
    for run in runs:
        data = json.loads((work / "metrics" / f"{run}-test.json").read_text())
        assert data["K"] == 2 and data["T"] == FRAMES
    summary = pd.read_csv(work / "metrics" / "summary.csv")
    assert sorted(summary["run"]) == sorted(runs)
    assert not (work / "metrics" / "summary.txt").exists()
    assert list((work / "videos" / "reactface" / "test").glob("*.mp4"))
    # a second `make` has nothing left to do (every step is a file target)
    again = subprocess.run(cmd + ["-q"], capture_output=True, text=True, env=env)
    assert again.returncode in (0, 1)
