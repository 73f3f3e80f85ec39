"""The package's layering (pyproject.toml [tool.importlinter], docs/architecture.md) holds, and an
upward import breaks it: data flows one way, corpora -> manifests -> features -> models ->
generation -> metrics / render."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter not installed (pip install -e '.[dev]')")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_layering_contract_is_kept():
    res = _lint(ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "1 kept, 0 broken" in res.stdout


def test_an_upward_import_breaks_the_contract(tmp_path):
    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "reactcli", copy / "reactcli", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    target = copy / "reactcli" / "manifest" / "ids.py"  # a bottom layer reaching up into generation
    target.write_text(target.read_text() + "\n\ndef _upward():\n    from reactcli.generation import run  # noqa\n")
    res = _lint(copy)
    assert res.returncode != 0
    assert "BROKEN" in res.stdout and "reactcli.manifest.ids -> reactcli.generation.run" in res.stdout


def test_no_import_cycles_between_modules():
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("reactcli")
    # Tarjan's strongly connected components over module imports (lazy ones included)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    assert cycles == []
