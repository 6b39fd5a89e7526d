"""Start-up: what the app loads after its first frame.

The services (SQLAlchemy, openai, redis, the chat service) and an answer's Markdown
widgets (Textual's Markdown, markdown-it, Pygments) are imported in a thread and the
database opened after the first paint, so the app appears about as fast as a bare Textual
app (`tests/test_startup_imports.py`). Nothing here imports them at module level.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from typing import Any

logger = logging.getLogger("chrysopedia.app")

# A turn still "streaming" in the archive this long after its last write was cut off (a
# killed process): marked interrupted at start-up.
INTERRUPTED_AFTER_S = 60.0


class Services:
    """The loaded services (None until loaded)."""

    def __init__(self) -> None:
        self.db: Any = None
        self.history: Any = None
        self.chat: Any = None
        self.transcripts: Any = None  # the transcripts module (the archive's queries)
        self.archive: Any = None  # ConversationArchive
        self.owns_db = True
        self.creators: list[dict[str, Any]] = []
        self.demo = False  # the bundled demo pages are loaded (the status bar says so)

    async def close(self) -> None:
        try:
            if self.chat is not None and hasattr(self.chat, "aclose"):
                await self.chat.aclose()
            if self.history is not None:
                await self.history.close()
            if self.db is not None and self.owns_db:
                await self.db.dispose()
        except Exception:  # noqa: BLE001 - closing down
            logger.warning("close failed", exc_info=True)


async def demo_loaded(db: Any) -> bool:
    """Whether the demo pages are in `db` (False when that cannot be read)."""
    from tui.db.importer import demo_loaded as loaded

    try:
        return await loaded(db)
    except Exception:  # noqa: BLE001 - a status hint only
        logger.warning("demo_loaded failed", exc_info=True)
        return False


async def refresh_kb_state(services: Services) -> None:
    """Read again what the knowledge base holds (creators and their profiles, demo pages)
    after something changed it (a distill run)."""
    services.creators = await services.archive.creators()
    services.demo = await demo_loaded(services.db)


def _heavy_imports(need_chat: bool):
    import tui.services.archive as archive
    import tui.services.database as database
    import tui.services.history as history
    import tui.services.transcripts as transcripts
    import tui.widgets.answer_markdown  # noqa: F401 - Textual's Markdown, off the first frame

    chat = importlib.import_module("tui.services.chat") if need_chat else None
    return archive, database, chat, history, transcripts


async def load_services(services: Services, settings, *, chat_service: Any = None,
                        database: Any = None, load_bundled_kb: bool = True) -> None:
    """Fill `services`: the database (or `database`), memory, the archive and its
    creators, the chat service (or `chat_service`)."""
    archive, db_module, chat, history, transcripts = await asyncio.to_thread(
        _heavy_imports, chat_service is None)
    services.transcripts = transcripts
    if database is not None:
        services.db, services.owns_db = database, False
    else:
        services.db = await db_module.open_database(settings, load_bundled=load_bundled_kb)
    services.archive = archive.ConversationArchive(services.db)
    try:
        await services.archive.mark_interrupted(INTERRUPTED_AFTER_S)
    except Exception:  # noqa: BLE001 - housekeeping only
        logger.warning("mark_interrupted failed", exc_info=True)
    services.history = await history.open_history(settings, services.db)
    services.creators = await services.archive.creators()
    services.demo = await demo_loaded(services.db)
    if chat_service is not None:
        services.chat = chat_service
    else:
        services.chat = chat.ChatService(settings, services.db, services.history)
