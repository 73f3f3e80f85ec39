"""Reader of the REACT 2023/2024 clip layout (see ``shared/spec/data.md``).

``prepare_react(root, work)`` turns a REACT root into:

- ``manifests/clips.jsonl``: one :class:`ClipRecord` per clip referenced by a split CSV, with
  its video (mp4 or PNG folder), audio and sidecar feature files;
- ``manifests/pairs.jsonl``: one :class:`PairRecord` per item, in the challenge's item order
  (mirrored splits: items ``0..n-1`` as listed, ``n..2n-1`` with roles swapped);
- ``manifests/appropriate_<split>.jsonl`` and ``appropriate/<split>.npy`` from the official
  ``neighbour_emotion_<split>.npy`` where present (validated: square, right size, 0/1, no empty row);
- the shipped 25-d emotion and 58-d 3DMM of every clip in the HDF5 store (features ``emotion``
  and ``tdmm``), skipping clips already stored (rerun = resume).

Validation problems (missing files, wrong shapes, 750 instead of 751 frames, NaNs, unknown person
names, rows pointing nowhere, bad matrices) are collected per item. Without ``skip_bad`` any
problem raises one ``InputError`` that names the first file and counts the rest, and nothing is
written; with ``skip_bad`` the bad items (and their mirrored twins) are dropped, the matrices are
reduced to the kept items, and ``reports/prepare-react.json`` lists what was skipped and why.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

import reactcli
from reactcli.corpora.common import ValidationReport, load_emotion_csv, load_tdmm_npy, sidecar_settings
from reactcli.manifest.items import check_matrix
from reactcli.errors import InputError
from reactcli.io import file_stamp, save_npy, write_json
from reactcli.manifest import AppropriateRecord, ClipRecord, PairRecord, read_manifest, write_manifest
from reactcli.manifest.identities import count_identities, read_identity_map, write_identity_map
from reactcli.storage import FeatureStore

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")

# Speaker side -> P1, listener side -> P2 (the 2024 release renames Emotion persons this way).
PERSON_ALIASES: dict[str, str] = {
    "Expert_video": "P1",
    "Novice_video": "P2",
    "P25": "P1",
    "P26": "P2",
    "P41": "P1",
    "P42": "P2",
    "P45": "P1",
    "P46": "P2",
    "FC1": "P1",
    "FC2": "P2",
    "P1": "P1",
    "P2": "P2",
}


@dataclass
class ReactConfig:
    """Options of ``reactcli prepare react``."""

    frames: int = 751
    """Frames per clip in the release (751 for REACT 2023/24; models use the first 750)."""
    fps: float = 25.0
    """Frame rate of the clips."""
    splits: tuple[str, ...] | None = None
    """Splits to read. ``None``: those of train, val and test whose CSV exists (a missing one is
    logged); an explicit list: each must have its CSV, or prepare stops naming the file."""
    mirror: bool = True
    """Mirror a split (items n..2n-1 = roles swapped) when no neighbour matrix tells its size."""
    skip_bad: bool = False
    """Drop bad items (listed in reports/prepare-react.json) instead of failing."""
    import_features: bool = True
    """Import the shipped emotion CSVs and 3DMM .npy files into the HDF5 store."""
    require_media: bool = True
    """Require every clip's video and audio to exist."""
    identities: str | None = None
    """JSON map participant (or clip id) -> identity, for persons who recur across sessions
    (:mod:`reactcli.manifest.identities`); kept as ``manifests/identities.json``."""


@dataclass
class ReactSummary:
    clips: int = 0
    pairs: dict[str, int] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)
    mirrored: dict[str, bool] = field(default_factory=dict)
    imported: int = 0
    reimported: int = 0
    """Of ``imported``: clips whose stored arrays came from other file contents (now replaced)."""
    already_stored: int = 0
    skipped_items: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    appropriate: dict[str, dict[str, float]] = field(default_factory=dict)
    report_path: str | None = None
    identities: int | None = None
    """Distinct identities among the participants (None: no identity map given)."""


