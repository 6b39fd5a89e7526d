"""Errors the command line reports as one line, importable without heavy modules."""

from __future__ import annotations


class SchemaError(Exception):
    """The database's schema cannot be used by this version of Chrysopedia."""


class UsageError(Exception):
    """Bad input on the command line: one clear line, exit status 2."""
