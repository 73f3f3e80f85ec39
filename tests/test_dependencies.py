"""Every dependency pyproject.toml declares is put to use: a runtime dependency is imported by the
package, a dev dependency by the tests (or is a tool the tests run). A dependency nothing imports
is a download every user pays for nothing (issue 31, item 9)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: distribution name -> the module it is imported as, where they differ
MODULE = {"pyyaml": "yaml", "pillow": "PIL", "opencv-python-headless": "cv2", "imageio-ffmpeg": "imageio_ffmpeg",
          "ffmpeg-python": "ffmpeg", "kaldi-native-fbank": "kaldi_native_fbank", "face-alignment": "face_alignment",
          "scikit-image": "skimage"}
#: dev tools used as programs / plugins, not imported: (file that uses it, how)
TOOLS = {"import-linter": ("tests/test_architecture.py", "lint-imports"),
         "pytest-xdist": ("Makefile", "pytest -n")}


def _imports(folder: Path) -> set[str]:
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def _name(spec: str) -> str:
    return re.split(r"[<>=!~;\[ ]", spec)[0].lower()


def test_every_declared_dependency_is_used():
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = [_name(s) for s in project["dependencies"]]
    dev = [_name(s) for s in project["optional-dependencies"]["dev"]]
    assert "pandas" in runtime and "jsonschema" in runtime and "torch" in runtime and "pytest" in dev
    package, tests = _imports(ROOT / "reactcli"), _imports(ROOT / "tests")
    unused = [d for d in runtime if MODULE.get(d, d).replace("-", "_") not in package]
    assert not unused, f"pyproject.toml dependencies that reactcli never imports: {unused}"
    for d in dev:
        if d in TOOLS:
            where, needle = TOOLS[d]
            assert needle in (ROOT / where).read_text(encoding="utf-8"), f"dev dependency {d} is not used by {where}"
            continue
        assert MODULE.get(d, d).replace("-", "_") in tests | package, f"dev dependency {d} is imported by no test"
