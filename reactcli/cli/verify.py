"""``reactcli verify``: check every stored array of a work directory against its CRC32."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reactcli.cli.common import StageProgress, handle_errors, out, progress
from reactcli.errors import ConfigError, InputError


@handle_errors
def command(
    work_arg: Optional[Path] = typer.Argument(None, metavar="WORK", help="Work directory to check (or --work)."),
    work: Optional[Path] = typer.Option(None, "--work", help="Work directory to check."),
) -> None:
    """Read every array of every store file (features/*.h5) and compare it with the CRC32 stored when it
    was written; also check that manifests/arrays.jsonl names only stored arrays. Prints one line per
    problem (file and array) and exits 1 when there is any. Every stage also checks each array it reads
    (once per array per process), so a corrupt array stops it with a one-line error; this command finds
    them all at once."""
    from reactcli.storage import verify_store

    target = work or work_arg
    if target is None:
        raise ConfigError("give the work directory: reactcli verify WORK (or --work WORK)")
    if not target.is_dir():
        raise InputError(f"{target}: work directory not found")
    with progress() as bar:
        res = verify_store(target, on_progress=StageProgress(bar))
    for p in res["problems"]:
        out.print(p, highlight=False, soft_wrap=True, markup=False)
    line = (f"{res['files']} store files, {res['arrays']} arrays ({res['superseded']} superseded by a redo), "
            f"{len(res['problems'])} problems")
    out.print(line, highlight=False)
    if res["problems"]:
        raise InputError(f"{target}: {len(res['problems'])} stored arrays failed verification; the first: {res['problems'][0]}")
