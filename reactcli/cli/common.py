"""Shared CLI plumbing: global options, error handling, progress bars.

Every stage module in ``reactcli.cli`` is thin: it parses options, builds a config, and calls one
library function. Expected failures (``ReactcliError``) print one red line and exit non-zero;
``reactcli --debug ...`` re-raises them with the traceback.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Callable, Iterable, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from reactcli.errors import ReactcliError
from reactcli.progress import ProgressLog

console = Console(stderr=True)
out = Console()

T = TypeVar("T")


@dataclass
class GlobalState:
    """Options given before the subcommand (``reactcli --seed 3 --debug extract ...``)."""

    seed: int = 0
    debug: bool = False
    log_level: str = "INFO"


STATE = GlobalState()


def configure_logging(level: str) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=True)],
        force=True,
    )


def set_threads(n: int) -> None:
    """Limit CPU threads of torch, numba and OpenMP (also for child processes)."""
    import os

    from reactcli.errors import ConfigError

    if n < 1:
        raise ConfigError("--threads must be >= 1")
    os.environ["OMP_NUM_THREADS"] = str(n)
    os.environ["NUMBA_NUM_THREADS"] = os.environ.get("NUMBA_NUM_THREADS", str(n))
    import torch

    torch.set_num_threads(n)
    try:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:  # pragma: no cover - numba is a dependency
        pass


def os_error_line(exc: OSError) -> str:
    """One line for an operating-system error: the path, what went wrong and what to do."""
    import errno

    what = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
    path = exc.filename
    if path is not None and exc.filename2 is not None:
        path = f"{path} -> {exc.filename2}"
    hint = {errno.ENOSPC: "free some space and rerun (finished outputs are kept)",
            errno.EDQUOT: "free some space and rerun (finished outputs are kept)",
            errno.EACCES: "check the permissions, or choose another --work / output path",
            errno.EROFS: "the file system is read-only; choose another --work / output path",
            errno.EPERM: "check the permissions, or choose another --work / output path"}.get(exc.errno or -1, "")
    line = f"{path}: {what}" if path is not None else what
    return f"{line}; {hint}" if hint else line


def handle_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorator for command functions: expected errors become one line + exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ReactcliError as exc:
            if STATE.debug:
                raise
            console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=getattr(exc, "exit_code", 1)) from None
        except OSError as exc:
            # a read-only work dir, a full disk, a file vanished: one line naming the path; the
            # outputs are written atomically, so a rerun after the fix resumes where this one stopped
            if STATE.debug:
                raise
            console.print(f"[bold red]error:[/] {escape(os_error_line(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None
        except KeyboardInterrupt:
            console.print("[bold red]interrupted[/]: completed outputs are kept; rerun to resume")
            raise typer.Exit(code=130) from None

    return wrapper


def progress() -> Progress:
    """A rich progress bar for long loops (writes to stderr, hides itself when not a TTY)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


class StageProgress:
    """Adapter from the library's ``on_progress(stage, done, total)`` callbacks to a rich bar:
    one bar per stage name, created on first use. When the console is not a terminal (a Slurm or
    CI log, ``2> file``), where rich shows the bars only at the end, plain lines with the rate and
    the ETA are written too (:class:`reactcli.progress.ProgressLog`)."""

    def __init__(self, bar: Progress):
        self.bar = bar
        self.tasks: dict[str, int] = {}
        self.log = None if bar.console.is_terminal else ProgressLog(stream=bar.console.file)

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(stage, total=total)
        self.bar.update(self.tasks[stage], completed=done, total=total)
        if self.log is not None:
            self.log(stage, done, total)


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterable[T]:
    """Iterate with a progress bar."""
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with progress() as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
