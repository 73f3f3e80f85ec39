import os

import pytest
from typer.testing import CliRunner

os.environ.setdefault("OMP_NUM_THREADS", "1")
# every manifest a test writes is checked against its shipped JSON Schema (reactcli.manifest.schema)
os.environ.setdefault("REACTCLI_VALIDATE_MANIFESTS", "1")


@pytest.fixture
def cli():
    """Run ``reactcli`` in-process; returns the click Result (exit_code, output)."""
    from reactcli.cli.main import app

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return run


@pytest.fixture(autouse=True)
def _reset_cli_state():
    """Global CLI options (``--debug``, ``--seed``) must not leak from one test to the next."""
    from reactcli.cli.common import STATE, GlobalState

    saved = GlobalState(**vars(STATE))
    yield
    STATE.seed, STATE.debug, STATE.log_level = saved.seed, saved.debug, saved.log_level
