"""The one table of the chat screen's actions: it makes their key bindings, their
command palette entries and the help screen's rows.

Binding ids keep the `app.` prefix: users' keymaps (`[keymap]` in config.toml) name them.
The prompt's, sidebar's and slider's own keys are their widgets' BINDINGS; the help
screen lists those too, as remapped by the keymap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace

from textual.binding import Binding


@dataclass(frozen=True)
class Action:
    action: str  # the action's name (ChatScreen.action_<name>)
    description: str  # footer and help screen
    key: str | None = None  # None: in the command palette only
    show: bool = False  # in the footer
    palette: str = ""  # the command palette's title ("" = not there)
    palette_help: str = ""
    binding_id: str = ""  # default: app.<action>

    @property
    def id(self) -> str:
        return self.binding_id or f"app.{self.action}"


ACTIONS: tuple[Action, ...] = (
    # Two bindings on Escape: while an answer streams it stops it (and the footer says so);
    # otherwise it returns to the prompt.
    Action("stop", "Stop answer", "escape", show=True, palette="Stop the answer",
           palette_help="Cancel the streaming answer (keeps the partial text)"),
    Action("focus_prompt", "Back to the prompt", "escape", binding_id="app.escape"),
    Action("help", "Keys", "f1", show=True, palette="Help: keys",
           palette_help="List the key bindings"),
    Action("focus_sources", "Sources", "ctrl+l", show=True, palette="Focus the sources",
           palette_help="Move through sources with Up/Down, Enter opens"),
    Action("regenerate", "Regenerate", "ctrl+r", show=True,
           palette="Regenerate the last answer",
           palette_help="With the current creator and voice weight"),
    Action("retry", "Retry", palette="Retry", palette_help="Ask the last failed question again"),
    Action("new_conversation", "New conversation", "ctrl+n", palette="New conversation",
           palette_help="Start an empty conversation"),
    Action("conversations", "Conversations", "ctrl+o", show=True, palette="Conversations",
           palette_help="List past conversations to resume or delete"),
    Action("next_claim", "Next questionable claim", "f5", palette="Next questionable claim",
           palette_help="Jump to the next claim its sources do not support, and say why"),
    Action("copy_answer", "Copy the last answer", "ctrl+g", palette="Copy the last answer",
           palette_help="To the clipboard"),
    Action("export", "Export to Markdown", "ctrl+s", palette="Export the conversation",
           palette_help="As Markdown with its sources as footnotes"),
    Action("usage", "Usage", "f4", palette="Usage",
           palette_help="Tokens, requests and latency by day"),
    Action("toggle_sidebar", "Show/hide sources", "ctrl+b",
           palette="Toggle the sources sidebar", palette_help="Show or hide the sidebar"),
    Action("toggle_voice_preview", "Voice preview", "ctrl+t", binding_id="app.voice_preview",
           palette="Toggle the voice preview",
           palette_help="Show the voice instructions for this creator and weight"),
    Action("focus_prompt", "Back to the prompt", "f2", palette="Focus the prompt",
           palette_help="Back to typing a question"),
    Action("focus_creator", "Choose the creator", "f3", palette="Choose the creator",
           palette_help="Scope search and voice to one creator"),
    Action("focus_voice", "Tune the voice", "f8", palette="Tune the voice",
           palette_help="Focus the voice slider (Left/Right, Shift for 0.20)"),
    Action("distill", "Distill the creator", palette="Distill the chosen creator",
           palette_help="Technique pages and a voice profile from their transcripts "
                        "(runs in the background)"),
)

# The order of the command palette's entries.
PALETTE_ORDER = (
    "stop", "regenerate", "retry", "next_claim", "new_conversation", "conversations", "copy_answer",
    "export", "usage", "help", "focus_sources", "toggle_sidebar", "toggle_voice_preview",
    "focus_prompt", "focus_creator", "focus_voice", "distill",
)


def bindings() -> list[Binding]:
    """The chat screen's bindings: every action with a key, then 1–9, 0 for sources 1–10."""
    made = [Binding(a.key, a.action, a.description, show=a.show, id=a.id)
            for a in ACTIONS if a.key]
    made += [Binding(str(n % 10), f"jump_source({n})", f"Source {n}", show=False,
                     id=f"app.source_{n}") for n in range(1, 11)]
    return made


def palette_entries() -> Iterator[tuple[str, str, str]]:
    """(title, help, action name) for the command palette, in PALETTE_ORDER."""
    by_action = {a.action: a for a in ACTIONS if a.palette}
    for name in PALETTE_ORDER:
        action = by_action[name]
        yield action.palette, action.palette_help, action.action


# Keys the help screen names that are no binding of ours.
_MORE_HELP = {
    "Everywhere": [("1–9, 0", "Jump to source N (0 is 10), outside the prompt"),
                   ("^p", "Command palette: every action, and themes"),
                   ("^q", "Quit")],
    "Prompt": [("↑ / ↓", "Earlier questions (on the first / last line)")],
    "Sources sidebar": [("↑ / ↓", "Move"), ("enter / click", "Open the source")],
}


def help_rows(groups: list[tuple[str, list[Binding], str]], keymap: Mapping[str, str],
              key_display: Callable[[Binding], str]) -> list[tuple[str, str, str]]:
    """(keys, description, group) for each action of each (group, bindings, id prefix),
    with the keys as remapped by `keymap`, then the group's other keys."""
    rows: list[tuple[str, str, str]] = []
    for group, group_bindings, prefix in groups:
        by_action: dict[str, tuple[list[str], str]] = {}
        for binding in group_bindings:
            if not (binding.id or "").startswith(prefix) or not binding.description:
                continue
            if binding.action.startswith("jump_source"):
                continue
            keys, _ = by_action.setdefault(binding.action, ([], binding.description))
            for key in keymap.get(binding.id, binding.key).split(","):
                keys.append(key_display(replace(binding, key=key.strip())))
        for keys, description in by_action.values():
            rows.append((" / ".join(dict.fromkeys(keys)), description, group))
        rows += [(keys, description, group) for keys, description in _MORE_HELP.get(group, [])]
    return rows
