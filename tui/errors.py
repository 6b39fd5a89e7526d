"""Errors the command line reports as one line, importable without heavy modules."""

from __future__ import annotations


class SchemaError(Exception):
    """The database's schema cannot be used by this version of Chrysopedia."""


class UsageError(Exception):
    """Bad input on the command line: one clear line, exit status 2."""


class SetupError(Exception):
    """A server or setting the app depends on does not work as configured.

    `str(exc)` is one line naming the setting, where it came from, the server
    (password masked) and the fix; the CLI prints it and exits 2."""

    def __init__(self, line: str, *, part: str = "", log_path: str | None = None) -> None:
        super().__init__(line)
        self.line = line
        self.part = part  # "database" | "redis" | "model"
        self.log_path = log_path
        self.diagnosis = None  # tui.services.diagnose.Diagnosis, when one made it
