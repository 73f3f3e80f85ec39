"""The demo report: one self-contained ``report.html`` and its Markdown twin ``report.md``.

Why one file: a report is mailed, attached to an issue or opened from a cluster's scratch disk;
it must not depend on a web server, a CDN or files that get lost. So the HTML has its CSS inline
and every image (plots, loss curves, video poster frames) embedded as a base64 PNG. Videos are
too large to embed: they are linked relative to the report (``videos/...``), so the report works
as long as it stays in its output folder; the poster frame shows what the video holds even when
the video is missing. The Markdown twin holds the same tables and links the same files (it
cannot embed images, so it points at the PNGs next to it).

Input: the dict :func:`reactcli.demo.run_demo` builds (see that module); any dict with the same
keys works, which is how the tests check the report without running the pipeline. Sections that
have no data (no videos, no training) say so instead of disappearing.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

from reactcli.errors import InputError
from reactcli.io import atomic_open, atomic_path
from reactcli.metrics.report import COLUMNS

__all__ = ["write_report", "render_html", "render_markdown", "loss_curves_png", "SECTIONS"]

#: (anchor, title) of every section, in order.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("metrics", "Metrics"),
    ("appropriateness", "Appropriateness"),
    ("videos", "Rendered reactions"),
    ("plots", "Feature curves"),
    ("training", "Training"),
    ("provenance", "Provenance"),
)

_NOT_LOSSES = ("epoch", "step", "seconds")

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:1.6em;margin:.2em 0} h2{border-bottom:2px solid #d8dde6;padding-bottom:4px;margin-top:1.8em}
h3{margin-bottom:.3em} nav a{margin-right:14px} .muted{color:#667085;font-size:.9em}
table{border-collapse:collapse;margin:.6em 0;background:#fff;font-size:.9em}
th,td{border:1px solid #d8dde6;padding:4px 8px;text-align:right} th{background:#eef1f6}
td:first-child,th:first-child{text-align:left}
td.best{font-weight:700;background:#e3f4e6} tr.baseline td:first-child{color:#667085}
.bar{display:inline-block;height:12px;background:#4c78a8;vertical-align:middle}
.grid{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0;background:#fff;border:1px solid #d8dde6;padding:8px;max-width:540px}
figure img,figure video{display:block;max-width:100%}
figcaption{font-size:.85em;color:#444;margin-top:4px}
pre{background:#fff;border:1px solid #d8dde6;padding:8px;overflow:auto;font-size:.8em;max-height:320px}
.note{background:#fff8e1;border-left:4px solid #f2b600;padding:6px 10px;font-size:.9em}
"""


# ------------------------------------------------------------------------------------------------
# small helpers
# ------------------------------------------------------------------------------------------------
def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(v: Any, mult: float = 1.0) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if not math.isfinite(float(v)):
        return str(v)
    return f"{v * mult:.4g}"


def _data_uri(path: Path) -> str | None:
    if not path.is_file():
        return None
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _higher_is_better(header: str) -> bool | None:
    if "↑" in header:
        return True
    if "↓" in header:
        return False
    return None


def _best(metrics: dict[str, dict], key: str, higher: bool | None) -> float | None:
    """Best value of a column among everything but the ground-truth baseline (the upper bound)."""
    vals = [m.get(key) for n, m in metrics.items() if n != "gt" and isinstance(m.get(key), (int, float))]
    if higher is None or not vals:
        return None
    return max(vals) if higher else min(vals)


def loss_curves_png(logs: dict[str, list[dict[str, Any]]], out_png: str | os.PathLike) -> Path | None:
    """One subplot per training run: every logged loss term against the epoch; None if no logs."""
    runs = {r: rows for r, rows in logs.items() if rows}
    if not runs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(runs)
    cols = min(n, 2)
    rows_n = math.ceil(n / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(6 * cols, 3.2 * rows_n), squeeze=False)
    for ax, (run, rows) in zip(axes.ravel(), runs.items()):
        epochs = [r.get("epoch", i + 1) for i, r in enumerate(rows)]
        keys = [k for k in rows[0] if k not in _NOT_LOSSES]
        for k in keys:
            ys = [r.get(k, float("nan")) for r in rows]
            ax.plot(epochs, ys, marker="o", ms=3, lw=2.2 if k == "loss" else 1.0, label=k)
        ax.set_title(run)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.tight_layout()
    out = Path(out_png)
    with atomic_path(out, suffix=".png.tmp") as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return out


