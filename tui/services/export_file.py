"""Writing a conversation to a Markdown file (the app's Export, Ctrl+S)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tui.services.archive import ConversationArchive
from tui.services.export import conversation_to_markdown


async def conversation_markdown(archive: ConversationArchive, conversation_id: str,
                                creator_names: dict[str, str]) -> tuple[str, str]:
    """(the conversation as Markdown, its file name `chrysopedia-<id prefix>.md`)."""
    messages, summary = await archive.load(conversation_id)
    meta = summary.as_dict() if summary else {"id": conversation_id}
    name = creator_names.get(meta.get("creator_slug") or "")
    if name:
        meta["creator_name"] = name
    return conversation_to_markdown(meta, messages), f"chrysopedia-{conversation_id[:8]}.md"


async def export_conversation(archive: ConversationArchive, conversation_id: str,
                              folder: Path, creator_names: dict[str, str]) -> Path:
    """Write the conversation in `folder` (made if missing); its path."""
    text, filename = await conversation_markdown(archive, conversation_id, creator_names)
    path = folder / filename

    def write() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    await asyncio.to_thread(write)
    return path
