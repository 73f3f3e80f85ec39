"""Progress for logs that are not terminals (Slurm logs, CI logs, ``2> file``).

A terminal gets rich's live bars (:mod:`reactcli.cli.common`); a log file gets nothing from them
until a stage ends, and a Slurm task's log stays empty until its shard is done. So every long
loop reports ``on_progress(task, done, total)`` and, where no terminal shows it, a
:class:`ProgressLog` turns the calls into plain lines, the first one at once, then at most one
every ``every_s`` seconds, and the last one when the task ends::

    extract mfcc: 120/1612 (7.4%)  3.21/s  elapsed 0:00:37  ETA 0:07:44
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

__all__ = ["ProgressLog", "ProgressFn", "worker_progress"]

ProgressFn = Callable[[str, int, int], None]


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class ProgressLog:
    """``on_progress`` callback that writes a line per task every ``every_s`` seconds."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.stream = stream
        self.every_s = every_s
        self.clock = clock
        self._start: dict[str, float] = {}
        self._last: dict[str, float] = {}

    def line(self, task: str, done: int, total: int | None) -> str:
        now = self.clock()
        elapsed = now - self._start.setdefault(task, now)
        rate = done / elapsed if elapsed > 0 else 0.0
        text = f"{task}: {done}/{total}" if total else f"{task}: {done}"
        if total:
            text += f" ({100.0 * done / total:.1f}%)"
        text += f"  {rate:.3g}/s  elapsed {_clock(elapsed)}"
        if total and rate > 0 and done < total:
            text += f"  ETA {_clock((total - done) / rate)}"
        return text

    def __call__(self, task: str, done: int, total: int | None) -> None:
        now = self.clock()
        first = task not in self._start
        self._start.setdefault(task, now)
        finished = bool(total) and done >= total
        if not (first or finished or now - self._last.get(task, -float("inf")) >= self.every_s):
            return
        self._last[task] = now
        stream = self.stream or sys.stderr
        print(self.line(task, done, total), file=stream, flush=True)


def worker_progress(on_progress: ProgressFn | None = None) -> ProgressFn | None:
    """The progress callback of a shard's loop: the caller's, else log lines when stderr is not a
    terminal (a Slurm task's or a worker's log), else None (a terminal shows the driver's bars)."""
    if on_progress is not None:
        return on_progress
    isatty = getattr(sys.stderr, "isatty", lambda: False)
    return None if isatty() else ProgressLog()
