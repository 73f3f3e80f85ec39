"""The HDF5 feature store.

Layout: ``<work>/features/*.h5``, one file per shard (a stage run, or one shard of a parallel
run). Inside a file, one dataset per (clip, feature) at key ``<clip id>/<feature>`` (clip ids
contain ``/``, so they become HDF5 groups), with attributes: ``fps``, ``feature``, ``extractor``,
``config`` (JSON), ``reactcli_version``, ``crc32`` of the array bytes and ``complete``.

Atomicity and resume:
- a writer fills ``<name>.h5.partial`` and renames it to ``<name>.h5`` only when its shard is
  done, so a file named ``*.h5`` is always complete;
- each dataset gets ``complete=1`` (and its CRC) as the last thing written, then the file is
  flushed; a rerun reopens the partial file, keeps the datasets that are complete and whose CRC
  verifies, and drops the rest; a partial file that HDF5 cannot open (the process died inside a
  write) is discarded with a warning, never trusted;
- committed files are never modified again: a rerun that has more to write starts a new shard
  file (``<name>-1.h5``, ...). What is "already done" is the union over committed files.

Reading: :class:`FeatureStore` opens files lazily and keeps one handle per file *per process*
(handles are dropped after ``fork``), so one store object can be shared by DataLoader workers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import zlib
from pathlib import Path
from typing import Any, Iterable, Iterator

import h5py
import numpy as np

import reactcli
from reactcli.errors import BusyError, InputError
from reactcli.io import file_lock, process_lock, stamp_changed
from reactcli.manifest.io import read_manifest, write_manifest
from reactcli.manifest.records import ArrayRef

log = logging.getLogger(__name__)

FEATURES_DIR = "features"
ARRAYS_MANIFEST = "manifests/arrays.jsonl"


def crc32(array: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(array).tobytes()) & 0xFFFFFFFF


def dataset_key(clip: str, feature: str) -> str:
    return f"{clip.strip('/')}/{feature}"


def _iter_datasets(h5: h5py.File) -> Iterator[tuple[str, h5py.Dataset]]:
    found: list[tuple[str, h5py.Dataset]] = []
    h5.visititems(lambda name, obj: found.append((name, obj)) if isinstance(obj, h5py.Dataset) else None)
    yield from found


def _json_attr(ds: h5py.Dataset, name: str) -> Any:
    raw = ds.attrs.get(name)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return None


def _ref_from_dataset(store_rel: str, key: str, ds: h5py.Dataset) -> ArrayRef:
    a = ds.attrs
    stamps = _json_attr(ds, "inputs") or {}
    return ArrayRef(
        clip=str(a.get("clip", key.rsplit("/", 1)[0])),
        feature=str(a.get("feature", key.rsplit("/", 1)[-1])),
        store=store_rel,
        key=key,
        fps=float(a.get("fps", 25.0)),
        shape=[int(x) for x in ds.shape],
        dtype=str(ds.dtype),
        extractor=str(a.get("extractor", "")),
        settings=str(a.get("settings", "")),
        inputs={k: str(v.get("sha1", "")) for k, v in stamps.items() if isinstance(v, dict)},
        version=int(a.get("version", 0)),
    )


def _verified(ds: h5py.Dataset, full: bool) -> bool:
    if not int(ds.attrs.get("complete", 0)):
        return False
    if full:
        return crc32(ds[()]) == int(ds.attrs.get("crc32", -1))
    return True


class ShardWriter:
    """Writes the datasets of one shard into ``<dir>/<name>.h5`` (atomic, resumable).

    Use as a context manager; on a clean exit the partial file is committed (renamed). On an
    exception the partial file stays on disk so that a rerun resumes from it.
    """

    def __init__(self, path: str | os.PathLike, work: str | os.PathLike | None = None,
                 stage_settings: str | None = None):
        self.stage_settings = stage_settings
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self.work = Path(work) if work is not None else self.path.parent.parent
        self._h5: h5py.File | None = None
        self._lock: contextlib.ExitStack | None = None
        self.written: list[ArrayRef] = []

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> "ShardWriter":
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(commit=exc_type is None)

    def open(self) -> None:
        # one process per store file: a second writer of the same file (two `prepare` at once)
        # stops with the first's pid instead of writing into its partial file
        rel = self._rel().replace("/", "_").replace(os.sep, "_")
        self._lock = contextlib.ExitStack()
        try:
            self._lock.enter_context(process_lock(self.work / "locks" / f"store-{rel}.lock", f"store file {self.partial}"))
            self._open_checked()
        except BaseException:
            self._lock.close()
            raise

    def _open_checked(self) -> None:
        try:
            self._open()
        except BlockingIOError:
            raise BusyError(f"{self.partial} is being written by another process; wait for it to end") from None
        except OSError as exc:
            if exc.filename is not None:
                raise
            # h5py's messages do not name the file: name it, keep errno (ENOSPC, EACCES ...)
            err = exc.errno if isinstance(exc.errno, int) else None
            raise OSError(err, " ".join(str(exc).split()), str(self.partial)) from exc

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            raise InputError(f"{self.path}: shard already committed; a new shard file is needed")
        if self.partial.exists():
            try:
                self._h5 = h5py.File(self.partial, "a")
                theirs = self._h5.attrs.get("stage_settings")
                if self.stage_settings is not None and theirs is not None and str(theirs) != self.stage_settings:
                    log.warning("discarding partial store %s: written with other settings", self.partial)
                    self._h5.close()
                    self._h5 = None
                    self.partial.unlink()
                else:
                    self._drop_incomplete()
            except (OSError, RuntimeError, KeyError) as exc:
                log.warning("discarding unreadable partial store %s (%s)", self.partial, exc)
                if self._h5 is not None:
                    with contextlib.suppress(Exception):
                        self._h5.close()
                self.partial.unlink()
                self._h5 = None
        if self._h5 is None:
            self._h5 = h5py.File(self.partial, "w")
            self._h5.attrs["reactcli_version"] = reactcli.__version__
            if self.stage_settings is not None:
                self._h5.attrs["stage_settings"] = self.stage_settings

    def _drop_incomplete(self) -> None:
        assert self._h5 is not None
        bad = [k for k, ds in _iter_datasets(self._h5) if not _verified(ds, full=True)]
        for k in bad:
            log.warning("dropping incomplete dataset %s in %s", k, self.partial)
            del self._h5[k]
        self._h5.flush()

    def close(self, commit: bool = True) -> None:
        if self._h5 is None:
            return
        try:
            self._h5.flush()
            self._h5.close()
            self._h5 = None
            if commit:
                os.replace(self.partial, self.path)
        finally:
            self._h5 = None
            if self._lock is not None:
                self._lock.close()
                self._lock = None

    # -- content ---------------------------------------------------------------------------
    def keys(self) -> set[str]:
        assert self._h5 is not None
        return {k for k, _ in _iter_datasets(self._h5)}

    def has(self, clip: str, feature: str) -> bool:
        assert self._h5 is not None
        key = dataset_key(clip, feature)
        return key in self._h5 and _verified(self._h5[key], full=False)

    def write(
        self,
        clip: str,
        feature: str,
        array: np.ndarray,
        *,
        fps: float,
        extractor: str = "",
        config: dict[str, Any] | None = None,
        attrs: dict[str, Any] | None = None,
        dtype: str | None = "float32",
        settings: str = "",
        inputs: dict[str, dict[str, Any]] | None = None,
        version: int = 0,
    ) -> ArrayRef:
        """Write one array; marks it complete and flushes before returning.

        ``settings`` is the fingerprint of what determines the values, ``inputs`` the stamps
        (:func:`reactcli.io.file_stamp`) of the files it was computed from, ``version`` its write
        generation (see :class:`ArrayRef`)."""
        assert self._h5 is not None, "writer is not open"
        arr = np.asarray(array)
        if dtype is not None:
            arr = arr.astype(dtype, copy=False)
        key = dataset_key(clip, feature)
        if key in self._h5:
            del self._h5[key]
        ds = self._h5.create_dataset(key, data=arr)
        ds.attrs["clip"] = clip
        ds.attrs["feature"] = feature
        ds.attrs["fps"] = float(fps)
        ds.attrs["extractor"] = extractor
        ds.attrs["config"] = json.dumps(config or {}, sort_keys=True, default=str)
        ds.attrs["reactcli_version"] = reactcli.__version__
        ds.attrs["settings"] = settings
        ds.attrs["inputs"] = json.dumps(inputs or {}, sort_keys=True)
        ds.attrs["version"] = int(version)
        for k, v in (attrs or {}).items():
            ds.attrs[k] = v
        ds.attrs["crc32"] = crc32(arr)
        ds.attrs["complete"] = 1
        self._h5.flush()
        ref = _ref_from_dataset(self._rel(), key, ds)
        self.written.append(ref)
        return ref

    def _rel(self) -> str:
        try:
            return str(self.path.relative_to(self.work))
        except ValueError:
            return str(self.path)


class FeatureStore:
    """All committed shard files of one work directory, read lazily.

    ``FeatureStore(work)`` indexes ``<work>/features/*.h5``; ``read(clip, feature)`` returns a
    numpy array. Safe to pass to DataLoader workers: file handles are per process.
    """

    def __init__(self, work: str | os.PathLike):
        self.work = Path(work)
        self.dir = self.work / FEATURES_DIR
        self._index: dict[tuple[str, str], ArrayRef] | None = None
        self._handles: dict[str, h5py.File] = {}
        self._checked: set[tuple[str, str]] = set()  # arrays whose CRC this process verified
        self._pid = os.getpid()

    # -- index -----------------------------------------------------------------------------
    def files(self) -> list[Path]:
        return sorted(self.dir.glob("*.h5")) if self.dir.is_dir() else []

    def scan(self) -> list[ArrayRef]:
        """ArrayRefs of every complete dataset in every committed file (sorted, deterministic)."""
        refs: list[ArrayRef] = []
        for f in self.files():
            try:
                with h5py.File(f, "r") as h5:
                    for key, ds in _iter_datasets(h5):
                        if _verified(ds, full=False):
                            refs.append(_ref_from_dataset(str(f.relative_to(self.work)), key, ds))
            except (OSError, RuntimeError, KeyError, ValueError) as exc:
                raise InputError(
                    f"{f}: HDF5 store file is unreadable or truncated ({' '.join(str(exc).split())}); delete it and "
                    f"rerun the stage that wrote it (`reactcli verify --work {self.work}` lists every damaged file)"
                ) from exc
        refs.sort(key=lambda r: (r.clip, r.feature, r.store))
        return refs

    @property
    def index(self) -> dict[tuple[str, str], ArrayRef]:
        """(clip, feature) -> the copy that is read: the highest ``version``, then the first in
        (clip, feature, store file) order."""
        if self._index is None:
            manifest = self.work / ARRAYS_MANIFEST
            refs = read_manifest(manifest, ArrayRef) if manifest.is_file() else self.scan()
            self._index = _current(refs)
        return self._index

    def refresh(self, write: bool = True) -> list[ArrayRef]:
        """Rescan the files and (by default) rewrite ``manifests/arrays.jsonl``.

        The rescan and the rewrite hold an exclusive lock on the work directory's manifest, so
        processes that commit files at the same time (``make -j``, local shards, Slurm tasks)
        never overwrite the manifest with a scan made before another's commit."""
        if not write:
            refs = self.scan()
            self._index = _current(refs)
        else:
            with file_lock(self.work / ARRAYS_MANIFEST):
                refs = self.scan()
                self._index = _current(refs)
                # one record per (clip, feature): the copy that is read (superseded ones stay in
                # their files they are listed by `scan`)
                write_manifest(self.work / ARRAYS_MANIFEST,
                               sorted(self._index.values(), key=lambda r: (r.clip, r.feature)))
        return refs

    def stale(self, clip: str, feature: str, settings: str | None = None,
              files: dict[str, str | os.PathLike] | None = None) -> str | None:
        """Why the stored ``(clip, feature)`` cannot be reused (None: it can; "missing": none stored).

        ``settings`` is the fingerprint the caller would write (a stored array with another,
        non-empty one is "settings"); ``files`` the input files by kind, compared with the stamps
        recorded at write time (a changed, added or removed input is "inputs: <kind> <path>")."""
        ref = self.index.get((clip, feature))
        if ref is None:
            return "missing"
        if settings is not None and ref.settings and ref.settings != settings:
            return "settings"
        if files:
            stamps = json.loads(self.attrs_of(ref).get("inputs") or "{}")
            if stamps:
                for kind, path in sorted(files.items()):
                    if kind not in stamps or stamp_changed(stamps[kind], path):
                        return f"inputs: {kind} {path}"
        return None

    def has(self, clip: str, feature: str) -> bool:
        return (clip, feature) in self.index

    def features(self) -> set[str]:
        return {f for _, f in self.index}

    def clips(self, feature: str | None = None) -> list[str]:
        return sorted({c for c, f in self.index if feature is None or f == feature})

    # -- reading ---------------------------------------------------------------------------
    def _handle(self, store_rel: str) -> h5py.File:
        if os.getpid() != self._pid:  # forked into a worker: never reuse the parent's handles
            self._handles = {}
            self._pid = os.getpid()
        h = self._handles.get(store_rel)
        if h is None:
            path = self.work / store_rel
            try:
                h = h5py.File(path, "r")
            except (OSError, FileNotFoundError) as exc:
                raise InputError(f"{path}: cannot open HDF5 store ({exc})") from exc
            self._handles[store_rel] = h
        return h

    def ref(self, clip: str, feature: str) -> ArrayRef:
        try:
            return self.index[(clip, feature)]
        except KeyError:
            raise InputError(
                f"feature {feature!r} of clip {clip!r} is not in the store {self.dir} "
                f"(run `reactcli extract` or `prepare` for it)"
            ) from None

    def read(self, clip: str, feature: str, frames: slice | None = None) -> np.ndarray:
        """The stored array (or ``frames`` of it). The first read of each array in a process
        checks its CRC32 against the one stored at write time; a mismatch, or an array HDF5
        cannot read, is an :class:`InputError` naming the array and its file."""
        ref = self.ref(clip, feature)
        path = self.work / ref.store
        what = f"{path}: array {ref.key!r} (clip {clip!r}, feature {feature!r})"
        try:
            ds = self._handle(ref.store)[ref.key]
            if (ref.store, ref.key) not in self._checked:
                full = ds[()]
                want = int(ds.attrs.get("crc32", -1))
                if want >= 0 and crc32(full) != want:
                    raise InputError(f"{what} is corrupt: its CRC32 {crc32(full):08x} differs from the stored "
                                     f"{want:08x}; run `reactcli verify --work {self.work}` and redo the stage that wrote it")
                self._checked.add((ref.store, ref.key))
                return full[frames] if frames is not None else full
            return ds[frames] if frames is not None else ds[()]
        except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise InputError(f"{what} cannot be read ({exc}); the file is damaged: run "
                             f"`reactcli verify --work {self.work}` and redo the stage that wrote it") from exc

    def attrs(self, clip: str, feature: str) -> dict[str, Any]:
        return self.attrs_of(self.ref(clip, feature))

    def attrs_of(self, ref: ArrayRef) -> dict[str, Any]:
        """Attributes of the dataset ``ref`` points at (any committed copy, not only the indexed one)."""
        try:
            return dict(self._handle(ref.store)[ref.key].attrs)
        except (OSError, RuntimeError, KeyError) as exc:
            raise InputError(f"{self.work / ref.store}: array {ref.key!r} cannot be read ({exc}); the file is "
                             f"damaged: run `reactcli verify --work {self.work}`") from exc

    def close(self) -> None:
        for h in self._handles.values():
            try:
                h.close()
            except Exception:  # pragma: no cover - best effort
                pass
        self._handles = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = {}
        state["_checked"] = set()
        return state

    # -- writing ---------------------------------------------------------------------------
    def new_shard_path(self, name: str) -> Path:
        """``features/<name>.h5``, or ``<name>-<k>.h5`` if a committed file of that name exists.

        An existing ``.partial`` of the chosen name is resumed by the writer.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        k = 0
        while True:
            stem = name if k == 0 else f"{name}-{k}"
            path = self.dir / f"{stem}.h5"
            if not path.exists():
                return path
            k += 1

    def writer(self, name: str) -> ShardWriter:
        return ShardWriter(self.new_shard_path(name), work=self.work)


def _current(refs: Iterable[ArrayRef]) -> dict[tuple[str, str], ArrayRef]:
    index: dict[tuple[str, str], ArrayRef] = {}
    for r in refs:
        have = index.get((r.clip, r.feature))
        if have is None or r.version > have.version:
            index[(r.clip, r.feature)] = r
    return index


def verify_store(work: str | os.PathLike, on_progress=None) -> dict[str, Any]:
    """Check every array of every committed store file of ``work`` against its stored CRC32.

    Returns ``{"files", "arrays", "superseded", "problems": [one line per problem]}``; a problem
    names the file and the array (or the file, when HDF5 cannot open it). Also checks that
    ``manifests/arrays.jsonl`` names only arrays that exist."""
    work = Path(work)
    store = FeatureStore(work)
    problems: list[str] = []
    seen: list[ArrayRef] = []
    files = store.files()
    n_arrays = 0
    for k, f in enumerate(files, 1):
        try:
            with h5py.File(f, "r") as h5:
                for key, ds in _iter_datasets(h5):
                    n_arrays += 1
                    try:
                        if not int(ds.attrs.get("complete", 0)):
                            problems.append(f"{f}: array {key!r} is incomplete (never marked complete)")
                            continue
                        data = ds[()]
                        want = int(ds.attrs.get("crc32", -1))
                        if want >= 0 and crc32(data) != want:
                            problems.append(f"{f}: array {key!r} is corrupt (CRC32 {crc32(data):08x}, stored {want:08x})")
                            continue
                        seen.append(_ref_from_dataset(str(f.relative_to(work)), key, ds))
                    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as exc:
                        problems.append(f"{f}: array {key!r} cannot be read ({exc})")
        except (OSError, RuntimeError) as exc:
            problems.append(f"{f}: HDF5 store file cannot be opened ({exc})")
        if on_progress:
            on_progress("verify store files", k, len(files))
    manifest = work / ARRAYS_MANIFEST
    if manifest.is_file():
        have = {(r.store, r.key) for r in seen}
        try:
            for r in read_manifest(manifest, ArrayRef):
                if (r.store, r.key) not in have and not any(p.startswith(f"{work / r.store}:") for p in problems):
                    problems.append(f"{manifest}: names array {r.key!r} in {r.store}, which is not in the store")
        except InputError as exc:
            problems.append(str(exc))
    current = _current(seen)
    return {"files": len(files), "arrays": n_arrays, "superseded": len(seen) - len(current), "problems": problems}


def write_arrays(
    work: str | os.PathLike,
    name: str,
    items: Iterable[tuple[str, str, np.ndarray, dict[str, Any]]],
) -> list[ArrayRef]:
    """Convenience: write ``(clip, feature, array, attrs)`` tuples into one new shard."""
    store = FeatureStore(work)
    with store.writer(name) as w:
        for clip, feature, arr, kw in items:
            w.write(clip, feature, arr, **kw)
    return w.written
