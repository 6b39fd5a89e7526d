"""The full-text search index over sections (owned by the search service).

`ensure_index(conn)` creates whatever the backend needs (idempotent);
`rebuild_index(conn)` refreshes it after an import changed the knowledge base.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection


async def ensure_index(conn: AsyncConnection) -> None:
    return None


async def rebuild_index(conn: AsyncConnection) -> None:
    return None
