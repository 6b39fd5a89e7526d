"""Helpers shared by subcommands."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def open_database(settings, *, load_bundled: bool = True):
    """The configured database, schema ready, bundled KB loaded when new or changed.

    A database that cannot be opened (unreachable, refused, missing, no permission…)
    raises SetupError: one line naming the setting, its source, the server and the fix
    (`tui.services.diagnose`), the traceback in the error log."""
    from tui.db.engine import Database
    from tui.db.importer import ensure_bundled_kb

    db = None
    try:
        db = Database(settings.database_url,
                      connect_timeout=getattr(settings, "database_connect_timeout", None))
        async with db.startup_lock():
            await db.init()
            if load_bundled:
                await ensure_bundled_kb(db)
    except BaseException as exc:
        if db is not None:
            await db.dispose()
        _raise_setup_error(exc, settings)
        raise
    return db


def _raise_setup_error(exc: BaseException, settings, *, opening: bool = True) -> None:
    """Raise `exc` as a SetupError if it says the database does not work (else return)."""
    from tui.errors import SetupError

    if isinstance(exc, Exception) and not isinstance(exc, SetupError):
        from tui.services import diagnose

        if diagnose.is_database_failure(exc, opening=opening):
            raise diagnose.database_error(exc, settings) from exc


def run_with_db(settings, body: Callable[[Any], Awaitable[T]], *, load_bundled: bool = True) -> T:
    """Open the database, run `body(db)`, dispose the engine; one event loop."""

    async def main() -> T:
        db = await open_database(settings, load_bundled=load_bundled)
        try:
            return await body(db)
        except BaseException as exc:
            _raise_setup_error(exc, settings, opening=False)
            raise
        finally:
            await db.dispose()

    return asyncio.run(main())


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
