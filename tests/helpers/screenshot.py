"""Screenshots of an HTML file with headless Chromium (to check the demo report as a user sees it).

Why: a test that greps the HTML cannot tell whether the page *renders* (a broken data URI, CSS
that hides a table, an image of zero size). A screenshot from a real browser can be looked at and
checked for content. Chromium is optional: :func:`find_chromium` returns None when it is not
installed (Debian: ``apt-get install -y chromium``) and the tests skip with that reason.

The browser runs with a fresh, empty profile in a temporary folder and every network feature off
(no sync, no component updates, no background requests), so a screenshot never depends on, or
touches, anything outside the file it shows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from reactcli.errors import InputError
from reactcli.io import atomic_path

__all__ = ["find_chromium", "screenshot", "CHROMIUM_FLAGS"]

#: Flags for a headless, offline, throw-away browser.
CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--mute-audio",
)

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable (``$CHROMIUM`` first), or None."""
    env = os.environ.get("CHROMIUM")
    if env and Path(env).is_file():
        return env
    for name in _NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(html: str | os.PathLike, png: str | os.PathLike, width: int = 1280, height: int = 2000,
               timeout: float = 120.0, chromium: str | None = None) -> Path:
    """Render ``html`` (a local file) to ``png`` at ``width`` x ``height`` pixels; returns ``png``.

    Raises InputError when the file or the browser is missing, or the browser fails (its stderr
    tail is in the message).
    """
    html, png = Path(html).resolve(), Path(png).resolve()
    if not html.is_file():
        raise InputError(f"{html}: HTML file not found")
    exe = chromium or find_chromium()
    if exe is None:
        raise InputError("chromium not found: install it (Debian: apt-get install -y chromium) or set $CHROMIUM")
    with tempfile.TemporaryDirectory(prefix="reactcli-chromium-") as profile:
        tmp_png = Path(profile) / "shot.png"
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}/user", f"--screenshot={tmp_png}",
               f"--window-size={int(width)},{int(height)}", html.as_uri()]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise InputError(f"chromium did not finish the screenshot of {html} within {timeout:.0f} s") from exc
        if res.returncode != 0 or not tmp_png.is_file():
            tail = (res.stderr or "").strip().splitlines()[-5:]
            raise InputError(f"chromium failed on {html} (exit {res.returncode}): {' | '.join(tail)}")
        with atomic_path(png, suffix=".png.tmp") as out:
            shutil.copyfile(tmp_png, out)
    return png


if __name__ == "__main__":  # python -m tests.helpers.screenshot report.html out.png
    import sys

    if len(sys.argv) != 3:
        print("usage: python -m tests.helpers.screenshot REPORT.html OUT.png", file=sys.stderr)
        raise SystemExit(2)
    print(screenshot(sys.argv[1], sys.argv[2]))
