"""The golden manifests of a tiny synthetic corpus (manifests/golden/): a change of a manifest
format, a schema or the synthetic split map fails here until `python manifests/regenerate.py`
rewrites them (and the change is reviewed in the diff)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _regenerate():
    spec = importlib.util.spec_from_file_location("manifests_regenerate", ROOT / "manifests" / "regenerate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_golden_manifests_are_what_the_code_writes(tmp_path):
    regen = _regenerate()
    files = regen.expected(tmp_path)  # with REACTCLI_VALIDATE_MANIFESTS: every record written is schema-checked
    assert {"manifests/golden/raw/sessions.jsonl", "manifests/golden/raw/identities.json",
            "manifests/golden/react/arrays.jsonl", "manifests/golden/react/generated-meanseq-val.jsonl",
            "manifests/golden/react/appropriate_val.jsonl", "manifests/split-maps/synthetic.csv"} <= set(files)
    diffs = regen.differences(ROOT, files)
    assert not diffs, "manifest formats changed; review and run python manifests/regenerate.py:\n" + "\n".join(diffs)


def test_the_check_names_a_changed_line(tmp_path):
    regen = _regenerate()
    (tmp_path / "manifests" / "golden" / "x").mkdir(parents=True)
    (tmp_path / "manifests" / "golden" / "x" / "pairs.jsonl").write_text('{"a": 1}\n{"b": 2}\n')
    diffs = regen.differences(tmp_path, {"manifests/golden/x/pairs.jsonl": '{"a": 1}\n{"b": 3}\n',
                                         "manifests/schemas/pair.schema.json": "{}\n"})
    assert diffs == ["manifests/golden/x/pairs.jsonl:2: expected '{\"b\": 3}', found '{\"b\": 2}'",
                     "manifests/schemas/pair.schema.json: missing"]
