"""The recipes reactcli ships: YAML training recipes, one folder per set, installed with the package.

- ``synthetic/``: small models for the built-in synthetic corpus (what ``reactcli demo`` and
  ``make -C pipelines/synthetic`` train);
- ``react2024/``: the papers' sizes, for the REACT 2024 corpus (``make -C pipelines/react2024``).

A recipe is named ``<set>/<name>`` (``synthetic/reactface``): ``reactcli train --config
synthetic/reactface`` reads it, ``reactcli recipes`` lists them and ``reactcli recipes
synthetic/reactface`` prints one, to copy and edit. This folder is the only copy: the Makefile
recipes, the demo and the tests all read it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["recipe_path", "recipe_names"]


def _root() -> Path:
    return Path(str(resources.files(__name__)))


def recipe_names() -> list[str]:
    """Every shipped recipe as ``<set>/<name>``."""
    root = _root()
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.glob("*/*.yaml"))


def recipe_path(name: str) -> Path | None:
    """The file of shipped recipe ``<set>/<name>`` (``.yaml`` optional), or None."""
    if name.count("/") != 1 or name.startswith("/") or ".." in name:
        return None
    path = _root() / (name if name.endswith(".yaml") else f"{name}.yaml")
    return path if path.is_file() else None
