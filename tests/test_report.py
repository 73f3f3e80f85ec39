"""The demo report from a hand-made result dict: tables, sections, links, self-containedness."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reactcli.appropriate import precision_recall, row_stats
from reactcli.demo.report import SECTIONS, loss_curves_png, render_markdown, write_report
from tests.helpers.screenshot import find_chromium, screenshot


def _png(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (240, 120)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def _metrics(name: str, kind: str, frcorr: float, frdist: float, frdiv: float) -> dict:
    k = 10
    return {"FRCorr": frcorr, "FRCorr_per_sample": frcorr / k, "FRdist": frdist, "FRdist_per_sample": frdist / k,
            "FRDiv": frdiv, "FRDvs": 0.2, "FRVar": 0.05, "FRSyn": 12.0, "FRRea": None,
            "FRRea_note": "unavailable: no Inception weights", "protocol": "REACT emotion protocol",
            "N": 8, "K": k, "T": 750, "split": "test", "path": f"metrics/{name}.json", "kind": kind}


@pytest.fixture
def report_dir(tmp_path: Path) -> tuple[Path, dict]:
    out = tmp_path / "out"
    _png(out / "plots" / "reactface" / "0.png", (255, 0, 0))          # pure red: findable in a screenshot
    _png(out / "videos" / "reactface-test-0.png", (0, 0, 255))        # the poster frame, pure blue
    (out / "videos" / "reactface-test-0.mp4").write_bytes(b"not really a video")
    for n in ("reactface", "mime", "gt"):
        (out / "metrics").mkdir(parents=True, exist_ok=True)
        (out / "metrics" / f"{n}.json").write_text("{}")
    pred = np.array([[1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 1, 0], [0, 1, 0, 1]])
    truth = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]])
    result = {
        "title": "test report", "created": "2026-01-01 00:00:00 UTC", "reactcli_version": "9.9.9",
        "git_commit": "abc123def", "seed": 7, "cpu_count": 2, "split": "test",
        "config": {"seed": 7, "sessions": 8},
        "corpus": {"counts": {"sessions": 8}},
        "metrics": {"reactface": _metrics("reactface", "model", 2.5, 40.0, 0.1234),
                    "mime": _metrics("mime", "baseline", 1.5, 30.0, 0.0),
                    "gt": _metrics("gt", "baseline", 8.0, 0.0, 0.0)},
        "appropriateness": {"test": {"built": {"stats": row_stats(pred), "rule": "auto", "distance": "dtw",
                                               "vs_truth": precision_recall(pred, truth)},
                                     "truth": {"stats": row_stats(truth)}, "used": "official"}},
        "videos": [{"run": "reactface", "item": 0, "path": "videos/reactface-test-0.mp4",
                    "poster": "videos/reactface-test-0.png"}],
        "plots": [{"run": "reactface", "item": 0, "path": "plots/reactface/0.png"}],
        "training": {"reactface": {"recipe": {"model": "reactface", "train": {"epochs": 3}},
                                   "recipe_source": "pipelines/synthetic/reactface.yaml", "checkpoint": "runs/reactface/model.pt",
                                   "log": [{"loss": 3.0 - e, "rec": 1.0 / (e + 1), "epoch": e + 1, "step": 4 * (e + 1), "seconds": 1.0}
                                           for e in range(3)]}},
        "timings": [{"stage": "synth", "wall_s": 1.5, "cpu_s": 1.25}, {"stage": "render", "wall_s": 0.0, "cpu_s": 0.0, "skipped": True}],
        "total_wall_s": 100.5, "total_cpu_s": 80.25,
    }
    return out, result


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.attrs: list[tuple[str, str, str]] = []
        self.ids: set[str] = set()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        d = dict(attrs)
        for k, v in attrs:
            self.attrs.append((tag, k, v or ""))
        if "id" in d:
            self.ids.add(d["id"])
        if tag == "table" and d.get("id"):
            self._table = d["id"]
            self.tables[self._table] = []
        if tag == "tr" and self._table:
            self.tables[self._table].append([])
        if tag in ("td", "th") and self._table:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse(html: str) -> _Collect:
    p = _Collect()
    p.feed(html)
    return p


def test_report_tables_and_sections(report_dir):
    out, result = report_dir
    paths = write_report(result, out)
    html = paths["html"].read_text()
    doc = _parse(html)
    assert {a for a, _ in SECTIONS} <= doc.ids
    rows = {r[0]: r for r in doc.tables["metrics-table"][1:]}
    header = doc.tables["metrics-table"][0]
    col = {h: i for i, h in enumerate(header)}
    assert set(rows) == {"reactface", "mime", "gt"}
    # official sum, per-sample mean (/K = 10), x100 diversity: values computed by hand
    assert rows["reactface"][col["FRCorr (sum K) ↑"]] == "2.5"
    assert rows["reactface"][col["FRCorr (/K) ↑"]] == "0.25"
    assert rows["reactface"][col["FRdist (/K) ↓"]] == "4"
    assert rows["reactface"][col["FRDiv x100 ↑"]] == "12.34"
    assert rows["mime"][col["FRRea (FID) ↓"]] == "n/a"
    assert rows["gt"][col["kind"]] == "baseline"
    # best values: reactface has the higher FRCorr, mime the lower FRdist; gt (better at both) is excluded
    assert re.search(r"<td class='best'>2\.5</td>", html)
    assert re.search(r"<td class='best'>30</td>", html)
    assert "<td class='best'>8</td>" not in html and "<td class='best'>0</td>" not in html
    # appropriateness: pred rows have 2,3,1,2 ones; off-diagonal tp 2 (0-1, 1-0), fp 2 (1-2, 3-1), fn 2 (2-3, 3-2)
    app = doc.tables["appropriateness-table"]
    assert app[1][:6] == ["test", "4", "2", "2", "1", "3"]
    assert app[1][7:11] == ["0.5", "0.5", "0.5", "official"]
    # training, provenance and timings
    assert doc.tables["training-table"][1][:3] == ["reactface", "3", "12"]
    prov = {r[0]: r[1] for r in doc.tables["provenance-table"]}
    assert prov["reactcli version"] == "9.9.9" and prov["git commit"] == "abc123def" and prov["seed"] == "7"
    timings = doc.tables["timings-table"]
    assert timings[1][:3] == ["synth", "1.5", "1.25"] and timings[2][3] == "skipped"
    assert timings[-1][:3] == ["total", "100.5", "80.25"]
    assert "pipelines/synthetic/reactface.yaml" in html


def test_report_is_self_contained_and_links_exist(report_dir):
    out, result = report_dir
    html = write_report(result, out)["html"].read_text()
    assert not re.search(r"https?://", html)
    doc = _parse(html)
    assert not any(t in ("script", "link") for t, _, _ in doc.attrs)
    imgs = [v for t, k, v in doc.attrs if k in ("src", "poster") and t in ("img", "video") and not v.startswith("videos/")]
    assert len(imgs) >= 4  # curve plot, poster (as <video poster> and <img>), loss curves
    for uri in imgs:
        assert uri.startswith("data:image/png;base64,")
        assert base64.b64decode(uri.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    links = [v for _, k, v in doc.attrs if k in ("href", "src") and not v.startswith(("data:", "#"))]
    assert "videos/reactface-test-0.mp4" in links and "metrics/reactface.json" in links
    for link in links:
        assert (out / link).is_file(), link
    assert (out / "plots" / "training-losses.png").is_file()


def test_markdown_twin(report_dir):
    out, result = report_dir
    md = write_report(result, out)["md"].read_text()
    for title in (t for _, t in SECTIONS):
        assert f"## {title}" in md
    assert "| [reactface](metrics/reactface.json) | model | 2.5 | 0.25 | 40 | 4 | 12.34 |" in md
    assert "[videos/reactface-test-0.mp4](videos/reactface-test-0.mp4)" in md
    assert "![training losses](plots/training-losses.png)" in md
    assert "| total | 100.5 | 80.25 |" in md
    for target in re.findall(r"\]\(([^)#]+)\)", md):
        assert (out / target).is_file(), target


def test_empty_sections_say_so(tmp_path):
    html = write_report({"title": "empty"}, tmp_path)["html"].read_text()
    assert "No run was evaluated" in html and "No videos were rendered" in html and "No model was trained" in html
    assert render_markdown({}).startswith("# reactcli report")


def test_loss_curves_png(tmp_path):
    assert loss_curves_png({"a": []}, tmp_path / "none.png") is None
    p = loss_curves_png({"a": [{"loss": 1.0, "epoch": 1}, {"loss": 0.5, "epoch": 2}], "b": [{"loss": 2.0, "epoch": 1}]},
                        tmp_path / "l.png")
    img = Image.open(p)
    assert img.format == "PNG" and img.size[0] > img.size[1] > 100


@pytest.mark.skipif(find_chromium() is None, reason="chromium not installed (Debian: apt-get install -y chromium)")
def test_report_screenshot_shows_images(report_dir, tmp_path):
    out, result = report_dir
    html = write_report(result, out)["html"]
    png = screenshot(html, tmp_path / "shot.png", width=1280, height=2000)
    img = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert img.shape == (2000, 1280, 3)
    red = (img[..., 0] > 240) & (img[..., 1] < 15) & (img[..., 2] < 15)
    blue = (img[..., 2] > 240) & (img[..., 0] < 15) & (img[..., 1] < 15)
    # the embedded red curve plot (240x120 shown at its size) and the blue poster frame render
    assert red.sum() > 0.8 * 240 * 120
    assert blue.sum() > 1000
    # and the page is not blank: the metric table's text makes dark pixels
    assert ((img.sum(-1) < 150).sum()) > 2000


def test_report_naturalness_table_and_velocity_plot(report_dir):
    out, result = report_dir
    result["metrics"]["reactface"]["naturalness"] = {
        "seam_score": 9.04, "seam_period": 25, "seam_phase": 0, "velocity_ratio": 1.27,
        "acceleration_ratio": 2.5, "jerk_ratio": 3.0, "window_variance_ratio": 0.76}
    result["metrics"]["gt"]["naturalness"] = {
        "seam_score": 1.0, "seam_period": 31, "seam_phase": 4, "velocity_ratio": 1.0,
        "acceleration_ratio": 1.0, "jerk_ratio": 1.0, "window_variance_ratio": 1.0}
    _png(out / "plots" / "velocity.png", (0, 255, 0))
    result["velocity_plot"] = {"path": "plots/velocity.png", "caption": "velocity, generated vs real"}
    paths = write_report(result, out)
    html = paths["html"].read_text()
    table = _parse(html).tables["naturalness-table"]
    assert table[0] == ["model", "kind", "seam", "motion", "accel", "jerk", "var 2s"]
    rows = {r[0]: r for r in table[1:]}
    assert set(rows) == {"reactface", "gt"}  # mime has no naturalness numbers: no row
    assert rows["reactface"][2:] == ["9.04 (25@0)", "1.27", "2.5", "3", "0.76"]
    green = base64.b64encode((out / "plots" / "velocity.png").read_bytes()).decode()
    assert green in html and "velocity, generated vs real" in html
    md = paths["md"].read_text()
    assert "| reactface | model | 9.04 (25@0) | 1.27 | 2.5 | 3 | 0.76 |" in md
    assert "![velocity](plots/velocity.png)" in md
