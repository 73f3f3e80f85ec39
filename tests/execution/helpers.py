"""Helpers shared by the sharding tests (local and Slurm)."""

from reactcli.corpora.react import ReactConfig, prepare_react
from reactcli.storage import FeatureStore


def prepared_work(root, tmp_path, name):
    """A work dir with the tiny REACT layout prepared but no features imported yet."""
    work = tmp_path / name
    prepare_react(root, work, ReactConfig(import_features=False))
    return work


def snapshot(work):
    """Every stored array by (clip, feature), and the bytes of the arrays manifest."""
    store = FeatureStore(work)
    refs = store.refresh()
    arrays = {(r.clip, r.feature): store.read(r.clip, r.feature) for r in refs}
    return arrays, (work / "manifests/arrays.jsonl").read_bytes()
