"""``reactcli validate WORK``: check every manifest of a work directory against its JSON Schema."""

from __future__ import annotations

from pathlib import Path

import typer

from reactcli.cli.common import handle_errors, out


@handle_errors
def command(
    work: Path = typer.Argument(..., help="Work directory (its manifests/ folder: sessions, clips, pairs, arrays, appropriate_<split>, generated-<run>-<split> JSONL and identities.json)."),
) -> None:
    """Validate WORK's manifests against the shipped JSON Schemas (manifests/schemas/) and check that
    every item names known clips; a broken record stops with file:line, the field and what was expected."""
    from reactcli.manifest.schema import validate_work

    report = validate_work(work)
    for name, counts in report.items():
        out.print(f"{name}: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    total = sum(n for counts in report.values() for n in counts.values())
    out.print(f"[bold green]ok[/]: {len(report)} manifests, {total} records valid")