def _hist_rows(hist: dict) -> list[tuple[int, int]]:
    return sorted((int(k), int(v)) for k, v in hist.items())


def _timings(result: dict) -> list[dict]:
    return list(result.get("timings") or [])


# ------------------------------------------------------------------------------------------------
# HTML
# ------------------------------------------------------------------------------------------------
def _html_metrics(result: dict) -> str:
    metrics: dict[str, dict] = result.get("metrics") or {}
    if not metrics:
        return "<p class='note'>No run was evaluated.</p>"
    head = "".join(f"<th>{_e(h)}</th>" for _, h, _ in COLUMNS)
    best = {k: _best(metrics, k, _higher_is_better(h)) for k, h, _ in COLUMNS}
    body = []
    for name, m in metrics.items():
        kind = m.get("kind", "")
        cells = []
        for key, _, mult in COLUMNS:
            v = m.get(key)
            cls = " class='best'" if best[key] is not None and v == best[key] else ""
            cells.append(f"<td{cls}>{_e(_num(v, mult))}</td>")
        link = m.get("path")
        label = f"<a href='{_e(link)}'>{_e(name)}</a>" if link else _e(name)
        body.append(f"<tr class='{_e(kind)}'><td>{label}</td><td>{_e(kind)}</td>{''.join(cells)}</tr>")
    any_m = next(iter(metrics.values()))
    notes = [f"Split <b>{_e(result.get('split', any_m.get('split', '?')))}</b>, protocol "
             f"{_e(any_m.get('protocol', any_m.get('feature', '?')))}; N = {_e(any_m.get('N'))} items, "
             f"K = {_e(any_m.get('K'))} samples, T = {_e(any_m.get('T'))} frames.",
             "FRCorr and FRdist are the official sums over the K samples; the /K columns are the "
             "per-sample means that papers print. FRDiv, FRDvs and FRVar are shown x100. Bold: the best "
             "value of a column among models and baselines other than <code>gt</code> (the real "
             "listener, an upper bound)."]
    if result.get("summary_csv"):
        notes.append(f"The same numbers at full precision, one row per run: <a href='{_e(result['summary_csv'])}'>"
                     f"{_e(result['summary_csv'])}</a> (<code>pandas.read_csv</code>); each run's per-item "
                     "terms: <code>metrics/&lt;run&gt;-&lt;split&gt;-items.csv</code>.")
    if any(m.get("FRRea") is None for m in metrics.values()):
        note = next((m.get("FRRea_note") for m in metrics.values() if m.get("FRRea_note")), "unavailable")
        notes.append(f"FRRea (FID): {_e(note)}.")
    return (f"<table id='metrics-table'><tr><th>model</th><th>kind</th>{head}</tr>{''.join(body)}</table>"
            + "".join(f"<p class='muted'>{n}</p>" for n in notes))


def _html_appropriateness(result: dict) -> str:
    app: dict[str, dict] = result.get("appropriateness") or {}
    if not app:
        return "<p class='note'>No appropriateness statistics.</p>"
    rows = []
    for split, r in app.items():
        s = r["built"]["stats"]
        pr = r["built"].get("vs_truth") or {}
        t = (r.get("truth") or {}).get("stats") or {}
        rows.append(
            f"<tr><td>{_e(split)}</td><td>{s['items']}</td><td>{_num(s['mean'])}</td><td>{_num(s.get('median'))}</td>"
            f"<td>{s['min']}</td><td>{s['max']}</td><td>{_num(t.get('mean'))}</td>"
            f"<td>{_num(pr.get('precision'))}</td><td>{_num(pr.get('recall'))}</td><td>{_num(pr.get('f1'))}</td>"
            f"<td>{_e(r.get('used', '?'))}</td></tr>")
    table = ("<table id='appropriateness-table'><tr><th>split</th><th>items</th><th>mean</th><th>median</th>"
             "<th>min</th><th>max</th><th>truth mean</th><th>precision</th><th>recall</th><th>F1</th>"
             "<th>used downstream</th></tr>" + "".join(rows) + "</table>")
    first = next(iter(app.values()))["built"]
    intro = (f"<p class='muted'>Appropriate real reactions per item of the matrix built from the speakers' "
             f"emotion features (distance {_e(first.get('distance', '?'))}, rule {_e(first.get('rule', '?'))}); "
             "precision / recall / F1 count the off-diagonal entries against the synthetic corpus's known "
             "truth (same speaking pattern). <i>used downstream</i>: the matrix training and scoring read "
             "(val/test: the corpus's official <code>neighbour_emotion</code> matrix, as the challenge does).</p>")
    hists = []
    for split, r in app.items():
        h = _hist_rows(r["built"]["stats"].get("histogram", {}))
        top = max((v for _, v in h), default=1)
        bars = "".join(f"<tr><td>{k}</td><td style='text-align:left'><span class='bar' style='width:{max(2, round(160 * v / top))}px'>"
                       f"</span> {v}</td></tr>" for k, v in h)
        hists.append(f"<figure><figcaption>{_e(split)}: items with n appropriate reactions</figcaption>"
                     f"<table class='hist'><tr><th>n</th><th>items</th></tr>{bars}</table></figure>")
    return intro + table + "<div class='grid'>" + "".join(hists) + "</div>"


