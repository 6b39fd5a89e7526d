"""The conversation archive as the app reads it: creators, conversations to list, resume,
export and delete. The queries live in `transcripts` (and the `Creator` table); this is
the app's one door to them, so no screen writes SQL.
"""

from __future__ import annotations

from typing import Any

from tui.services import transcripts
from tui.services.transcripts import ConversationSummary


class ConversationArchive:
    def __init__(self, db: Any) -> None:
        self.db = db

    async def creators(self) -> list[dict[str, Any]]:
        """Every creator by name: `{"slug", "name", "personality_profile"}`."""
        from sqlalchemy import select

        from tui.db.models import Creator

        async with self.db.session() as session:
            rows = (await session.execute(select(Creator).order_by(Creator.name))).scalars().all()
        return [
            {"slug": c.slug, "name": c.name, "personality_profile": c.personality_profile}
            for c in rows
        ]

    async def mark_interrupted(self, older_than: float) -> int:
        return await transcripts.mark_interrupted(self.db, older_than=older_than)

    async def list_rows(self, creator_names: dict[str, str]) -> list[dict[str, Any]]:
        """The conversations as rows for the conversations screen (newest first)."""
        rows = []
        for summary in await transcripts.list_conversations(self.db):
            row = summary.as_dict()
            row["updated_at"] = summary.updated_at
            name = creator_names.get(summary.creator_slug or "")
            if name:
                row["creator_name"] = name
            rows.append(row)
        return rows

    async def load(self, conversation_id: str) -> tuple[list[dict[str, Any]], ConversationSummary | None]:
        """A conversation's messages (oldest first) and its summary (None if unknown)."""
        messages = await transcripts.load_conversation(self.db, conversation_id)
        summary = await transcripts.get_conversation(self.db, conversation_id)
        return messages, summary

    async def delete(self, conversation_id: str) -> bool:
        return await transcripts.delete_conversation(self.db, conversation_id)
