"""Print the metric table of a synthetic recipe run and check the recipe's targets.

Usage: ``python summary.py METRICS_DIR SPLIT MODEL [MODEL ...]`` where each MODEL has
``METRICS_DIR/<model>-<split>.json`` (``reactcli evaluate run``) and optionally
``<model>-<split>-personal.json`` (``reactcli.metrics.personal``). The same numbers at full
precision, one row per run: ``METRICS_DIR/summary.csv`` (``reactcli evaluate summary``). Targets checked (README.md):
every model that is not a naive baseline beats mime, random and meanseq on FRCorr (higher) and
FRdist (lower) with FRDiv > 0; ``perfrdiff-personalised[-variant][-few]`` beats ``perfrdiff-generic[-few]``
(same number of DDIM steps) on personal FRCorr/FRdist.
Exit status is always 0: the table is a report, not a gate.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLS = [("FRCorr", "FRCorr"), ("FRCorr/K", "FRCorr_per_sample"), ("FRdist", "FRdist"), ("FRDiv", "FRDiv"),
        ("FRDvs", "FRDvs"), ("FRVar", "FRVar"), ("FRSyn", "FRSyn"), ("pers.FRCorr", "personal_FRCorr"),
        ("pers.FRdist", "personal_FRdist")]
# shown when the personal metrics split the items into listeners met in training and new ones
SEEN_COLS = [("seen pers.FRCorr", "personal_FRCorr_seen"), ("seen pers.FRdist", "personal_FRdist_seen")]
NAIVE = ("mime", "random", "meanseq")
BASELINES = ("mime", "random", "meanseq", "meanfr", "gt")


def _load(d: Path, split: str, name: str) -> dict | None:
    p = d / f"{name}-{split}.json"
    if not p.is_file():
        return None
    res = json.loads(p.read_text())
    q = d / f"{name}-{split}-personal.json"
    if q.is_file():
        res.update({k: v for k, v in json.loads(q.read_text()).items() if k.startswith(("personal_", "N_"))})
    return res


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"


def main(argv: list[str]) -> int:
    d, split, names = Path(argv[0]), argv[1], argv[2:]
    rows = {n: r for n in names if (r := _load(d, split, n)) is not None}
    seen = [r.get("N_seen") for r in rows.values() if r.get("N_seen")]
    cols = COLS + (SEEN_COLS if seen else [])
    print("| run | " + " | ".join(c for c, _ in cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for n, r in rows.items():
        print(f"| {n} | " + " | ".join(_fmt(r.get(k)) for _, k in cols) + " |")
    if seen:
        print(f"seen: the {seen[0]} test items whose listener is also a listener of the train split")
    for model in (n for n in rows if n not in BASELINES):
        m = rows[model]
        for b in NAIVE:
            if b in rows:
                ok_c = m["FRCorr"] > rows[b]["FRCorr"]
                ok_d = m["FRdist"] < rows[b]["FRdist"]
                print(f"{model} vs {b}: FRCorr {'beats' if ok_c else 'LOSES'}, FRdist {'beats' if ok_d else 'LOSES'}")
        print(f"{model}: FRDiv {'> 0' if m['FRDiv'] > 0 else '= 0 (FAILS)'}")
    for name in (n for n in rows if n.startswith("perfrdiff-personalised")):
        # perfrdiff-personalised[-variant][-few] is compared with the generic run of the same step count
        generic = "perfrdiff-generic" + ("-few" if name.endswith("-few") else "")
        g, p = rows.get(generic), rows[name]
        if g and "personal_FRCorr" in g and "personal_FRCorr" in p:
            print(f"{name} vs {generic} (same-listener references): "
                  f"personal FRCorr {'beats' if p['personal_FRCorr'] > g['personal_FRCorr'] else 'LOSES'}, "
                  f"personal FRdist {'beats' if p['personal_FRdist'] < g['personal_FRdist'] else 'LOSES'}")
            if "personal_FRCorr_seen" in g and "personal_FRCorr_seen" in p:
                print(f"{name} vs {generic} (seen listeners only): "
                      f"personal FRCorr {'beats' if p['personal_FRCorr_seen'] > g['personal_FRCorr_seen'] else 'LOSES'}, "
                      f"personal FRdist {'beats' if p['personal_FRdist_seen'] < g['personal_FRdist_seen'] else 'LOSES'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