def _html_videos(result: dict, out: Path) -> str:
    videos = result.get("videos") or []
    if not videos:
        return "<p class='note'>No videos were rendered (--skip-render).</p>"
    figs = []
    for v in videos:
        poster = _data_uri(out / v["poster"]) if v.get("poster") else None
        pattr = f" poster='{poster}'" if poster else ""
        missing = "" if (out / v["path"]).is_file() else " <b>(video file missing)</b>"
        img = f"<img alt='poster frame of {_e(v['path'])}' src='{poster}'>" if poster else ""
        figs.append(
            f"<figure><video controls preload='none' width='480'{pattr} src='{_e(v['path'])}'></video>"
            f"<figcaption><a href='{_e(v['path'])}'>{_e(v['path'])}</a>{missing}: {_e(v['run'])}, item "
            f"{_e(v['item'])}. Left: speaker; middle: generated samples; right: real listener.</figcaption>"
            f"<details><summary>poster frame</summary>{img}</details></figure>")
    return "<div class='grid'>" + "".join(figs) + "</div>"


def _html_images(items: Iterable[dict], out: Path, empty: str) -> str:
    figs = []
    for p in items:
        uri = _data_uri(out / p["path"])
        if uri is None:
            figs.append(f"<figure><figcaption>{_e(p['path'])}: file missing</figcaption></figure>")
            continue
        figs.append(f"<figure><img alt='{_e(p['path'])}' src='{uri}' width='560'>"
                    f"<figcaption>{_e(p.get('caption') or p['path'])}</figcaption></figure>")
    return "<div class='grid'>" + "".join(figs) + "</div>" if figs else f"<p class='note'>{empty}</p>"


def _final_losses(training: dict) -> list[tuple[str, int, int, dict]]:
    rows = []
    for run, t in training.items():
        log = t.get("log") or []
        last = log[-1] if log else {}
        rows.append((run, int(last.get("epoch", 0)), int(last.get("step", 0)),
                     {k: v for k, v in last.items() if k not in _NOT_LOSSES}))
    return rows


def _html_training(result: dict, out: Path, loss_png: Path | None) -> str:
    training: dict = result.get("training") or {}
    if not training:
        return "<p class='note'>No model was trained.</p>"
    rows = "".join(
        f"<tr><td>{_e(run)}</td><td>{ep}</td><td>{st}</td><td style='text-align:left'>"
        + _e(", ".join(f"{k} {_num(v)}" for k, v in losses.items())) + "</td></tr>"
        for run, ep, st, losses in _final_losses(training))
    table = ("<table id='training-table'><tr><th>run</th><th>epochs</th><th>steps</th><th>last epoch's mean losses</th></tr>"
             + rows + "</table>")
    img = ""
    if loss_png is not None:
        img = _html_images([{"path": loss_png.relative_to(out).as_posix(), "caption": "training losses per epoch"}], out, "")
    return table + img


