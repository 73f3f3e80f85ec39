"""Progress shows in logs that are not terminals: a shard in a worker or a Slurm task writes lines
with the rate and the ETA, and so does the CLI when its stderr is a file."""

from __future__ import annotations

import io
import sys

from reactcli.features.stage import extract_shard
from reactcli.progress import ProgressLog, worker_progress
from reactcli.synthetic.react_layout import write_tiny_react
from tests.execution.helpers import prepared_work


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_lines_are_throttled_and_carry_rate_and_eta():
    out, clock = io.StringIO(), Clock()
    log = ProgressLog(stream=out, every_s=30, clock=clock)
    log("extract", 0, 100)                 # first call: a line at once
    clock.t += 10
    log("extract", 10, 100)                # within 30 s: nothing
    clock.t += 30
    log("extract", 40, 100)                # 40 items in 40 s: 1/s, 60 left -> ETA 1 min
    clock.t += 5
    log("extract", 100, 100)               # the end: always a line
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("extract: 0/100 (0.0%)")
    assert lines[1] == "extract: 40/100 (40.0%)  1/s  elapsed 0:00:40  ETA 0:01:00"
    assert lines[2].startswith("extract: 100/100 (100.0%)") and "ETA" not in lines[2]


def test_worker_progress_writes_only_where_no_terminal_shows_bars(monkeypatch):
    given = lambda *a: None  # noqa: E731
    assert worker_progress(given) is given
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a log file
    assert isinstance(worker_progress(None), ProgressLog)

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Tty())
    assert worker_progress(None) is None


def test_a_shard_in_a_worker_logs_its_items(tmp_path, monkeypatch):
    root = write_tiny_react(tmp_path / "r", pairs_per_split=1)
    work = prepared_work(root, tmp_path, "w")
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)  # what a Slurm task's log file is
    extract_shard(str(work), {"features": ["emotion"]}, 0, 1)
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("extract shard 0/1: clips: 0/") and "/s" in lines[0]
    assert lines[-1].startswith("extract shard 0/1: clips: ") and "(100.0%)" in lines[-1]


def test_the_cli_writes_progress_lines_when_not_a_terminal(tmp_path, cli):
    root = write_tiny_react(tmp_path / "r", pairs_per_split=1)
    work = prepared_work(root, tmp_path, "w")
    res = cli("extract", "--work", work, "--features", "emotion")
    assert res.exit_code == 0, res.output
    assert "extract shard 0/1: clips: 0/" in res.output and "(100.0%)" in res.output