def person_alias(person: str, where: str) -> str:
    if person not in PERSON_ALIASES:
        known = ", ".join(sorted(PERSON_ALIASES))
        raise InputError(f"{where}: unknown person name {person!r} (expected one of {known})")
    return PERSON_ALIASES[person]


def _split_clip_path(clip: str, where: str) -> tuple[str, str, str, str]:
    parts = clip.strip().strip("/").split("/")
    if len(parts) != 4 or not all(parts):
        raise InputError(f"{where}: clip path {clip!r} is not <site>/<session>/<person>/<clip>")
    return parts[0], parts[1], parts[2], parts[3]


def read_split_csv(path: Path) -> list[tuple[int, str, str]]:
    """Rows of a split CSV as (line number, speaker_path, listener_path), read with pandas.

    The header must name ``speaker_path`` and ``listener_path`` (other columns, such as the
    challenge's unnamed index, are ignored). A row naming the same speaker/listener pair as an
    earlier row is an error naming both lines: the official neighbour matrices are indexed by row,
    so dropping a row would shift every later item."""
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: split CSV is empty (expected header index,speaker_path,listener_path)") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise InputError(f"{path}: cannot read split CSV ({' '.join(str(exc).split())})") from exc
    header = [str(h).strip() for h in df.columns]
    if "speaker_path" not in header or "listener_path" not in header:
        raise InputError(f"{path}: header {header} lacks speaker_path/listener_path columns")
    df.columns = header
    out: list[tuple[int, str, str]] = []
    first: dict[tuple[str, str], int] = {}
    for i, (spk, lis) in enumerate(zip(df["speaker_path"], df["listener_path"])):
        n = i + 2  # line number: the header is line 1
        cells = [v for v in df.iloc[i] if isinstance(v, str) and v.strip()]  # NaN: a field the row lacks
        if not cells:
            continue  # blank line
        if not isinstance(spk, str) or not isinstance(lis, str) or not spk.strip() or not lis.strip():
            raise InputError(f"{path}:{n}: row has {len(cells)} columns, expected {len(header)}")
        key = (spk.strip().strip("/"), lis.strip().strip("/"))
        if key in first:
            raise InputError(f"{path}:{n}: duplicate row: the same speaker/listener pair as line {first[key]} "
                             f"({key[0]} -> {key[1]}); remove one")
        first[key] = n
        out.append((n, spk.strip(), lis.strip()))
    return out


class _Finder:
    """Locates the files of one clip in a split folder, trying the P1/P2 alias too."""

    def __init__(self, split_dir: Path):
        self.split_dir = split_dir

    def _candidates(self, kind: str, site: str, session: str, person: str, clip: str, ext: str, alias: str):
        for p in (person, alias):
            yield self.split_dir / kind / site / session / p / f"{clip}{ext}"

    def find(self, kind: str, ext: str, site, session, person, clip, alias) -> Path | None:
        for c in self._candidates(kind, site, session, person, clip, ext, alias):
            if c.exists():
                return c
        return None

    def expected(self, kind: str, ext: str, site, session, person, clip) -> Path:
        return self.split_dir / kind / site / session / person / f"{clip}{ext}"


def _video_path(finder: _Finder, site, session, person, clip, alias, frames: int) -> tuple[Path | None, str | None]:
    mp4 = finder.find("Video_files", ".mp4", site, session, person, clip, alias)
    if mp4 is not None:
        if mp4.stat().st_size == 0:
            return None, f"{mp4}: video file is empty (0 bytes)"
        return mp4, None
    folder = finder.find("Video_files", "", site, session, person, clip, alias)
    if folder is not None and folder.is_dir():
        n = len(list(folder.glob("*.png")))
        if n != frames:
            return None, f"{folder}: PNG frame folder has {n} frames, expected {frames} (1.png..{frames}.png)"
        return folder, None
    exp = finder.expected("Video_files", ".mp4", site, session, person, clip)
    return None, f"{exp}: video not found (expected an .mp4 or a folder of PNG frames)"


