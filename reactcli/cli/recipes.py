"""``reactcli recipes``: list the shipped training recipes, or print one to copy and edit."""

from __future__ import annotations

from typing import Optional

import typer

from reactcli.cli.common import handle_errors, out


@handle_errors
def command(
    name: Optional[str] = typer.Argument(None, help="A shipped recipe, e.g. synthetic/reactface: print it (YAML)."),
) -> None:
    """List the shipped recipes (reactcli train --config <set>/<name> reads them), or print one."""
    from reactcli.errors import InputError
    from reactcli.recipes import recipe_names, recipe_path

    if name is None:
        for n in recipe_names():
            out.print(n, highlight=False)
        return
    path = recipe_path(name)
    if path is None:
        raise InputError(f"{name}: no such shipped recipe; known: {', '.join(recipe_names())}")
    typer.echo(path.read_text(), nl=False)
