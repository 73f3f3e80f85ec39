"""Shared option handling of the execution contract (--num-jobs, --shard, --executor slurm)."""

from __future__ import annotations

import typer

from reactcli.errors import ConfigError
from reactcli.execution import ExecConfig
from reactcli.manifest import parse_shard


# Slurm options shared verbatim by every sharded stage (clip, extract, generate, render); each
# command still declares its own --num-jobs/--shard/--executor, whose help says what it shards.
SLURM_PARTITION = typer.Option(None, "--slurm-partition", help="Slurm partition.")
SLURM_TIME = typer.Option(60, "--slurm-time", help="Minutes per Slurm array task.")
SLURM_GPUS = typer.Option(0, "--slurm-gpus", help="GPUs per Slurm task.")
SLURM_TIMEOUT = typer.Option(3600.0, "--slurm-timeout", help="Seconds to wait for the array.")


def exec_options(num_jobs: int, shard: str | None, executor: str, slurm_partition: str | None,
                 slurm_time: int, slurm_gpus: int, slurm_timeout: float) -> ExecConfig:
    if num_jobs < 1:
        raise ConfigError("--num-jobs must be >= 1")
    if executor not in ("local", "slurm"):
        raise ConfigError(f"--executor {executor!r}: expected local or slurm")
    return ExecConfig(executor=executor, num_jobs=num_jobs, shard=parse_shard(shard) if shard else None,
                      slurm_partition=slurm_partition, slurm_time=slurm_time, slurm_gpus=slurm_gpus,
                      slurm_timeout=slurm_timeout)
