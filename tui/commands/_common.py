"""Helpers shared by subcommands."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def open_database(settings, *, load_bundled: bool = True, show_progress: bool = False):
    """The configured database, schema ready, bundled KB loaded when new or changed."""
    from tui.db.engine import Database
    from tui.db.importer import ensure_bundled_kb

    db = Database(settings.database_url)
    try:
        await db.init()
        if load_bundled:
            await ensure_bundled_kb(db)
            await _vectors(db, settings, show_progress)
    except BaseException:
        await db.dispose()
        raise
    return db


async def _vectors(db, settings, show_progress: bool) -> None:
    """Section vectors for the configured embedding model; a server that fails leaves the
    previous vectors in use (one line on stderr from a command, a log line in the app)."""
    from tui.db import vectors
    from tui.db.importer import ensure_vectors

    vectors.configure(settings)
    progress = None
    if show_progress and getattr(settings, "embed_model", None) and sys.stderr.isatty():
        def progress(done: int, total: int) -> None:
            bar = "#" * (30 * done // max(total, 1))
            sys.stderr.write(f"\rembedding sections [{bar:<30}] {done}/{total}")
            if done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()
    try:
        await ensure_vectors(db, progress=progress)
    except vectors.EmbedError as exc:
        message = f"embeddings not updated, previous ones in use: {exc}"
        if show_progress:
            sys.stderr.write(f"chrysopedia: {message}\n")
        else:
            logging.getLogger(__name__).warning(message)


def run_with_db(settings, body: Callable[[Any], Awaitable[T]], *, load_bundled: bool = True) -> T:
    """Open the database, run `body(db)`, dispose the engine; one event loop."""

    async def main() -> T:
        db = await open_database(settings, load_bundled=load_bundled, show_progress=True)
        try:
            return await body(db)
        finally:
            await db.dispose()

    return asyncio.run(main())


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
