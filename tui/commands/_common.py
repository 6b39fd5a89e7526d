"""Helpers shared by subcommands."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def open_database(settings, *, load_bundled: bool = True):
    """The configured database, schema ready, bundled KB loaded when new or changed."""
    from tui.db.engine import Database
    from tui.db.importer import ensure_bundled_kb, ensure_vectors

    db = Database(settings.database_url)
    try:
        await db.init()
        if load_bundled:
            await ensure_bundled_kb(db)
            await ensure_vectors(db)
    except BaseException:
        await db.dispose()
        raise
    return db


def run_with_db(settings, body: Callable[[Any], Awaitable[T]], *, load_bundled: bool = True) -> T:
    """Open the database, run `body(db)`, dispose the engine; one event loop."""

    async def main() -> T:
        db = await open_database(settings, load_bundled=load_bundled)
        try:
            return await body(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
