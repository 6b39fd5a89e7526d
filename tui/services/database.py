"""Opening the configured database for the app and the commands."""

from __future__ import annotations

import logging
import sys


async def open_database(settings, *, load_bundled: bool = True, show_progress: bool = False):
    """The configured database, schema ready, the demo pages loaded where they belong
    (`tui.db.importer.ensure_demo_kb`: the default database only, until the user has
    material of their own there), section vectors for the configured embedding model.

    A database that cannot be opened (unreachable, refused, missing, no permission…)
    raises SetupError: one line naming the setting, its source, the server and the fix
    (`tui.services.diagnose`), the traceback in the error log."""
    from tui.db.engine import Database
    from tui.db.importer import ensure_demo_kb

    db = None
    try:
        db = Database(settings.database_url,
                      connect_timeout=getattr(settings, "database_connect_timeout", None),
                      pool_size=getattr(settings, "database_pool_size", None),
                      max_overflow=getattr(settings, "database_max_overflow", None))
        async with db.startup_lock():
            await db.init()
            if load_bundled:
                await ensure_demo_kb(db, settings)
        if load_bundled:
            await _vectors(db, settings, show_progress)
    except BaseException as exc:
        if db is not None:
            await db.dispose()
        raise_setup_error(exc, settings)
        raise
    return db


def raise_setup_error(exc: BaseException, settings, *, opening: bool = True) -> None:
    """Raise `exc` as a SetupError if it says the database does not work (else return)."""
    from tui.errors import SetupError

    if isinstance(exc, Exception) and not isinstance(exc, SetupError):
        from tui.services import diagnose

        if diagnose.is_database_failure(exc, opening=opening):
            raise diagnose.database_error(exc, settings) from exc


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
