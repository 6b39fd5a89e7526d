"""Opening the configured database for the app and the commands."""

from __future__ import annotations

import logging
import sys


async def open_database(settings, *, load_bundled: bool = True, show_progress: bool = False):
    """The configured database, schema ready, the demo pages loaded where they belong
    (`tui.db.importer.ensure_demo_kb`: the default database only, until the user has
    material of their own there)."""
    from tui.db.engine import Database
    from tui.db.importer import ensure_demo_kb

    db = Database(settings.database_url)
    try:
        await db.init()
        if load_bundled:
            await ensure_demo_kb(db, settings)
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
