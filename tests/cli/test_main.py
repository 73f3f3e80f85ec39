import pytest

import reactcli


def test_version_and_help(cli):
    res = cli("--version")
    assert res.exit_code == 0 and reactcli.__version__ in res.output
    res = cli("--help")
    assert res.exit_code == 0
    for opt in ("--seed", "--log-level", "--debug"):
        assert opt in res.output
    assert "prepare" in res.output


def test_prepare_help_explains_every_option(cli):
    res = cli("prepare", "react", "--help")
    assert res.exit_code == 0
    for opt in ("--root", "--work", "--frames", "--skip-bad", "--splits"):
        assert opt in res.output


def test_expected_error_is_one_line_without_traceback(cli, tmp_path):
    res = cli("prepare", "react", "--root", tmp_path / "nope", "--work", tmp_path / "w")
    assert res.exit_code == 1
    assert "nope: REACT root folder not found" in res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize("args, option, choices", [
    (["generate", "--work", "w", "--baseline", "copycat"], "--baseline", "'gt', 'mime', 'random', 'meanseq', 'meanfr'"),
    (["generate", "--work", "w", "--checkpoint", "c.pt", "--precision", "fp16"], "--precision", "'fp32', 'bf16'"),
    (["generate", "--work", "w", "--checkpoint", "c.pt", "--timestep-spacing", "last"], "--timestep-spacing",
     "'leading', 'trailing', 'linspace'"),
    (["evaluate", "run", "--work", "w", "--run", "r", "--feature", "landmarks"], "--feature", "'emotion', 'tdmm'"),
    (["appropriate", "build", "--work", "w", "--rule", "best"], "--rule", "'auto', 'threshold', 'topk'"),
    (["extract", "--work", "w", "--executor", "pbs"], "--executor", "'local', 'slurm'"),
    (["synth", "--out", "o", "--layout", "mars"], "--layout", "'react', 'raw'"),
])
def test_choice_options_are_usage_errors_listing_the_choices(cli, args, option, choices):
    res = cli(*args)
    assert res.exit_code == 2, res.output
    flat = " ".join(res.output.replace("│", " ").split())
    assert option in flat and choices in flat


def test_choices_are_listed_in_help(cli):
    assert "fp32|bf16" in cli("generate", "--help").output
    assert "emotion|tdmm" in cli("evaluate", "run", "--help").output
