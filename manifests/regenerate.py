"""Regenerate what ``manifests/`` holds from the code (see manifests/README.md).

    python manifests/regenerate.py            # rewrite the files
    python manifests/regenerate.py --check    # exit 1 naming each file that would change

Writes:

* ``manifests/schemas/<type>.schema.json`` and the package-data copy
  ``reactcli/manifest/schemas/<type>.schema.json``: the JSON Schema of every manifest format
  (:func:`reactcli.manifest.schema.all_schemas`);
* ``manifests/split-maps/synthetic.csv``: the session-to-split map of the synthetic raw corpus
  (``reactcli synth --layout raw``, any ``--sessions`` up to 12, any seed);
* ``manifests/golden/``: the manifests of a tiny synthetic corpus: ``react/`` (a REACT-layout root
  through ``prepare react`` and a ``meanseq`` baseline) and ``raw/`` (raw sessions through
  ``prepare synthetic`` and ``clip --split-map``). Machine-specific folders are written as
  ``$ROOT`` (the corpus) and ``$WORK`` (the work directory).

``tests/manifest/test_golden.py`` rebuilds all of it in a temporary folder and fails, naming the
file and line, when anything differs: a change of a manifest format must come with the
regenerated files (and, if incompatible, a new ``FORMAT_VERSION``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

#: Sessions of the synthetic raw corpus the shipped map covers.
SYNTH_SESSIONS = 12


def schema_files() -> dict[str, str]:
    from reactcli.manifest.schema import all_schemas, schema_text

    out = {}
    for name, schema in all_schemas().items():
        text = schema_text(schema)
        out[f"manifests/schemas/{name}.schema.json"] = text
        out[f"reactcli/manifest/schemas/{name}.schema.json"] = text
    return out


def synthetic_split_map(tmp: Path) -> dict[str, str]:
    """The split of every session of the synthetic raw corpus (from its truth file)."""
    import json

    from reactcli.synthetic import SynthConfig, synthesize

    root = tmp / "synth-map"
    synthesize(root, config=SynthConfig(layout="raw", sessions=SYNTH_SESSIONS, minutes=0.05, video=False,
                                        clip_seconds=1, workers=1))
    truth = json.loads((root / "truth" / "truth.json").read_text(encoding="utf-8"))
    return {f"{s['site']}/{s['session']}": s["split"] for s in truth["sessions"]}


def _collect(work: Path, subs: dict[str, str], prefix: str) -> dict[str, str]:
    out = {}
    for p in sorted((work / "manifests").iterdir()):
        if not p.is_file() or not (p.name.endswith(".jsonl") or p.name == "identities.json"):
            continue
        text = p.read_text(encoding="utf-8")
        for real, name in subs.items():
            text = text.replace(real, name)
        out[f"{prefix}/{p.name}"] = text
    return out


def golden_files(tmp: Path, split_map: Path) -> dict[str, str]:
    """Build the tiny corpora in ``tmp`` and return their manifests (machine paths replaced)."""
    from reactcli.corpora.clip_stage import ClipStageConfig, run_clip
    from reactcli.corpora.raw import RawConfig, prepare_synthetic
    from reactcli.corpora.react import ReactConfig, prepare_react
    from reactcli.generation.baselines import generate_baseline
    from reactcli.synthetic import SynthConfig, synthesize
    from reactcli.synthetic.react_layout import write_tiny_react

    files: dict[str, str] = {}
    # REACT layout: clips, pairs, official appropriateness, the store index, a generated run
    root, work = (tmp / "react-root").resolve(), (tmp / "react-work").resolve()
    write_tiny_react(root, pairs_per_split=2, frames=61, seed=0)
    prepare_react(root, work, ReactConfig(frames=61))
    generate_baseline(work, "meanseq", split="val", num_samples=2, frames=60)
    files.update(_collect(work, {str(work): "$WORK", str(root): "$ROOT"}, "manifests/golden/react"))
    # raw sessions: sessions (with who is who), then clips and pairs cut with the split map
    root, work = (tmp / "raw-root").resolve(), (tmp / "raw-work").resolve()
    synthesize(root, config=SynthConfig(layout="raw", sessions=3, minutes=0.05, size=32, clip_seconds=1,
                                        workers=1, recurring_experts=1, seed=0))
    prepare_synthetic(root, work, RawConfig(split_rule="cycle", split_cycle=("train",),
                                            identities=str(root / "truth" / "identities.json")))
    run_clip(work, ClipStageConfig(clip_seconds=1.0, stride_seconds=1.0, frames=26, split_map=str(split_map)))
    files.update(_collect(work, {str(work): "$WORK", str(root): "$ROOT"}, "manifests/golden/raw"))
    return files


def expected(tmp: Path) -> dict[str, str]:
    """Every file regenerate.py owns (path relative to the repository root -> text)."""
    from reactcli.manifest.splitmap import write_split_map

    files = schema_files()
    map_path = write_split_map(tmp / "synthetic.csv", synthetic_split_map(tmp))
    files["manifests/split-maps/synthetic.csv"] = map_path.read_text(encoding="utf-8")
    files.update(golden_files(tmp, map_path))
    return files


def owned(repo: Path) -> set[str]:
    """The files regenerate.py wrote last time (so that a file no longer made is noticed)."""
    found = set()
    for pattern in ("manifests/schemas/*.json", "reactcli/manifest/schemas/*.json", "manifests/golden/*/*"):
        found |= {p.relative_to(repo).as_posix() for p in repo.glob(pattern)}
    return found


def differences(repo: Path, files: dict[str, str]) -> list[str]:
    """One line per file that differs from ``files`` (first differing line named), is missing or extra."""
    out = []
    for rel, text in sorted(files.items()):
        path = repo / rel
        if not path.is_file():
            out.append(f"{rel}: missing")
            continue
        have = path.read_text(encoding="utf-8")
        if have != text:
            a, b = have.splitlines(), text.splitlines()
            line = next((k for k, (x, y) in enumerate(zip(a, b), 1) if x != y), min(len(a), len(b)) + 1)
            want = b[line - 1] if line <= len(b) else "<end of file>"
            got = a[line - 1] if line <= len(a) else "<end of file>"
            out.append(f"{rel}:{line}: expected {want[:160]!r}, found {got[:160]!r}")
    for rel in sorted(owned(repo) - set(files)):
        out.append(f"{rel}: no longer generated (delete it)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 if a file would change")
    args = ap.parse_args(argv)
    if not args.check:  # the schemas first: the split map and the records are validated against them
        _write(schema_files())
    with tempfile.TemporaryDirectory() as tmp:
        files = expected(Path(tmp))
    diffs = differences(REPO, files)
    if args.check:
        for d in diffs:
            print(d)
        return 1 if diffs else 0
    for rel in sorted(owned(REPO) - set(files)):
        (REPO / rel).unlink()
    _write(files)
    return 0


def _write(files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = REPO / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {rel}")


if __name__ == "__main__":
    sys.exit(main())
