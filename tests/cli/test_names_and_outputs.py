"""Names used as paths and output paths are checked before any work (issue 27, "close each class")."""

import pytest
from typer.testing import CliRunner

from reactcli.cli.main import app
from reactcli.errors import ConfigError
from reactcli.generation.store import manifest_path
from reactcli.io import check_name, check_output
from reactcli.manifest.items import load_items


@pytest.mark.parametrize("bad", ["", "a/b", "..", ".hidden", "-x", "a\nb", "x" * 201])
def test_bad_names_are_refused(bad, tmp_path):
    with pytest.raises(ConfigError, match="--run"):
        check_name(bad, "--run")
    with pytest.raises(ConfigError, match="--run"):
        manifest_path(tmp_path, bad, "test")
    with pytest.raises(ConfigError, match="--split"):
        load_items(tmp_path, bad)


def test_good_names_pass():
    for ok in ("reactface", "perfrdiff-gafrg", "run_1.5", "seed=3", "é"):
        assert check_name(ok, "--run") == ok


def test_output_paths(tmp_path):
    (tmp_path / "f").write_text("x")
    (tmp_path / "d").mkdir()
    with pytest.raises(ConfigError, match=r"--out .*d: is a folder"):
        check_output(tmp_path / "d", "--out")
    with pytest.raises(ConfigError, match=r"--out .*f: exists and is not a folder"):
        check_output(tmp_path / "f", "--out", "dir")
    with pytest.raises(ConfigError, match=r"is a file, not a folder"):
        check_output(tmp_path / "f" / "sub" / "m.json", "--out")
    assert check_output(tmp_path / "new" / "deeper" / "m.json", "--out") == tmp_path / "new/deeper/m.json"


def test_cli_refuses_bad_output_in_one_line(tmp_path):
    (tmp_path / "f").write_text("x")
    res = CliRunner().invoke(app, ["export", "--work", str(tmp_path), "--run", "r", "--split", "test",
                                   "--out", str(tmp_path / "f")])
    assert res.exit_code == 1 and "exists and is not a folder" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "f" / "corpus")])
    assert res.exit_code == 1 and "is a file, not a folder" in " ".join(res.output.split())