def _html_provenance(result: dict) -> str:
    t = _timings(result)
    trows = "".join(f"<tr><td>{_e(r['stage'])}</td><td>{_num(r.get('wall_s'))}</td><td>{_num(r.get('cpu_s'))}</td>"
                    f"<td>{'skipped' if r.get('skipped') else ''}</td></tr>" for r in t)
    trows += (f"<tr><td><b>total</b></td><td><b>{_num(result.get('total_wall_s'))}</b></td>"
              f"<td><b>{_num(result.get('total_cpu_s'))}</b></td><td></td></tr>")
    facts = [("reactcli version", result.get("reactcli_version")), ("git commit", result.get("git_commit") or "unknown"),
             ("seed", result.get("seed")), ("created", result.get("created")), ("CPU cores", result.get("cpu_count")),
             ("corpus", json.dumps((result.get("corpus") or {}).get("counts", {})))]
    ftable = "<table id='provenance-table'>" + "".join(f"<tr><th>{_e(k)}</th><td style='text-align:left'>{_e(v)}</td></tr>"
                                                       for k, v in facts) + "</table>"
    recipes = "".join(
        f"<h3>{_e(run)}</h3><p class='muted'>recipe: {_e(t.get('recipe_source', '?'))}; checkpoint: "
        f"{_e(t.get('checkpoint', '?'))}</p><pre>{_e(json.dumps(t.get('recipe', {}), indent=1))}</pre>"
        for run, t in (result.get("training") or {}).items())
    return (ftable + "<h3>Timings per stage (seconds)</h3><p class='muted'>CPU = this process plus its finished "
            "worker processes; wall time depends on what else the machine runs.</p>"
            "<table id='timings-table'><tr><th>stage</th><th>wall</th><th>CPU</th><th></th></tr>" + trows + "</table>"
            + "<h3>Demo configuration</h3><pre>" + _e(json.dumps(result.get("config", {}), indent=1)) + "</pre>"
            + recipes)


def render_html(result: dict, out_dir: str | os.PathLike, loss_png: Path | None = None) -> str:
    """The report as one HTML string; images under ``out_dir`` are embedded, videos linked."""
    out = Path(out_dir)
    nav = "".join(f"<a href='#{a}'>{_e(t)}</a>" for a, t in SECTIONS)
    bodies = {
        "metrics": _html_metrics(result),
        "appropriateness": _html_appropriateness(result),
        "videos": _html_videos(result, out),
        "plots": _html_images([{**p, "caption": f"{p['run']}, item {p['item']}: speaker (grey), samples, "
                                                 f"real listener (black dashes)"} for p in result.get("plots") or []],
                              out, "No curve plots."),
        "training": _html_training(result, out, loss_png),
        "provenance": _html_provenance(result),
    }
    sections = "".join(f"<section id='{a}'><h2>{_e(t)}</h2>{bodies[a]}</section>" for a, t in SECTIONS)
    summary = (f"<p class='muted'>reactcli {_e(result.get('reactcli_version', '?'))} &middot; created "
               f"{_e(result.get('created', '?'))} &middot; total wall {_num(result.get('total_wall_s'))} s, "
               f"CPU {_num(result.get('total_cpu_s'))} s &middot; seed {_e(result.get('seed'))}</p>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_e(result.get('title', 'reactcli report'))}</title><style>{_CSS}</style></head>"
            f"<body><main><h1>{_e(result.get('title', 'reactcli report'))}</h1>{summary}<nav>{nav}</nav>"
            f"{sections}</main></body></html>\n")


