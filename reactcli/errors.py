"""Expected errors.

Anything a user can cause (a missing file, a wrong shape, a missing model asset) raises a
:class:`ReactcliError` subclass with a message that names the file or item and what was expected.
The CLI prints that message on one line and exits non-zero; ``--debug`` shows the traceback.
Library code never calls ``sys.exit``.
"""

from __future__ import annotations


class ReactcliError(Exception):
    """An expected failure caused by input, configuration or environment."""

    exit_code = 1


class InputError(ReactcliError):
    """Bad input data: missing/corrupt file, wrong shape, NaNs, inconsistent manifest."""


class ConfigError(ReactcliError):
    """Bad options or configuration values."""


class BusyError(ReactcliError):
    """Another process is writing the same run or stage (its lock is held)."""


class MissingAssetError(ReactcliError):
    """A local model/asset the user must provide is missing.

    The message always names the asset and the option (or config key) to set.
    """

    def __init__(self, asset: str, option: str, path: object | None = None):
        where = f" (looked at {path})" if path is not None else ""
        super().__init__(f"missing asset: {asset}{where}; set {option} to a local copy")
        self.asset = asset
        self.option = option
