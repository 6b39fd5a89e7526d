"""The creator picker: "Any creator" plus the knowledge base's creators.

Values are creator slugs; "" means any creator. Scopes search and voice. Each creator
with a voice profile says where it came from (distilled, measured, hand-written).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Select

from tui.widgets.safe_text import one_line

ANY = ""


class CreatorPicker(Select[str]):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__([("Any creator", ANY)], value=ANY, allow_blank=False, **kwargs)
        self.creators: dict[str, dict[str, Any]] = {}

    def set_creators(self, creators: list[dict[str, Any]]) -> None:
        """creators: dicts with slug, name and (optional) personality_profile and
        profile_kind (shown beside the name: "distilled", "measured", "hand-written")."""
        self.creators = {c["slug"]: c for c in creators}
        current = self.value
        options = [("Any creator", ANY)] + [(self.label(c), c["slug"]) for c in creators]
        self.set_options(options)
        self.value = current if current in self.creators else ANY

    @staticmethod
    def label(creator: dict[str, Any]) -> Text:
        text = Text(one_line(creator["name"]))
        kind = creator.get("profile_kind")
        if kind:
            text.append(f" · {one_line(kind)}", style="dim")
        return text

    @property
    def creator(self) -> dict[str, Any] | None:
        value = self.value
        return self.creators.get(value) if isinstance(value, str) else None
