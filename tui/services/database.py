"""Opening the configured database for the app and the commands."""

from __future__ import annotations


async def open_database(settings, *, load_bundled: bool = True):
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
    except BaseException:
        await db.dispose()
        raise
    return db
