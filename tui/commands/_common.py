"""Helpers shared by subcommands."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from tui.services.database import open_database, raise_setup_error

T = TypeVar("T")


def run_with_db(settings, body: Callable[[Any], Awaitable[T]], *, load_bundled: bool = True) -> T:
    """Open the database, run `body(db)`, dispose the engine; one event loop."""

    async def main() -> T:
        db = await open_database(settings, load_bundled=load_bundled, show_progress=True)
        try:
            return await body(db)
        except BaseException as exc:
            raise_setup_error(exc, settings, opening=False)
            raise
        finally:
            await db.dispose()

    return asyncio.run(main())


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
