import os

import pytest
from typer.testing import CliRunner

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def cli():
    """Run ``reactcli`` in-process; returns the click Result (exit_code, output)."""
    from reactcli.cli.main import app

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return run
