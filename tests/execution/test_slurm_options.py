"""The Slurm options a site needs (account, QoS, memory, CPUs, any #SBATCH option), from the
command line or a --slurm-config file, reach the sbatch script submitit writes."""

from __future__ import annotations

import pytest

from reactcli.cli.execution import exec_options
from reactcli.errors import ConfigError, InputError
from reactcli.execution import slurm_parameters


def _sbatch(cfg) -> str:
    from submitit.slurm.slurm import _make_sbatch_string

    return _make_sbatch_string(command="true", folder="/tmp/logs", **slurm_parameters(cfg))


def test_cli_options_become_sbatch_lines():
    cfg = exec_options(4, None, "slurm", slurm_partition="gpu", slurm_account="proj1", slurm_qos="high",
                       slurm_time=30, slurm_gpus=1, slurm_cpus=8, slurm_mem=16, slurm_sbatch=["constraint=a100",
                                                                                             "--exclude=node3"])
    text = _sbatch(cfg)
    for line in ("#SBATCH --partition=gpu", "#SBATCH --account=proj1", "#SBATCH --qos=high", "#SBATCH --time=30",
                 "#SBATCH --gpus-per-node=1", "#SBATCH --cpus-per-task=8", "#SBATCH --mem=16384M",
                 "#SBATCH --constraint=a100", "#SBATCH --exclude=node3"):
        assert line in text, line
    assert cfg.num_jobs == 4 and cfg.executor == "slurm"


def test_a_site_file_is_overridden_by_the_command_line(tmp_path):
    site = tmp_path / "cluster.yaml"
    site.write_text("account: lab\nqos: normal\nmem_gb: 8\ncpus: 4\nextra: {constraint: v100}\n")
    cfg = exec_options(2, None, "slurm", slurm_config=site, slurm_qos="high", slurm_sbatch=["exclude=n1"])
    assert (cfg.slurm_account, cfg.slurm_qos, cfg.slurm_mem_gb, cfg.slurm_cpus) == ("lab", "high", 8.0, 4)
    assert cfg.slurm_extra == {"constraint": "v100", "exclude": "n1"}
    assert "#SBATCH --account=lab" in _sbatch(cfg) and "#SBATCH --qos=high" in _sbatch(cfg)


def test_bad_slurm_settings_are_named(tmp_path):
    with pytest.raises(InputError, match="--slurm-config file not found"):
        exec_options(slurm_config=tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("acount: lab\n")
    with pytest.raises(InputError, match=r"unknown keys \['acount'\]"):
        exec_options(slurm_config=bad)
    with pytest.raises(ConfigError, match="slurm.slurm_cpus: 0 is out of range"):
        exec_options(slurm_cpus=0)
    with pytest.raises(ConfigError, match="expected NAME=VALUE"):
        exec_options(slurm_sbatch=["constraint"])
    with pytest.raises(ConfigError, match="--num-jobs"):
        exec_options(0)


def test_every_sharded_stage_takes_the_same_options(cli):
    for stage in ("clip", "extract", "generate", "render"):
        res = cli(stage, "--help")
        for opt in ("--num-jobs", "--shard", "--executor", "--slurm-config", "--slurm-account", "--slurm-qos",
                    "--slurm-mem", "--slurm-cpus", "--slurm-sbatch"):
            assert opt in res.output, (stage, opt)