# ------------------------------------------------------------------------------------------------
# Markdown
# ------------------------------------------------------------------------------------------------
def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(result: dict, loss_png_rel: str | None = None) -> str:
    """The report as Markdown: the same tables as the HTML, images and videos as relative links."""
    md = [f"# {result.get('title', 'reactcli report')}", "",
          f"reactcli {result.get('reactcli_version', '?')}, created {result.get('created', '?')}, "
          f"total wall {_num(result.get('total_wall_s'))} s, CPU {_num(result.get('total_cpu_s'))} s, "
          f"seed {result.get('seed')}.", ""]
    metrics: dict[str, dict] = result.get("metrics") or {}
    md += ["## Metrics", ""]
    if metrics:
        rows = [[f"[{n}]({m['path']})" if m.get("path") else n, m.get("kind", "")]
                + [_num(m.get(k), mult) for k, _, mult in COLUMNS] for n, m in metrics.items()]
        md += [_md_table(["model", "kind"] + [h for _, h, _ in COLUMNS], rows), "",
               "FRCorr/FRdist: official sums over K; /K: per-sample means. FRDiv, FRDvs, FRVar x100.", ""]
        if result.get("summary_csv"):
            md += [f"Full precision, one row per run: [{result['summary_csv']}]({result['summary_csv']}); "
                   "per-item terms: `metrics/<run>-<split>-items.csv`.", ""]
    else:
        md += ["No run was evaluated.", ""]
    md += ["## Appropriateness", ""]
    app = result.get("appropriateness") or {}
    if app:
        rows = []
        for split, r in app.items():
            s, pr = r["built"]["stats"], r["built"].get("vs_truth") or {}
            rows.append([split, s["items"], _num(s["mean"]), _num(s.get("median")), s["min"], s["max"],
                         _num(((r.get("truth") or {}).get("stats") or {}).get("mean")),
                         _num(pr.get("precision")), _num(pr.get("recall")), _num(pr.get("f1")), r.get("used", "?")])
        md += [_md_table(["split", "items", "mean", "median", "min", "max", "truth mean", "precision", "recall",
                          "F1", "used downstream"], rows), ""]
        for split, r in app.items():
            hist = ", ".join(f"{k}: {v}" for k, v in _hist_rows(r["built"]["stats"].get("histogram", {})))
            md.append(f"- {split} histogram (appropriate reactions: items): {hist}")
        md.append("")
    else:
        md += ["No appropriateness statistics.", ""]
    md += ["## Rendered reactions", ""]
    videos = result.get("videos") or []
    md += [f"- [{v['path']}]({v['path']}) ({v['run']}, item {v['item']})"
           + (f" ![poster]({v['poster']})" if v.get("poster") else "") for v in videos] or ["No videos were rendered."]
    md += ["", "## Feature curves", ""]
    md += [f"![{p['run']} item {p['item']}]({p['path']})" for p in result.get("plots") or []] or ["No curve plots."]
    md += ["", "## Training", ""]
    training = result.get("training") or {}
    if training:
        md += [_md_table(["run", "epochs", "steps", "last epoch's mean losses"],
                         [[run, ep, st, ", ".join(f"{k} {_num(v)}" for k, v in losses.items())]
                          for run, ep, st, losses in _final_losses(training)]), ""]
        if loss_png_rel:
            md += [f"![training losses]({loss_png_rel})", ""]
    else:
        md += ["No model was trained.", ""]
    md += ["## Provenance", "",
           f"- reactcli version: {result.get('reactcli_version')}",
           f"- git commit: {result.get('git_commit') or 'unknown'}",
           f"- seed: {result.get('seed')}",
           f"- CPU cores: {result.get('cpu_count')}", ""]
    md += [_md_table(["stage", "wall s", "CPU s"], [[r["stage"], _num(r.get("wall_s")), _num(r.get("cpu_s"))]
                                                     for r in _timings(result)]
                     + [["total", _num(result.get("total_wall_s")), _num(result.get("total_cpu_s"))]]), ""]
    md += ["Demo configuration:", "", "```json", json.dumps(result.get("config", {}), indent=1), "```", ""]
    for run, t in training.items():
        md += [f"Recipe of {run} ({t.get('recipe_source', '?')}):", "", "```json",
               json.dumps(t.get("recipe", {}), indent=1), "```", ""]
    return "\n".join(md)


# ------------------------------------------------------------------------------------------------
# entry point
# ------------------------------------------------------------------------------------------------
def write_report(result: dict, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``report.html`` and ``report.md`` (and ``plots/training-losses.png``) into ``out_dir``.

    Returns ``{"html": path, "md": path}``. Both are written atomically.
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise InputError(f"{out}: report folder does not exist")
    logs = {run: t.get("log") or [] for run, t in (result.get("training") or {}).items()}
    loss_png = loss_curves_png(logs, out / "plots" / "training-losses.png")
    html_text = render_html(result, out, loss_png)
    md_text = render_markdown(result, loss_png.relative_to(out).as_posix() if loss_png else None)
    paths = {"html": out / "report.html", "md": out / "report.md"}
    with atomic_open(paths["html"], "w", encoding="utf-8") as fh:
        fh.write(html_text)
    with atomic_open(paths["md"], "w", encoding="utf-8") as fh:
        fh.write(md_text)
    return paths
