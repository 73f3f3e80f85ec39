"""An installed wheel carries what the demo needs: the shipped recipes are package data, found
without the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_the_recipes_and_the_demo_reads_them_outside_the_source_tree(tmp_path):
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                          "-w", str(tmp_path / "dist"), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("reactcli-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = sorted(n for n in names if n.startswith("reactcli/recipes/") and n.endswith(".yaml"))
    assert "reactcli/recipes/synthetic/reactface.yaml" in shipped and "reactcli/recipes/react2024/reactface.yaml" in shipped
    assert len(shipped) == len(list((ROOT / "reactcli" / "recipes").glob("*/*.yaml")))
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    code = ("import reactcli; from reactcli.demo import DemoConfig, load_demo_recipe; "
            "r, src = load_demo_recipe('perfrdiff-gafrg', DemoConfig()); print(reactcli.__file__); print(src)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(target)})
    assert out.returncode == 0, out.stderr[-2000:]
    module, source = out.stdout.split()
    assert module.startswith(str(target)) and source.startswith(str(target)) and source.endswith("perfrdiff-gafrg.yaml")
    # the manifests' JSON Schemas are package data too: an installed wheel validates a work directory
    schemas = sorted(n for n in names if n.startswith("reactcli/manifest/schemas/") and n.endswith(".schema.json"))
    assert len(schemas) == len(list((ROOT / "manifests" / "schemas").glob("*.schema.json"))) >= 8
    work = tmp_path / "w" / "manifests"
    work.mkdir(parents=True)
    (work / "pairs.jsonl").write_text('{"type": "pair", "id": "val/0", "split": "val", "index": -1, '
                                      '"speaker": "a", "listener": "b"}\n')
    code = ("import sys; from reactcli.manifest.schema import validate_work; from reactcli.errors import InputError\n"
            "try:\n    validate_work(sys.argv[1])\nexcept InputError as exc:\n    print(exc)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "w")], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(target)})
    assert out.returncode == 0 and "pairs.jsonl:1: field 'index': expected an integer >= 0, got -1" in out.stdout, out.stderr[-2000:]