def _drop_stale_matrices(work: Path, pairs: list[PairRecord], official: dict[str, np.ndarray], changed: bool) -> None:
    """Remove the appropriateness matrices of an earlier prepare (or ``appropriate build``) that
    no longer fit: of a split with no official matrix now, whose items changed or whose features
    were re-imported. (A split with an official matrix gets it written afresh.)"""
    old_path = work / "manifests" / "pairs.jsonl"
    old: dict[str, list[tuple[str, str]]] = {}
    if old_path.is_file():
        try:
            for p in read_manifest(old_path, PairRecord):
                old.setdefault(p.split, []).append((p.speaker, p.listener))
        except InputError:
            old = {}
    new: dict[str, list[tuple[str, str]]] = {}
    for p in pairs:
        new.setdefault(p.split, []).append((p.speaker, p.listener))
    for f in sorted((work / "appropriate").glob("*.npy")) if (work / "appropriate").is_dir() else []:
        split = f.stem
        if split in official:
            continue
        if changed or old.get(split) != new.get(split):
            log.warning("%s: removed, it belongs to an earlier corpus or other features of split %s "
                        "(run `reactcli appropriate build --split %s` for the new one)", f, split, split)
            f.unlink()
            (work / "manifests" / f"appropriate_{split}.jsonl").unlink(missing_ok=True)


