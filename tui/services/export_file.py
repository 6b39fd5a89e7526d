"""Writing a conversation to a Markdown file (the app's Export, Ctrl+S)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tui.services.archive import ConversationArchive
from tui.services.export import conversation_to_markdown


async def export_conversation(archive: ConversationArchive, conversation_id: str,
                              folder: Path, creator_names: dict[str, str]) -> Path:
    """Write `chrysopedia-<id prefix>.md` in `folder` (made if missing); its path."""
    messages, summary = await archive.load(conversation_id)
    meta = summary.as_dict() if summary else {"id": conversation_id}
    name = creator_names.get(meta.get("creator_slug") or "")
    if name:
        meta["creator_name"] = name
    text = conversation_to_markdown(meta, messages)
    path = folder / f"chrysopedia-{conversation_id[:8]}.md"

    def write() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    await asyncio.to_thread(write)
    return path
