"""The execution contract's options, declared once for every sharded stage.

``clip``, ``extract``, ``generate`` and ``render`` run their work as shards (local processes,
``--shard i/N``, or a Slurm array); :func:`execution_options` adds the same options to each of
them, in one help panel, and hands the command an :class:`~reactcli.execution.ExecConfig` as its
``exec_cfg`` argument.
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable, Optional

import typer

from reactcli.errors import ConfigError
from reactcli.execution import ExecConfig
from reactcli.manifest import parse_shard

__all__ = ["EXECUTION_PANEL", "execution_options", "exec_options"]

EXECUTION_PANEL = "Execution (local processes, shards, Slurm)"


def exec_options(num_jobs: int, shard: str | None, executor: str, slurm_partition: str | None,
                 slurm_time: int, slurm_gpus: int, slurm_timeout: float) -> ExecConfig:
    """The :class:`ExecConfig` of the execution options, checked."""
    if num_jobs < 1:
        raise ConfigError("--num-jobs must be >= 1")
    if executor not in ("local", "slurm"):
        raise ConfigError(f"--executor {executor!r}: expected local or slurm")
    return ExecConfig(executor=executor, num_jobs=num_jobs, shard=parse_shard(shard) if shard else None,
                      slurm_partition=slurm_partition, slurm_time=slurm_time, slurm_gpus=slurm_gpus,
                      slurm_timeout=slurm_timeout)


def _params(units: str) -> list[inspect.Parameter]:
    def opt(name: str, annotation, default, *decls: str, **kw) -> inspect.Parameter:
        return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                                 default=typer.Option(default, *decls, rich_help_panel=EXECUTION_PANEL, **kw))

    return [
        opt("num_jobs", int, 1, "--num-jobs",
            help=f"Parallel local processes over {units} (with --executor slurm: the number of array tasks)."),
        opt("shard", Optional[str], None, "--shard",
            help=f"Run only shard i/N (0-based) of {units} and keep its output; rerun without --shard "
                 "(with --num-jobs N) to merge."),
        opt("executor", str, "local", "--executor", help="local (process pool) or slurm (one job array through submitit)."),
        opt("slurm_partition", Optional[str], None, "--slurm-partition", help="Slurm partition."),
        opt("slurm_time", int, 60, "--slurm-time", help="Minutes per Slurm array task."),
        opt("slurm_gpus", int, 0, "--slurm-gpus", help="GPUs per Slurm task."),
        opt("slurm_timeout", float, 3600.0, "--slurm-timeout", help="Seconds to wait for the array."),
    ]


def execution_options(units: str) -> Callable[[Callable], Callable]:
    """Decorator for a command function with an ``exec_cfg`` parameter: the CLI gets the execution
    options (their help says they shard ``units``, e.g. "the sessions") and the function gets their
    :class:`ExecConfig`. Put it under ``@handle_errors`` so that a bad value is a one-line error."""

    def decorate(fn: Callable) -> Callable:
        extra = _params(units)
        names = [p.name for p in extra]
        sig = inspect.signature(fn)
        own = [p for p in sig.parameters.values() if p.name != "exec_cfg"]

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            kwargs["exec_cfg"] = exec_options(**{n: kwargs.pop(n) for n in names})
            return fn(*args, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=own + extra)  # what Typer reads
        return wrapper

    return decorate
