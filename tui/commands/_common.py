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


def names(label: str, items: list[str], *, limit: int = 8) -> str:
    """`label: a, b, c` for a few names; past `limit`, the count and the first ones (an
    import of a thousand channels would otherwise print one line of a thousand names)."""
    if len(items) <= limit:
        return f"{label}: {', '.join(items)}"
    return (f"{label} ({len(items)}): {', '.join(items[:limit])} and {len(items) - limit} "
            "more (`chrysopedia kb list` names them all)")
