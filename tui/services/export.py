"""Export a conversation to Markdown, its sources as footnotes.

`conversation_to_markdown(conversation_meta, messages) -> str`

- `conversation_meta`: a mapping or object with `id`, `title`, and optionally
  `creator_name` / `creator_slug`, `created_at`, `updated_at` (datetime or ISO
  string), `personality_weight`.
- `messages`: mappings or `Message`-like objects in order, with `turn`, `role`
  ("user" | "assistant"), `content`, and for answers `sources` (the `sources`
  event's dicts, each with `number`), `model`, `cascade_tier`, `status`
  ("answered" | "failed" | "cancelled" | "incomplete") and `error`.

Each answer's citations `[N]` (also `[1, 3]`) become footnote references
`[^T-N]` (T the turn); each source is defined once per answer as
`[^T-N]: title — creator — section — video @ mm:ss–mm:ss` (a document: `… — manual.pdf, p. 14–15`;
a note: `… — notes/reverb.md › Pre-delay`). When an answer was
regenerated, the earlier versions come first, marked as previous versions and
quoted, with their own footnotes `[^TvK-N]` (K the version). Failed, cancelled
and incomplete answers are marked. Citations inside code are left alone, and
numbers with no matching source stay as written.

Control characters and terminal escape sequences are stripped from all text, so
the file is safe to `cat`. No Textual here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from tui.services.locators import locator_label
from tui.services.sources import DASH, time_range, video_label
from tui.text import clean, one_line

# Fenced code blocks and inline code spans: no citations are rewritten inside them.
_CODE = re.compile(r"(^[ \t]*(`{3,}|~{3,})[^\n]*\n.*?(?:^[ \t]*\2[ \t]*$|\Z)|`+[^`\n]*`+)", re.S | re.M)
# [1] or [1, 2,3] (also [2][1]); not a link text `[1](...)` (link definitions: see below).
_CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\](?!\()")

STATUS_NOTES = {
    "failed": "This answer failed",
    "cancelled": "This answer was cancelled",
    "incomplete": "This answer is incomplete (the app stopped while it streamed)",
}



def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        value = obj.get(key, default)
    else:
        value = getattr(obj, key, default)
    return default if value is None else value


def _when(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return one_line(value)


def source_line(source: Mapping[str, Any]) -> str:
    """`title — creator — section — video @ mm:ss–mm:ss`, leaving out unknown parts; a
    document's or note's source ends with its locator instead (`p. 14–15`,
    `notes/reverb.md › Pre-delay`)."""
    loc = source.get("locator")
    if isinstance(loc, Mapping) and loc.get("kind") in ("page", "heading"):
        where = one_line(locator_label(source))
        if loc.get("kind") == "page" and loc.get("path"):
            where = f"{one_line(loc.get('path'))}, {where}" if where else one_line(loc.get("path"))
        parts = [
            one_line(source.get("title")), one_line(source.get("creator_name")),
            one_line(source.get("section_heading")) if loc.get("kind") == "page" else "", where,
        ]
        return f" {DASH} ".join(p for p in parts if p) or "(unknown source)"
    video = one_line(video_label(source))
    span = time_range(source.get("start_time"), source.get("end_time"))
    if video and span:
        video = f"{video} @ {span}"
    elif span:
        video = f"@ {span}"
    parts = [
        one_line(source.get("title")),
        one_line(source.get("creator_name")),
        one_line(source.get("section_heading")),
        video,
    ]
    return f" {DASH} ".join(p for p in parts if p) or "(unknown source)"


def _numbered(sources: Iterable[Any]) -> dict[int, Mapping[str, Any]]:
    out: dict[int, Mapping[str, Any]] = {}
    for source in sources or []:
        if not isinstance(source, Mapping):
            continue
        try:
            number = int(source.get("number"))
        except (TypeError, ValueError):
            continue
        out.setdefault(number, source)
    return out


def cite_footnotes(text: str, numbers: Iterable[int], label: str) -> tuple[str, list[int]]:
    """Rewrite `[N]` citations (outside code) as `[^LABEL-N]`; return the text and numbers used."""
    known = set(numbers)
    used: list[int] = []

    def replace(match: re.Match[str]) -> str:
        at, rest = match.start(), match.string[match.end() :]
        if rest.startswith(":") and (at == 0 or match.string[at - 1] == "\n"):
            return match.group(0)  # a link definition line
        nums = [int(n) for n in re.split(r"\s*,\s*", match.group(1))]
        if not all(n in known for n in nums):
            return match.group(0)
        for n in nums:
            if n not in used:
                used.append(n)
        return "".join(f"[^{label}-{n}]" for n in nums)

    pieces: list[str] = []
    pos = 0
    for code in _CODE.finditer(text):
        pieces.append(_CITATION.sub(replace, text[pos : code.start()]))
        pieces.append(code.group(0))
        pos = code.end()
    pieces.append(_CITATION.sub(replace, text[pos:]))
    return "".join(pieces), used


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))


def _answer_block(
    message: Any, label: str, footnotes: list[str], *, previous: str | None = None
) -> list[str]:
    sources = _numbered(_get(message, "sources", []))
    body, used = cite_footnotes(clean(_get(message, "content", "")).strip(), sources, label)
    status = _get(message, "status", "answered")
    lines: list[str] = []
    note = STATUS_NOTES.get(status)
    if note:
        error = one_line(_get(message, "error", ""))
        lines.append(f"*{note}{': ' + error if error else '.'}*")
        lines.append("")
    if body:
        lines.append(body)
    elif not note:
        lines.append("*(empty answer)*")
    meta = [one_line(_get(message, "model", "")), one_line(_get(message, "cascade_tier", ""))]
    meta = [m for m in meta if m]
    if meta:
        lines.extend(["", f"*{' · '.join(meta)}*"])
    # Sources the answer did not cite are still listed, after the cited ones.
    for n in used + sorted(n for n in sources if n not in used):
        footnotes.append(f"[^{label}-{n}]: {source_line(sources[n])}")
    uncited = [n for n in sorted(sources) if n not in used]
    if uncited:
        refs = ", ".join(f"[^{label}-{n}]" for n in uncited)
        lines.extend(["", f"Other sources: {refs}"])
    block = "\n".join(lines)
    if previous is not None:
        return [f"**{previous}**", "", _quote(block), ""]
    return [block, ""]


def conversation_to_markdown(conversation_meta: Any, messages: Iterable[Any]) -> str:
    """The whole conversation as a Markdown document (see the module docstring)."""
    title = one_line(_get(conversation_meta, "title", "")) or "Untitled conversation"
    lines = [f"# {title}", ""]
    facts = []
    cid = one_line(_get(conversation_meta, "id", ""))
    if cid:
        facts.append(f"- Conversation: `{cid}`")
    creator = one_line(
        _get(conversation_meta, "creator_name", "") or _get(conversation_meta, "creator_slug", "")
    )
    if creator:
        facts.append(f"- Creator: {creator}")
    weight = _get(conversation_meta, "personality_weight", None)
    if creator and isinstance(weight, int | float) and weight > 0:
        facts.append(f"- Voice weight: {weight:.2f}")
    for key, name in (("created_at", "Started"), ("updated_at", "Last activity")):
        when = _when(_get(conversation_meta, key, ""))
        if when:
            facts.append(f"- {name}: {when}")
    if facts:
        lines.extend([*facts, ""])

    turns: dict[int, dict[str, list[Any]]] = {}
    for message in messages:
        turn = int(_get(message, "turn", 0))
        role = _get(message, "role", "")
        turns.setdefault(turn, {"user": [], "assistant": []}).setdefault(role, []).append(message)

    footnotes: list[str] = []
    for index, turn in enumerate(sorted(turns), start=1):
        group = turns[turn]
        shown = index if turn == 0 else turn
        lines.extend([f"## {shown}. You", ""])
        for question in group.get("user", []):
            lines.extend([clean(_get(question, "content", "")).strip() or "*(empty)*", ""])
        answers = group.get("assistant", [])
        lines.extend([f"## {shown}. Chrysopedia", ""])
        if not answers:
            lines.extend(["*No answer.*", ""])
            continue
        count = len(answers)
        for version, answer in enumerate(answers[:-1], start=1):
            lines.extend(
                _answer_block(
                    answer,
                    f"{shown}v{version}",
                    footnotes,
                    previous=f"Previous version {version} of {count} (regenerated):",
                )
            )
        if count > 1:
            lines.extend([f"**Current version ({count} of {count}):**", ""])
        lines.extend(_answer_block(answers[-1], f"{shown}", footnotes))

    if footnotes:
        lines.extend(["---", "", *footnotes, ""])
    return "\n".join(lines).rstrip("\n") + "\n"
