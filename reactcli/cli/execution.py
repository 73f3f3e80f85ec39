"""The execution contract's options, declared once for every sharded stage.

``clip``, ``extract``, ``generate`` and ``render`` run their work as shards (local processes,
``--shard i/N``, or a Slurm array); :func:`execution_options` adds the same options to each of
them, in one help panel, and hands the command an :class:`~reactcli.execution.ExecConfig` as its
``exec_cfg`` argument. A site's Slurm settings can live in a YAML file (``--slurm-config``)
that the options given on the command line override.
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Any, Callable, Literal, Optional

import typer
import yaml

from reactcli.config import from_mapping
from reactcli.errors import ConfigError, InputError
from reactcli.execution import ExecConfig
from reactcli.manifest import parse_shard

__all__ = ["EXECUTION_PANEL", "execution_options", "exec_options"]

EXECUTION_PANEL = "Execution (local processes, shards, Slurm)"

#: Keys of a ``--slurm-config`` file: the ``ExecConfig`` fields without ``slurm_``.
SLURM_KEYS = ("partition", "account", "qos", "time", "gpus", "cpus", "mem_gb", "array_parallelism", "timeout", "extra")


def _slurm_file(path: Path | None) -> dict[str, Any]:
    """The ExecConfig values of a ``--slurm-config`` YAML file."""
    if path is None:
        return {}
    if not path.is_file():
        raise InputError(f"{path}: --slurm-config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise InputError(f"{path}: a Slurm config is a mapping, e.g. {{account: proj1, qos: normal, mem_gb: 16}}")
    unknown = sorted(str(k) for k in data if k not in SLURM_KEYS)
    if unknown:
        raise InputError(f"{path}: unknown keys {unknown}; allowed: {list(SLURM_KEYS)}")
    return {f"slurm_{k}": v for k, v in data.items()}


def _sbatch_items(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--slurm-sbatch {item!r}: expected NAME=VALUE, e.g. constraint=a100")
        out[key.strip().lstrip("-").replace("-", "_")] = value.strip()
    return out


def exec_options(num_jobs: int = 1, shard: str | None = None, executor: str = "local", *,
                 slurm_config: Path | None = None, slurm_partition: str | None = None,
                 slurm_account: str | None = None, slurm_qos: str | None = None, slurm_time: int | None = None,
                 slurm_gpus: int | None = None, slurm_cpus: int | None = None, slurm_mem: float | None = None,
                 slurm_sbatch: list[str] | None = None, slurm_timeout: float | None = None) -> ExecConfig:
    """The :class:`ExecConfig` of the execution options, checked: a ``--slurm-config`` file first,
    then the options given on the command line."""
    if num_jobs < 1:
        raise ConfigError("--num-jobs must be >= 1")
    if executor not in ("local", "slurm"):
        raise ConfigError(f"--executor {executor!r}: expected local or slurm")
    values = _slurm_file(slurm_config)
    given = {"slurm_partition": slurm_partition, "slurm_account": slurm_account, "slurm_qos": slurm_qos,
             "slurm_time": slurm_time, "slurm_gpus": slurm_gpus, "slurm_cpus": slurm_cpus, "slurm_mem_gb": slurm_mem,
             "slurm_timeout": slurm_timeout}
    values.update({k: v for k, v in given.items() if v is not None})
    values["slurm_extra"] = {**(values.get("slurm_extra") or {}), **_sbatch_items(slurm_sbatch)}
    cfg = from_mapping(ExecConfig, {k: v for k, v in values.items() if v is not None}, "slurm")
    cfg.executor, cfg.num_jobs, cfg.shard = executor, num_jobs, parse_shard(shard) if shard else None
    return cfg


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
        opt("executor", Literal["local", "slurm"], "local", "--executor", help="local (process pool) or slurm (one job array through submitit)."),
        opt("slurm_config", Optional[Path], None, "--slurm-config",
            help="YAML file of the site's Slurm settings (keys: partition, account, qos, time, gpus, cpus, mem_gb, "
                 "array_parallelism, timeout, extra: {sbatch option: value}); the options below override it."),
        opt("slurm_partition", Optional[str], None, "--slurm-partition", help="Slurm partition."),
        opt("slurm_account", Optional[str], None, "--slurm-account", help="Slurm account to charge."),
        opt("slurm_qos", Optional[str], None, "--slurm-qos", help="Slurm quality of service."),
        opt("slurm_time", Optional[int], None, "--slurm-time", help="Minutes per Slurm array task (default 60)."),
        opt("slurm_gpus", Optional[int], None, "--slurm-gpus", help="GPUs per Slurm task (default 0)."),
        opt("slurm_cpus", Optional[int], None, "--slurm-cpus", help="CPUs per Slurm task (default 1)."),
        opt("slurm_mem", Optional[float], None, "--slurm-mem", help="Memory per Slurm task in GB (default: the site's)."),
        opt("slurm_sbatch", Optional[list[str]], None, "--slurm-sbatch",
            help="Any other #SBATCH option as NAME=VALUE (repeatable), e.g. --slurm-sbatch constraint=a100."),
        opt("slurm_timeout", Optional[float], None, "--slurm-timeout",
            help="Seconds to wait for the array (default 3600; the shards keep their outputs)."),
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