def prepare_react(
    root: str | os.PathLike,
    work: str | os.PathLike,
    config: ReactConfig | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> ReactSummary:
    """Read a REACT 2023/2024 root into manifests + the feature store of ``work``."""
    cfg = config or ReactConfig()
    root, work = Path(root).absolute(), Path(work)  # absolute media paths: any cwd reads them
    if not root.is_dir():
        raise InputError(f"{root}: REACT root folder not found")
    report = ValidationReport()
    summary = ReactSummary()

    clips: dict[str, ClipRecord] = {}
    clip_errors: dict[str, list[str]] = {}
    split_rows: dict[str, list[tuple[int, str, str]]] = {}

    explicit = cfg.splits is not None
    for split in cfg.splits if explicit else SPLITS:
        csv_path = root / f"{split}.csv"
        if not csv_path.is_file():
            if explicit:
                raise InputError(f"{csv_path}: split CSV not found, and split {split!r} was asked for "
                                 f"(--splits {','.join(cfg.splits)}); give only the splits this root has")
            log.warning("%s: split CSV not found; split %s skipped (name the splits with --splits to make this an error)",
                        csv_path, split)
            continue
        rows = read_split_csv(csv_path)
        split_rows[split] = rows
        finder = _Finder(root / split)
        for rowno, spk, lis in rows:
            for clip_path in (spk, lis):
                cid = clip_path.strip("/")
                if cid in clips or cid in clip_errors:
                    continue
                where = f"{csv_path}:{rowno}"
                errs: list[str] = []
                try:
                    site, session, person, clip = _split_clip_path(clip_path, where)
                    alias = person_alias(person, where)
                except InputError as exc:
                    clip_errors[cid] = [str(exc)]
                    continue
                video, verr = _video_path(finder, site, session, person, clip, alias, cfg.frames)
                if verr and cfg.require_media:
                    errs.append(verr)
                audio = finder.find("Audio_files", ".wav", site, session, person, clip, alias)
                if audio is None and cfg.require_media:
                    errs.append(f"{finder.expected('Audio_files', '.wav', site, session, person, clip)}: audio not found")
                elif audio is not None and audio.stat().st_size == 0:
                    errs.append(f"{audio}: audio file is empty (0 bytes)")
                emo = finder.find("Emotion", ".csv", site, session, person, clip, alias)
                if emo is None:
                    errs.append(
                        f"{finder.expected('Emotion', '.csv', site, session, alias, clip)}: emotion CSV not found "
                        f"(also tried person name {person!r})"
                    )
                tdmm = finder.find("3D_FV_files", ".npy", site, session, person, clip, alias)
                if tdmm is None:
                    errs.append(f"{finder.expected('3D_FV_files', '.npy', site, session, person, clip)}: 3DMM .npy not found")
                if errs:
                    clip_errors[cid] = errs
                    continue
                sidecars = {"emotion": str(emo), "tdmm": str(tdmm)}
                clips[cid] = ClipRecord(
                    id=cid, site=site, session=f"{site}/{session}", person=person, index=int(clip) if clip.isdigit() else 0,
                    start=0.0, end=cfg.frames / cfg.fps, fps=cfg.fps, num_frames=cfg.frames, split=split,
                    video=str(video) if video else None, audio=str(audio) if audio else None, sidecars=sidecars,
                )

    if not split_rows:
        raise InputError(f"{root}: no split CSV found (expected train.csv, val.csv or test.csv)")

    # Load and validate the shipped features (needed for validation even if already stored).
    store = FeatureStore(work)
    feats: dict[str, dict[str, np.ndarray]] = {}
    todo = [c for c in clips.values()]
    for n, rec in enumerate(todo, 1):
        try:
            emo = load_emotion_csv(rec.sidecars["emotion"], cfg.frames)
            td = load_tdmm_npy(rec.sidecars["tdmm"], cfg.frames)
            feats[rec.id] = {"emotion": emo, "tdmm": td}
        except InputError as exc:
            clip_errors.setdefault(rec.id, []).append(str(exc))
        if on_progress:
            on_progress("validate clips", n, len(todo))
    for cid in clip_errors:
        clips.pop(cid, None)
        feats.pop(cid, None)

    # Items in challenge order, then the neighbour matrices.
    pairs: list[PairRecord] = []
    appropriate_records: list[AppropriateRecord] = []
    matrices: dict[str, np.ndarray] = {}
    matrix_errors: list[str] = []  # reported after the item errors, which usually explain them
    for split, rows in split_rows.items():
        n = len(rows)
        mpath = root / f"neighbour_emotion_{split}.npy"
        matrix = None
        if mpath.is_file():
            try:
                matrix = np.load(mpath, allow_pickle=False)
            except (OSError, ValueError, EOFError) as exc:
                matrix_errors.append(f"{mpath}: cannot read appropriateness matrix ({exc})")
        mirrored = cfg.mirror
        if matrix is not None and matrix.ndim == 2 and matrix.shape[0] in (n, 2 * n) and n > 0:
            mirrored = matrix.shape[0] == 2 * n
        items: list[tuple[int, str, str, bool]] = [(r, s.strip("/"), l.strip("/"), False) for r, s, l in rows]
        if mirrored:
            items += [(r, l.strip("/"), s.strip("/"), True) for r, s, l in rows]
        if matrix is not None:
            err = check_matrix(matrix, mpath, len(items), split)
            if err:
                matrix_errors.append(err)
                matrix = None
        keep = []
        for idx, (r, s, l, mir) in enumerate(items):
            bad = [e for c in (s, l) for e in clip_errors.get(c, [])]
            if bad:
                for e in bad:
                    if e not in report.errors:
                        report.add(e)
                report.skipped_items.append(f"{split}/{idx}: {bad[0]}")
            else:
                keep.append(idx)
        if mirrored:  # drop an item and its mirror together, so the order stays (pairs, swapped)
            kept = set(keep)
            base_keep = sorted({i % n for i in keep if (i % n) in kept and (i % n + n) in kept})
            keep = base_keep + [i + n for i in base_keep]
        new_index = {old: new for new, old in enumerate(keep)}
        for old in keep:
            r, s, l, mir = items[old]
            pairs.append(PairRecord(id=f"{split}/{new_index[old]}", split=split, index=new_index[old], speaker=s, listener=l, mirrored=mir, row=r))
        summary.pairs[split] = len(rows)
        summary.items[split] = len(keep)
        summary.mirrored[split] = mirrored
        if matrix is not None and keep:
            sub = matrix[np.ix_(keep, keep)].astype(np.uint8)
            empty = np.flatnonzero(sub.sum(1) == 0)
            if empty.size:
                matrix_errors.append(f"{mpath}: after dropping bad items, row {int(empty[0])} of the appropriateness matrix is empty")
            matrices[split] = sub
            for i in range(len(keep)):
                appropriate_records.append(AppropriateRecord(
                    split=split, index=i, item=f"{split}/{i}", appropriate=np.flatnonzero(sub[i]).tolist(), source="official",
                ))
            counts = sub.sum(1)
            summary.appropriate[split] = {"mean": float(counts.mean()), "min": int(counts.min()), "max": int(counts.max())}

    summary.errors = list(report.errors) + matrix_errors
    report.errors = summary.errors
    summary.skipped_items = list(report.skipped_items)
    if report.errors and not cfg.skip_bad:
        first = report.errors[0]
        more = f" (+{len(report.errors) - 1} more problems)" if len(report.errors) > 1 else ""
        raise InputError(f"{first}{more}; fix the files or rerun with --skip-bad to drop bad items")

    # Write: store first (resumable), then manifests (atomic), then matrices.
    used = {p.speaker for p in pairs} | {p.listener for p in pairs}
    idmap = read_identity_map(cfg.identities, used) if cfg.identities else None  # fail before writing
    clip_list = [clips[c] for c in sorted(used)]
    summary.clips = len(clip_list)
    if cfg.import_features:
        settings = sidecar_settings(cfg.fps)
        # a clip is imported when an array is missing, or was stored from other file contents or
        # with other settings (a corrected CSV, a re-synthesised corpus, another --root)
        why = {c.id: {name: store.stale(c.id, name, settings, {name: c.sidecars[name]}) for name in ("emotion", "tdmm")}
               for c in clip_list}
        pending = [c for c in clip_list if any(v is not None for v in why[c.id].values())]
        summary.already_stored = len(clip_list) - len(pending)
        if pending:
            with store.writer("react-precomputed") as w:
                for n, rec in enumerate(pending, 1):
                    for name, arr in feats[rec.id].items():
                        if why[rec.id][name] is None or w.has(rec.id, name):
                            continue
                        old = store.index.get((rec.id, name))
                        if old is not None:
                            log.info("%s: %s changed since it was stored (%s); imported again", rec.id, name, why[rec.id][name])
                        w.write(rec.id, name, arr, fps=cfg.fps, extractor="precomputed",
                                config={"fps": float(cfg.fps), "max_pad_frames": 1}, settings=settings,
                                inputs={name: file_stamp(rec.sidecars[name])},
                                version=old.version + 1 if old is not None else 0)
                    if any(store.index.get((rec.id, k)) is not None for k in ("emotion", "tdmm")):
                        summary.reimported += 1
                    summary.imported += 1
                    if on_progress:
                        on_progress("import features", n, len(pending))
        store.refresh()
    mdir = work / "manifests"
    _drop_stale_matrices(work, pairs, matrices, changed=summary.reimported > 0)
    write_identity_map(work, idmap)  # None: removes a stale map of an earlier prepare
    if idmap is not None:
        summary.identities = count_identities(idmap, used)
    write_manifest(mdir / "clips.jsonl", clip_list)
    write_manifest(mdir / "pairs.jsonl", pairs)
    for split, m in matrices.items():
        save_npy(work / "appropriate" / f"{split}.npy", m)
        write_manifest(mdir / f"appropriate_{split}.jsonl", [a for a in appropriate_records if a.split == split])
    report_path = work / "reports" / "prepare-react.json"
    write_json(report_path, {
        "root": str(root), "config": cfg.__dict__, "reactcli_version": reactcli.__version__,
        "clips": summary.clips, "items": summary.items, "mirrored": summary.mirrored,
        "errors": summary.errors, "skipped_items": summary.skipped_items, "appropriate": summary.appropriate,
        "identities": summary.identities,
    })
    summary.report_path = str(report_path)
    return summary
