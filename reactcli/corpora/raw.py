"""Readers of raw (unclipped) dyadic sessions: RECOLA, NoXI and the synthetic raw corpus.

``prepare_raw(root, work, layouts, config)`` finds every session folder of a corpus root, matches
each participant's files against configurable patterns, probes the videos for frame rate and
length, and writes ``manifests/sessions.jsonl`` (one :class:`SessionRecord` per session, the
speaker side -- NoXI ``Expert``, RECOLA ``P25``/``P41``/``P45`` -- as the first participant) plus
``reports/prepare-<corpus>.json``. Clipping is a later stage (``reactcli clip``).

Default layouts (data.md, and exactly what :mod:`reactcli.synthetic` writes with
``layout="raw"``); every pattern is relative to the session folder, ``{person}`` is the
participant folder name and ``{session}`` the session folder name; a kind may list alternatives,
the first existing file wins::

    NoXI    <root>/NoXI/<sid>_<date>_<city>/{Expert,Novice}/
              video: {person}/video.mp4 | {person}_video.mp4 | {person}/{person}.mp4
              audio: {person}/audio.wav | {person}_audio.wav | {person}/{person}.wav
              emotion: {person}/emotion.csv | {person}/emotion.npy      (optional sidecar)
              tdmm:    {person}/3dmm.npy                                (optional sidecar)
    RECOLA  <root>/RECOLA/group-<g>/P<n>/   (two participant folders per group, lower number speaks)
              video: {person}/{person}.mp4;  audio: {person}/{person}.wav
              emotion: {person}/{person}_emotion.csv;  tdmm: {person}/{person}_3dmm.npy

Why patterns: the licensed releases are repackaged by every lab; a user whose copy names files
differently passes ``--video-pattern`` etc. instead of renaming files. A session whose required
file (video, audio) matches none of the patterns is *unmatched* and reported by name with the
paths that were tried; without ``skip_bad`` the first problem raises one ``InputError`` (and
nothing is written), with ``skip_bad`` those sessions are left out and listed in the report.

Splits: raw corpora have no official split, so sessions get one deterministically
(``split_rule``): ``cycle`` walks the sessions in sorted-id order through ``split_cycle``
(default ``train,val,test,train,train``: 60/20/20), ``hash`` picks the cycle slot from a SHA-1 of
the session id (stable when sessions are added or removed), ``truth`` (synthetic corpus only)
takes the split recorded in ``truth/truth.json``. A one-entry cycle puts every session in one
split.

Identities (``identities``, ``--identities FILE``): a JSON map from participants
``<site>/<session>/<person>`` (or clip ids ``.../<clip>``) to identity names, for persons who
recur across sessions (NoXI experts). It is checked against the participants as ``reactcli clip``
will name them (:func:`reactcli.manifest.ids.participant_id`: NoXI ``Expert`` -> ``Expert_video``;
the raw folder name is accepted too and rewritten) before anything is written, and kept as
``manifests/identities.json`` in the clip ids' names, so the clipped items resolve through it;
a prepare without the option removes an old map (:mod:`reactcli.manifest.identities`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import reactcli
from reactcli.corpora.common import ValidationReport
from reactcli.errors import ConfigError, InputError
from reactcli.io import write_json
from reactcli.manifest import ParticipantRecord, SessionRecord, write_manifest
from reactcli.manifest.identities import count_identities, read_identity_map, write_identity_map
from reactcli.manifest.ids import participant_id
from reactcli.media.probe import probe_video

log = logging.getLogger(__name__)

#: Media kinds every participant must have; sidecars are optional unless required by config.
MEDIA_KINDS = ("video", "audio")
SIDECAR_KINDS = ("emotion", "tdmm")
SPLIT_RULES = ("cycle", "hash", "truth")


@dataclass
class RawLayout:
    """Where a corpus keeps its sessions and each participant's files."""

    site: str
    """Site name used in ids (``NoXI``, ``RECOLA``): session ids are ``<site>/<session folder>``."""
    session_glob: str
    """Glob of session folders relative to the root (``NoXI/*``, ``RECOLA/group-*``)."""
    persons: tuple[str, ...] | None = None
    """Fixed participant names, speaker side first (NoXI ``Expert, Novice``); ``None``:
    discover the sub-folders matching ``person_regex`` and order them by their number."""
    person_regex: str = r"P(\d+)"
    """Participant folder names when discovering (the number orders them: lowest speaks)."""
    patterns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Kind (video, audio, emotion, tdmm) -> alternative file patterns relative to the session
    folder, with ``{person}`` and ``{session}`` placeholders; the first existing file wins."""


NOXI_LAYOUT = RawLayout(
    site="NoXI",
    session_glob="NoXI/*",
    persons=("Expert", "Novice"),
    patterns={
        "video": ("{person}/video.mp4", "{person}_video.mp4", "{person}/{person}.mp4"),
        "audio": ("{person}/audio.wav", "{person}_audio.wav", "{person}/{person}.wav"),
        "emotion": ("{person}/emotion.csv", "{person}/emotion.npy"),
        "tdmm": ("{person}/3dmm.npy",),
    },
)

RECOLA_LAYOUT = RawLayout(
    site="RECOLA",
    session_glob="RECOLA/group-*",
    persons=None,
    patterns={
        "video": ("{person}/{person}.mp4",),
        "audio": ("{person}/{person}.wav",),
        "emotion": ("{person}/{person}_emotion.csv", "{person}/{person}_emotion.npy"),
        "tdmm": ("{person}/{person}_3dmm.npy",),
    },
)


@dataclass
class RawConfig:
    """Options of ``reactcli prepare recola|noxi|synthetic``."""

    split_rule: str = "cycle"
    """``cycle`` (sorted ids through ``split_cycle``), ``hash`` (SHA-1 of the id) or ``truth``
    (the synthetic corpus's recorded splits); see the module docstring."""
    split_cycle: tuple[str, ...] = ("train", "val", "test", "train", "train")
    """Split names dealt to sessions in turn (``cycle``) or by hash slot (``hash``)."""
    patterns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Per-kind pattern overrides (replace the layout's alternatives for that kind)."""
    session_glob: str | None = None
    """Override of the layout's session folder glob (relative to the root)."""
    require_sidecars: bool = False
    """Treat a missing emotion/3DMM sidecar as a problem (default: sidecars are optional)."""
    probe: bool = True
    """Probe every video for frame rate and length (needed by the clip stage's planning)."""
    skip_bad: bool = False
    """Leave unmatched or unreadable sessions out (listed in the report) instead of failing."""
    identities: str | None = None
    """JSON map participant (or clip id) -> identity, for persons who recur across sessions
    (:mod:`reactcli.manifest.identities`); kept as ``manifests/identities.json``."""


@dataclass
class RawSummary:
    """What :func:`prepare_raw` found and wrote."""

    sessions: int = 0
    """Sessions written to ``manifests/sessions.jsonl``."""
    splits: dict[str, int] = field(default_factory=dict)
    """Sessions per split."""
    skipped: list[str] = field(default_factory=list)
    """``<session id>: <first problem>`` for every session left out (``skip_bad``)."""
    errors: list[str] = field(default_factory=list)
    """Every problem found (one line each, naming the file)."""
    report_path: str | None = None
    identities: int | None = None
    """Distinct identities among the participants (None: no identity map given)."""


def _discover_persons(folder: Path, regex: str) -> list[str]:
    rx = re.compile(rf"^{regex}$")
    found = []
    for d in folder.iterdir():
        m = rx.match(d.name)
        if d.is_dir() and m:
            key = int(m.group(1)) if m.groups() and m.group(1).isdigit() else 0
            found.append((key, d.name))
    return [name for _, name in sorted(found)]


def _match(folder: Path, patterns: tuple[str, ...], person: str) -> tuple[Path | None, list[Path]]:
    tried = [folder / p.format(person=person, session=folder.name) for p in patterns]
    for t in tried:
        if t.is_file():
            return t, tried
    return None, tried


def assign_splits(ids: list[str], rule: str, cycle: tuple[str, ...], truth: dict[str, str] | None = None) -> dict[str, str]:
    """Deterministic split of each session id (see the module docstring)."""
    if not cycle:
        raise ConfigError("--split-cycle: needs at least one split name")
    if rule == "cycle":
        return {sid: cycle[k % len(cycle)] for k, sid in enumerate(sorted(ids))}
    if rule == "hash":
        return {sid: cycle[int(hashlib.sha1(sid.encode()).hexdigest(), 16) % len(cycle)] for sid in ids}
    if rule == "truth":
        if truth is None:
            raise ConfigError("--split-rule truth: only the synthetic corpus records splits (truth/truth.json)")
        missing = [s for s in ids if s not in truth]
        if missing:
            raise InputError(f"{missing[0]}: session not listed in truth/truth.json (is this a synthetic corpus?)")
        return {sid: truth[sid] for sid in ids}
    raise ConfigError(f"--split-rule {rule!r}: expected one of {', '.join(SPLIT_RULES)}")


def read_sessions(
    root: str | os.PathLike,
    layout: RawLayout,
    config: RawConfig | None = None,
    corpus: str | None = None,
    report: ValidationReport | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> list[SessionRecord]:
    """Find and validate the sessions of one layout; problems go to ``report`` (not raised).

    Splits are not assigned here (``split`` is ``None``): :func:`prepare_raw` does it over all
    layouts of a corpus at once.
    """
    cfg = config or RawConfig()
    root = Path(root).absolute()  # manifests name media by absolute paths: any cwd reads them
    report = report if report is not None else ValidationReport()
    patterns = {**layout.patterns, **{k: tuple(v) for k, v in cfg.patterns.items()}}
    for kind in MEDIA_KINDS:
        if not patterns.get(kind):
            raise ConfigError(f"layout {layout.site}: no file pattern for {kind}")
    folders = sorted(p for p in root.glob(cfg.session_glob or layout.session_glob) if p.is_dir())
    out: list[SessionRecord] = []
    for n, folder in enumerate(folders, 1):
        sid = f"{layout.site}/{folder.name}"
        problems: list[str] = []
        persons = list(layout.persons) if layout.persons else _discover_persons(folder, layout.person_regex)
        if len(persons) != 2:
            problems.append(f"{folder}: expected 2 participant folders matching {layout.person_regex!r}, found {persons}")
        parts: list[ParticipantRecord] = []
        fps_dur: list[tuple[float, float]] = []
        for person in persons if not problems else []:
            files: dict[str, Path] = {}
            for kind in (*MEDIA_KINDS, *SIDECAR_KINDS):
                pats = patterns.get(kind, ())
                path, tried = _match(folder, pats, person) if pats else (None, [])
                if path is None:
                    if kind in MEDIA_KINDS or cfg.require_sidecars:
                        problems.append(f"{sid}: no {kind} file for {person} (tried {', '.join(str(t) for t in tried)})")
                    continue
                if path.stat().st_size == 0:
                    problems.append(f"{path}: {kind} file is empty (0 bytes)")
                    continue
                files[kind] = path
            if cfg.probe and "video" in files:
                try:
                    fps_dur.append(probe_video(files["video"]))
                except InputError as exc:
                    problems.append(str(exc))
            parts.append(ParticipantRecord(
                person=person, video=str(files["video"]) if "video" in files else None,
                audio=str(files["audio"]) if "audio" in files else None,
                sidecars={k: str(v) for k, v in files.items() if k in SIDECAR_KINDS},
            ))
        if problems:
            for p in problems:
                report.add(p)
            report.skipped_items.append(f"{sid}: {problems[0]}")
        else:
            duration = min(d for _, d in fps_dur) if fps_dur else None
            fps = fps_dur[0][0] if fps_dur else None
            if fps_dur and len({round(f, 3) for f, _ in fps_dur}) > 1:
                log.warning("%s: participants' videos have different frame rates %s; each is converted", sid,
                            [f for f, _ in fps_dur])
            out.append(SessionRecord(id=sid, corpus=corpus or layout.site.lower(), site=layout.site,
                                     participants=parts, duration=duration, fps=fps))
        if on_progress:
            on_progress(f"read {layout.site} sessions", n, len(folders))
    return out


def read_session_identities(path: str | os.PathLike, sessions: list[SessionRecord]) -> tuple[dict[str, str], int]:
    """The identity map ``path`` checked against the participants of ``sessions`` (as the clip
    stage names them; raw folder names are rewritten to those), and the number of identities.

    Raises ``InputError`` naming the file when the map is malformed or names nobody of ``sessions``.
    """

    participants: list[str] = []
    aliases: dict[str, str] = {}
    for s in sessions:
        for p in s.participants:
            pid = participant_id(s, p.person)
            participants.append(pid)
            if f"{s.id}/{p.person}" != pid:
                aliases[f"{s.id}/{p.person}"] = pid
    mapping = read_identity_map(path, participants=participants, aliases=aliases)
    return mapping, count_identities(mapping, participants=participants)


def write_session_manifests(work: Path, sessions: list[SessionRecord], identities: dict[str, str] | None) -> None:
    """``manifests/sessions.jsonl`` and the identity map (``None``: an old map is removed)."""
    write_identity_map(work, identities)
    write_manifest(work / "manifests" / "sessions.jsonl", sessions)


def _truth_splits(root: Path) -> dict[str, str] | None:
    path = root / "truth" / "truth.json"
    if not path.is_file():
        return None
    try:
        truth = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: cannot read synthetic truth ({exc})") from exc
    return {f"{s['site']}/{s['session']}": s["split"] for s in truth.get("sessions", [])}


def prepare_raw(
    root: str | os.PathLike,
    work: str | os.PathLike,
    layouts: list[RawLayout],
    config: RawConfig | None = None,
    corpus: str = "raw",
    on_progress: Callable[[str, int, int], None] | None = None,
) -> RawSummary:
    """Read the raw sessions of ``root`` (all ``layouts``) into ``<work>/manifests/sessions.jsonl``."""
    cfg = config or RawConfig()
    root, work = Path(root).absolute(), Path(work)
    if not root.is_dir():
        raise InputError(f"{root}: corpus root folder not found")
    if cfg.split_rule not in SPLIT_RULES:
        raise ConfigError(f"--split-rule {cfg.split_rule!r}: expected one of {', '.join(SPLIT_RULES)}")
    report = ValidationReport()
    sessions: list[SessionRecord] = []
    for layout in layouts:
        sessions += read_sessions(root, layout, cfg, corpus, report, on_progress)
    globs = ", ".join(cfg.session_glob or lay.session_glob for lay in layouts)
    if not sessions and not report.skipped_items:
        raise InputError(f"{root}: no session folders matching {globs}")
    if report.errors and not cfg.skip_bad:
        more = f" (+{len(report.errors) - 1} more problems)" if len(report.errors) > 1 else ""
        raise InputError(f"{report.errors[0]}{more}; fix the files, set the file patterns, or rerun with --skip-bad")
    truth = _truth_splits(root) if cfg.split_rule == "truth" else None
    splits = assign_splits([s.id for s in sessions], cfg.split_rule, tuple(cfg.split_cycle), truth)
    sessions.sort(key=lambda s: s.id)
    for s in sessions:
        s.split = splits[s.id]
    summary = RawSummary(sessions=len(sessions), skipped=list(report.skipped_items), errors=list(report.errors))
    for s in sessions:
        summary.splits[s.split] = summary.splits.get(s.split, 0) + 1
    idmap = None
    if cfg.identities and sessions:  # fail before writing anything
        idmap, summary.identities = read_session_identities(cfg.identities, sessions)
    report_path = work / "reports" / f"prepare-{corpus}.json"
    write_json(report_path, {
        "root": str(root), "corpus": corpus, "config": asdict(cfg), "reactcli_version": reactcli.__version__,
        "sessions": summary.sessions, "splits": summary.splits, "skipped": summary.skipped, "errors": summary.errors,
        "identities": summary.identities,
    })
    summary.report_path = str(report_path)
    if not sessions:
        raise InputError(f"{root}: every session was bad ({len(report.skipped_items)} skipped); see {report_path}")
    write_session_manifests(work, sessions, idmap)
    return summary


def prepare_noxi(root, work, config: RawConfig | None = None, on_progress=None) -> RawSummary:
    """NoXI sessions (``<root>/NoXI/<session>/{Expert,Novice}/...``)."""
    return prepare_raw(root, work, [NOXI_LAYOUT], config, "noxi", on_progress)


def prepare_recola(root, work, config: RawConfig | None = None, on_progress=None) -> RawSummary:
    """RECOLA sessions (``<root>/RECOLA/group-<g>/P<n>/...``)."""
    return prepare_raw(root, work, [RECOLA_LAYOUT], config, "recola", on_progress)


def prepare_synthetic(root, work, config: RawConfig | None = None, on_progress=None) -> RawSummary:
    """The synthetic raw corpus (both layouts); splits from its truth file by default."""
    cfg = config or RawConfig(split_rule="truth")
    return prepare_raw(root, work, [NOXI_LAYOUT, RECOLA_LAYOUT], cfg, "synthetic", on_progress)
