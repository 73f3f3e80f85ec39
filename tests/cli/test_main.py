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
