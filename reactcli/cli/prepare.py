"""``reactcli prepare <corpus>``: read a corpus layout into manifests and the feature store."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from reactcli.cli.common import StageProgress, handle_errors, out, progress

app = typer.Typer(help="Read a corpus (REACT clips, RECOLA/NoXI sessions, synthetic) into a work directory.", no_args_is_help=True)


@app.command("react")
@handle_errors
def react(
    root: Path = typer.Option(..., "--root", help="REACT 2023/2024 root (holds train.csv, val.csv, test.csv and the split folders)."),
    work: Path = typer.Option(..., "--work", help="Work directory: manifests, feature store, reports are written here."),
    frames: int = typer.Option(751, help="Frames per clip in the release (751 for REACT 2023/24)."),
    fps: float = typer.Option(25.0, help="Frame rate of the clips."),
    splits: str = typer.Option(None, "--splits", help="Comma-separated splits to read; each named split's CSV must exist (default: those of train, val, test that the root has)."),
    mirror: bool = typer.Option(True, help="Mirror a split (roles swapped as items n..2n-1) when no neighbour matrix fixes its size."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Drop bad items (listed in reports/prepare-react.json) instead of failing."),
    require_media: bool = typer.Option(True, help="Require each clip's video and audio file to exist."),
    identities: Path = typer.Option(None, "--identities", help="JSON map {'<site>/<session>/<person>' (or a clip id): identity} naming persons who recur across sessions (e.g. NoXI experts; `reactcli synth` writes truth/identities.json). Without it each session's person is its own identity. Used for PSSL labels, listener histories and the personal metrics."),
) -> None:
    """Read the REACT clip layout: clips, mirrored items, neighbour matrices, shipped emotion/3DMM features."""
    from reactcli.corpora.react import ReactConfig, prepare_react

    cfg = ReactConfig(frames=frames, fps=fps, splits=tuple(s.strip() for s in splits.split(",") if s.strip()) if splits else None,
                      mirror=mirror, skip_bad=skip_bad, require_media=require_media,
                      identities=str(identities) if identities else None)
    with progress() as bar:
        summary = prepare_react(root, work, cfg, on_progress=StageProgress(bar))
    table = Table(title=f"prepare react: {root}")
    for col in ("split", "pairs", "items", "mirrored", "appropriate/item (mean, min, max)"):
        table.add_column(col)
    for split, n in summary.pairs.items():
        a = summary.appropriate.get(split)
        table.add_row(split, str(n), str(summary.items[split]), str(summary.mirrored[split]),
                      f"{a['mean']:.2f}, {a['min']}, {a['max']}" if a else "-")
    out.print(table)
    again = f" ({summary.reimported} changed since stored)" if summary.reimported else ""
    out.print(f"clips: {summary.clips}  imported: {summary.imported}{again}  already stored: {summary.already_stored}  "
              f"skipped items: {len(summary.skipped_items)}  problems: {len(summary.errors)}")
    if summary.identities is not None:
        out.print(f"identities: {summary.identities} persons (from {identities})")
    if summary.skipped_items:
        out.print(f"[yellow]skipped {len(summary.skipped_items)} bad items; see {summary.report_path}[/]")
    out.print(f"report: {summary.report_path}")


def _raw_config(split_rule: str, split_cycle: str, skip_bad: bool, require_sidecars: bool,
                session_glob: str | None, patterns: dict[str, str | None], identities: Path | None = None):
    from reactcli.corpora.raw import RawConfig

    pats = {k: tuple(x.strip() for x in v.split(",") if x.strip()) for k, v in patterns.items() if v}
    return RawConfig(split_rule=split_rule, split_cycle=tuple(s.strip() for s in split_cycle.split(",") if s.strip()),
                     patterns=pats, session_glob=session_glob, require_sidecars=require_sidecars, skip_bad=skip_bad,
                     identities=str(identities) if identities else None)


def _print_raw(name: str, root: Path, summary, identities: Path | None = None) -> None:
    splits = ", ".join(f"{k}: {v}" for k, v in sorted(summary.splits.items()))
    out.print(f"prepare {name}: {summary.sessions} sessions ({splits}) from {root}")
    if summary.identities is not None:
        out.print(f"identities: {summary.identities} persons (from {identities})")
    if summary.skipped:
        out.print(f"[yellow]skipped {len(summary.skipped)} sessions[/], first: {summary.skipped[0]}")
    out.print(f"report: {summary.report_path}")


_SPLIT_RULE_HELP = "How sessions get splits (raw corpora have none): cycle (sorted ids through --split-cycle), hash (SHA-1 of the id), truth (synthetic only)."
_SPLIT_CYCLE_HELP = "Comma-separated splits dealt to sessions in turn (one name = every session in that split)."
_PATTERN_HELP = "Comma-separated alternative file patterns for the {kind}, relative to the session folder ({{person}}, {{session}} placeholders); default: the layout's."
_RAW_IDENTITIES_HELP = ("JSON map {{'{participant}' (or a clip id '{participant}/<clip>'): identity}} naming persons who recur "
                        "across sessions{example}; persons as `reactcli clip` names them{names}. Without it each session's person "
                        "is its own identity. Kept as manifests/identities.json; used for PSSL labels, listener histories and the "
                        "personal metrics.")


def _raw_command(name: str, fn_name: str, default_rule: str, doc: str):
    def cmd(
        root: Path = typer.Option(..., "--root", help=f"{name} root folder (see the layout in `reactcli.corpora.raw`)."),
        work: Path = typer.Option(..., "--work", help="Work directory: manifests/sessions.jsonl and reports are written here."),
        split_rule: str = typer.Option(default_rule, "--split-rule", help=_SPLIT_RULE_HELP),
        split_cycle: str = typer.Option("train,val,test,train,train", "--split-cycle", help=_SPLIT_CYCLE_HELP),
        skip_bad: bool = typer.Option(False, "--skip-bad", help="Leave unmatched/unreadable sessions out (listed in the report) instead of failing."),
        require_sidecars: bool = typer.Option(False, "--require-sidecars", help="Treat a missing emotion/3DMM file as a problem."),
        session_glob: str = typer.Option(None, "--session-glob", help="Glob of session folders relative to the root (default: the layout's, e.g. NoXI/*)."),
        video_pattern: str = typer.Option(None, "--video-pattern", help=_PATTERN_HELP.format(kind="video")),
        audio_pattern: str = typer.Option(None, "--audio-pattern", help=_PATTERN_HELP.format(kind="audio")),
        emotion_pattern: str = typer.Option(None, "--emotion-pattern", help=_PATTERN_HELP.format(kind="emotion sidecar (.csv or .npy)")),
        tdmm_pattern: str = typer.Option(None, "--tdmm-pattern", help=_PATTERN_HELP.format(kind="3DMM sidecar (.npy)")),
        identities: Path = typer.Option(None, "--identities", help=_RAW_IDENTITIES_HELP.format(
            participant="<site>/<session>/<person>",
            example=" (e.g. NoXI experts; `reactcli synth --layout raw` writes truth/identities.json)",
            names=" (NoXI Expert_video, Novice_video; the raw folder names Expert, Novice work too)")),
    ) -> None:
        import reactcli.corpora.raw as raw

        cfg = _raw_config(split_rule, split_cycle, skip_bad, require_sidecars, session_glob,
                          {"video": video_pattern, "audio": audio_pattern, "emotion": emotion_pattern, "tdmm": tdmm_pattern},
                          identities)
        with progress() as bar:
            summary = getattr(raw, fn_name)(root, work, cfg, on_progress=StageProgress(bar))
        _print_raw(name, root, summary, identities)

    cmd.__doc__ = doc
    cmd.__name__ = name.lower()
    return handle_errors(cmd)


app.command("recola")(_raw_command("RECOLA", "prepare_recola", "cycle",
                                   "Read raw RECOLA sessions (group-<g>/P<n>/...) into manifests/sessions.jsonl."))
app.command("noxi")(_raw_command("NoXI", "prepare_noxi", "cycle",
                                 "Read raw NoXI sessions (<session>/{Expert,Novice}/...) into manifests/sessions.jsonl."))
app.command("synthetic")(_raw_command("synthetic", "prepare_synthetic", "truth",
                                      "Read the synthetic raw corpus (`reactcli synth --layout raw`) into manifests/sessions.jsonl."))


@app.command("mars")
@handle_errors
def mars(
    root: Path = typer.Option(..., "--root", help="REACT 2025/26 (MARS) root with <split>/video-face-crop, audio, facial-attributes, coefficients."),
    work: Path = typer.Option(..., "--work", help="Work directory: manifests/sessions.jsonl and reports are written here."),
    splits: str = typer.Option("train,val,test", "--splits", help="Comma-separated split folders to read."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Leave recordings with a missing side or file out (listed in the report)."),
    identities: Path = typer.Option(None, "--identities", help=_RAW_IDENTITIES_HELP.format(
        participant="MARS/<split>-session<k>-<rec>/<speaker|listener>", example=" (e.g. one speaker in several recordings)", names="")),
) -> None:
    """Read the MARS layout (variable-length 30 fps recordings) into manifests/sessions.jsonl."""
    from reactcli.corpora.mars import MarsConfig, prepare_mars

    cfg = MarsConfig(splits=tuple(s.strip() for s in splits.split(",") if s.strip()) if splits else None, skip_bad=skip_bad,
                     identities=str(identities) if identities else None)
    with progress() as bar:
        summary = prepare_mars(root, work, cfg, on_progress=StageProgress(bar))
    _print_raw("mars", root, summary, identities)
