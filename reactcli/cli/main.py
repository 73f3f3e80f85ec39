"""The ``reactcli`` command: global options and the registry of stage subcommands.

Only stages that really work are registered here.
"""

from __future__ import annotations

import importlib
import logging
from typing import Optional

import typer

import reactcli
from reactcli.cli.common import STATE, configure_logging, set_threads

app = typer.Typer(
    name="reactcli",
    help=(
        "From raw dyadic sessions (RECOLA/NoXI, REACT clips) to generated, scored and rendered "
        "listener reactions. Every stage reads and writes one work directory (--work)."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"reactcli {reactcli.__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    seed: int = typer.Option(0, "--seed", help="Global random seed (stages record it; same seed -> same output)."),
    log_level: str = typer.Option("INFO", "--log-level", help="Logging level: DEBUG, INFO, WARNING, ERROR."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for expected errors instead of one line."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads for torch, numba and OpenMP (default: all cores). 1 is fastest when other jobs share the machine."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    if threads is not None:
        set_threads(threads)
    STATE.seed = seed
    STATE.debug = debug
    STATE.log_level = log_level
    configure_logging(log_level)
    logging.getLogger(__name__).debug("reactcli %s, seed %d", reactcli.__version__, seed)


# (module, attribute, name): groups are Typer apps, single commands are functions.
_GROUPS = [
    ("reactcli.cli.prepare", "app", "prepare"),
    ("reactcli.cli.evaluate", "app", "evaluate"),
    ("reactcli.cli.appropriate", "app", "appropriate"),
    ("reactcli.cli.import_", "app", "import"),
]
_COMMANDS = [
    ("reactcli.cli.synth", "command", "synth"),
    ("reactcli.cli.extract", "command", "extract"),
    ("reactcli.cli.clip", "command", "clip"),
    ("reactcli.cli.train", "command", "train"),
    ("reactcli.cli.recipes", "command", "recipes"),
    ("reactcli.cli.generate", "command", "generate"),
    ("reactcli.cli.render", "command", "render"),
    ("reactcli.cli.export", "command", "export"),
    ("reactcli.cli.demo", "command", "demo"),
    ("reactcli.cli.validate", "command", "validate"),
    ("reactcli.cli.verify", "command", "verify"),
]


def _load(module: str, attr: str):
    try:
        return getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as exc:  # a stage not built yet; any other import error is a bug
        if exc.name == module:
            return None
        raise


def _register() -> None:
    for module, attr, name in _GROUPS:
        obj = _load(module, attr)
        if obj is not None and name == "evaluate":
            obj.command("run")(_load("reactcli.cli.evaluate_run", "run_command"))
            obj.command("personal")(_load("reactcli.cli.evaluate_personal", "personal_command"))
            obj.command("select")(_load("reactcli.cli.evaluate_select", "select_command"))
            obj.command("compare")(_load("reactcli.cli.evaluate_compare", "compare_command"))
            obj.command("summary")(_load("reactcli.cli.evaluate_summary", "summary_command"))
        if obj is not None:
            app.add_typer(obj, name=name)
    for module, attr, name in _COMMANDS:
        fn = _load(module, attr)
        if fn is not None:
            app.command(name)(fn)


_register()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
