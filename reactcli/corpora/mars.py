"""Reader of the REACT 2025/2026 (MARS) layout (data.md): variable-length sessions at 30 fps.

Layout, per split folder (``train``, ``val``, ``test``; those present are read)::

    <root>/<split>/video-face-crop/<speaker|listener>/session<k>/<clip>.mp4   (preferred video)
    <root>/<split>/video-raw/<speaker|listener>/session<k>/<clip>.mp4         (fallback video)
    <root>/<split>/audio/<speaker|listener>/session<k>/<clip>.wav
    <root>/<split>/facial-attributes/<speaker|listener>/session<k>/<clip>.npy (T x 25 emotion)
    <root>/<split>/coefficients/<speaker|listener>/session<k>/<clip>.npy      (T x 58 3DMM)

Each ``session<k>/<clip>`` recorded on both sides is one two-person *recording*, written as a
:class:`SessionRecord` with id ``MARS/<split>-session<k>-<clip>`` (speaker first, then listener)
and the folder's split, so the generic ``reactcli clip`` stage can cut it. Appropriateness in
MARS is by session: every listener reaction of the same ``session<k>`` counts as appropriate for
a speaker clip of that session; :func:`reactcli.manifest.ids.group_of` recovers
``<split>/session<k>`` from a session id and the clip stage uses it to write
``manifests/appropriate_<split>.jsonl`` for MARS work dirs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import reactcli
from reactcli.corpora.common import ValidationReport
from reactcli.corpora.raw import RawSummary, read_session_identities, write_session_manifests
from reactcli.errors import InputError
from reactcli.io import write_json
from reactcli.manifest import ParticipantRecord, SessionRecord
from reactcli.manifest.ids import mars_session_id
from reactcli.media.probe import probe_video

log = logging.getLogger(__name__)

SIDES = ("speaker", "listener")
#: (kind in the manifest, folder, extension); the first video folder that has the clip wins.
VIDEO_DIRS = ("video-face-crop", "video-raw")
FILES = {"audio": ("audio", ".wav"), "emotion": ("facial-attributes", ".npy"), "tdmm": ("coefficients", ".npy")}


@dataclass
class MarsConfig:
    """Options of ``reactcli prepare mars``."""

    splits: tuple[str, ...] = ("train", "val", "test")
    """Split folders to read (missing ones are skipped with a warning)."""
    probe: bool = True
    """Probe each video for frame rate and length."""
    skip_bad: bool = False
    """Leave recordings with a missing side or file out (listed in the report) instead of failing."""
    identities: str | None = None
    """JSON map participant ``MARS/<split>-session<k>-<clip>/<speaker|listener>`` (or clip id) ->
    identity, for persons who recur across recordings (:mod:`reactcli.manifest.identities`);
    kept as ``manifests/identities.json``."""


def _find(split_dir: Path, side: str, session: str, clip: str) -> tuple[dict[str, Path], list[str]]:
    files: dict[str, Path] = {}
    problems: list[str] = []
    for d in VIDEO_DIRS:
        p = split_dir / d / side / session / f"{clip}.mp4"
        if p.is_file():
            files["video"] = p
            break
    else:
        problems.append(f"{split_dir / VIDEO_DIRS[0] / side / session / (clip + '.mp4')}: video not found (also tried {VIDEO_DIRS[1]})")
    for kind, (folder, ext) in FILES.items():
        p = split_dir / folder / side / session / f"{clip}{ext}"
        if p.is_file():
            files[kind] = p
        elif kind == "audio":
            problems.append(f"{p}: audio not found")
    for kind, p in files.items():
        if p.stat().st_size == 0:
            problems.append(f"{p}: {kind} file is empty (0 bytes)")
    return files, problems


def prepare_mars(
    root: str | os.PathLike,
    work: str | os.PathLike,
    config: MarsConfig | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> RawSummary:
    """Read a MARS root into ``<work>/manifests/sessions.jsonl`` (+ ``reports/prepare-mars.json``)."""
    cfg = config or MarsConfig()
    root, work = Path(root).absolute(), Path(work)  # absolute media paths: any cwd reads them
    if not root.is_dir():
        raise InputError(f"{root}: MARS root folder not found")
    report = ValidationReport()
    sessions: list[SessionRecord] = []
    for split in cfg.splits:
        sdir = root / split
        if not sdir.is_dir():
            log.warning("%s: split folder not found; split %s skipped", sdir, split)
            continue
        keys: set[tuple[str, str]] = set()
        for side in SIDES:
            for folder in (*VIDEO_DIRS, FILES["audio"][0]):
                for f in (sdir / folder / side).glob("session*/*"):
                    if f.is_file() and f.suffix in (".mp4", ".wav"):
                        keys.add((f.parent.name, f.stem))
        todo = sorted(keys)
        for n, (session, clip) in enumerate(todo, 1):
            sid = mars_session_id(split, session, clip)
            parts, problems, fps_dur = [], [], []
            for side in SIDES:
                files, probs = _find(sdir, side, session, clip)
                problems += probs
                if cfg.probe and "video" in files and not probs:
                    try:
                        fps_dur.append(probe_video(files["video"]))
                    except InputError as exc:
                        problems.append(str(exc))
                parts.append(ParticipantRecord(
                    person=side, video=str(files["video"]) if "video" in files else None,
                    audio=str(files["audio"]) if "audio" in files else None,
                    sidecars={k: str(v) for k, v in files.items() if k in ("emotion", "tdmm")}))
            if problems:
                for p in problems:
                    report.add(p)
                report.skipped_items.append(f"{sid}: {problems[0]}")
            else:
                sessions.append(SessionRecord(
                    id=sid, corpus="mars", site="MARS", participants=parts, split=split,
                    duration=min(d for _, d in fps_dur) if fps_dur else None,
                    fps=fps_dur[0][0] if fps_dur else None))
            if on_progress:
                on_progress(f"read MARS {split}", n, len(todo))
    if not sessions and not report.skipped_items:
        raise InputError(f"{root}: no MARS recordings found (expected <split>/video-face-crop/speaker/session<k>/<clip>.mp4)")
    if report.errors and not cfg.skip_bad:
        more = f" (+{len(report.errors) - 1} more problems)" if len(report.errors) > 1 else ""
        raise InputError(f"{report.errors[0]}{more}; fix the files or rerun with --skip-bad")
    summary = RawSummary(sessions=len(sessions), skipped=list(report.skipped_items), errors=list(report.errors))
    for s in sessions:
        summary.splits[s.split] = summary.splits.get(s.split, 0) + 1
    idmap = None
    if cfg.identities and sessions:  # fail before writing anything
        idmap, summary.identities = read_session_identities(cfg.identities, sessions)
    report_path = work / "reports" / "prepare-mars.json"
    write_json(report_path, {"root": str(root), "corpus": "mars", "config": asdict(cfg),
                             "reactcli_version": reactcli.__version__, "sessions": summary.sessions,
                             "splits": summary.splits, "skipped": summary.skipped, "errors": summary.errors,
                             "identities": summary.identities})
    summary.report_path = str(report_path)
    if not sessions:
        raise InputError(f"{root}: every MARS recording was bad; see {report_path}")
    write_session_manifests(work, sessions, idmap)
    return summary
