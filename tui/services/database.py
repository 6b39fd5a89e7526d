"""Opening the configured database for the app and the commands."""

from __future__ import annotations


async def open_database(settings, *, load_bundled: bool = True):
    """The configured database, schema ready, bundled KB loaded when new or changed."""
    from tui.db.engine import Database
    from tui.db.importer import ensure_bundled_kb

    db = Database(settings.database_url)
    try:
        await db.init()
        if load_bundled:
            await ensure_bundled_kb(db)
    except BaseException:
        await db.dispose()
        raise
    return db
