"""A tiny REACT 2023/24 layout for reader tests (no real media: videos/audio are placeholders).

The full synthetic corpus (``reactcli.synthetic``) writes real videos and audio; this factory
is for the fast reader tests that only need the file layout, CSVs, features and matrices, and
that break one thing at a time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SESSIONS = [("NoXI", "065_2016-04-14_Nottingham", "Expert_video", "Novice_video"),
            ("RECOLA", "group-1", "P25", "P26")]


def write_tiny_react(root: str | Path, pairs_per_split: int = 2, frames: int = 751, seed: int = 0,
                     splits: tuple[str, ...] = ("train", "val", "test"), emotion_alias: bool = True) -> Path:
    """Write a minimal valid REACT root; returns it.

    Each split gets ``pairs_per_split`` clip pairs alternating NoXI/RECOLA sessions; emotion
    CSVs use the 2024 P1/P2 person names when ``emotion_alias``; val/test get mirrored
    neighbour matrices (identity plus the other pair of the same site).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    alias = {"Expert_video": "P1", "Novice_video": "P2", "P25": "P1", "P26": "P2"}
    for split in splits:
        rows = []
        for k in range(pairs_per_split):
            site, session, spk, lis = SESSIONS[k % len(SESSIONS)]
            clip = str(k // len(SESSIONS) + 1 + 10 * splits.index(split))
            for person in (spk, lis):
                rel = Path(site) / session / person
                for kind, ext in (("Video_files", ".mp4"), ("Audio_files", ".wav")):
                    p = root / split / kind / rel / f"{clip}{ext}"
                    p.parent.mkdir(parents=True, exist_ok=True)
                    p.write_bytes(b"placeholder")
                emo_person = alias[person] if emotion_alias else person
                e = root / split / "Emotion" / site / session / emo_person / f"{clip}.csv"
                e.parent.mkdir(parents=True, exist_ok=True)
                emo = rng.random((frames, 25)).round(4)
                header = ",".join(f"c{i}" for i in range(25))
                np.savetxt(e, emo, delimiter=",", header=header, comments="", fmt="%.4f")
                t = root / split / "3D_FV_files" / rel / f"{clip}.npy"
                t.parent.mkdir(parents=True, exist_ok=True)
                arr = rng.standard_normal((frames, 58)).astype(np.float32)
                np.save(t, arr[None] if k % 2 else arr)
            rows.append((k, f"{site}/{session}/{spk}/{clip}", f"{site}/{session}/{lis}/{clip}"))
        with open(root / f"{split}.csv", "w") as fh:
            fh.write("index,speaker_path,listener_path\n")
            for r in rows:
                fh.write(",".join(map(str, r)) + "\n")
        if split != "train":
            n = 2 * pairs_per_split
            m = np.eye(n, dtype=np.int64)
            for i in range(n):
                for j in range(n):
                    if (i % pairs_per_split) % len(SESSIONS) == (j % pairs_per_split) % len(SESSIONS):
                        m[i, j] = 1
            np.save(root / f"neighbour_emotion_{split}.npy", m)
    return root
