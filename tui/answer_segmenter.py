"""How a streamed answer is split into Markdown segments: a pure state machine, no Textual.

Textual's Markdown lays out a whole document again on every append, so an answer streams
into several bounded segments instead, split at block edges (~1,200 characters or 40
lines): between top-level list items (an ordered list goes on at its number; the same
list runs on without a gap, another marker starts a new list), inside a long code fence
(closed and reopened with its info string), never inside a quote or a list item's
continuation. One paragraph line longer than LONG_LINE_CHARS is cut after a space into a
segment that runs on; a long line that cannot be cut, or an answer past MARKDOWN_LINES
non-blank lines, goes on as plain text (Textual's Markdown makes widgets per block, which
no segmenting avoids).

`AnswerSegmenter.feed(text)` turns each streamed fragment (already cleaned) into
operations, in order, that the answer widget applies:
- `Append(text)`: Markdown (citations linked) for the current segment;
- `NewSegment(runs_on)`: close the current segment and go on in a new one after it
  (`runs_on`: it continues the last paragraph or list, no gap between);
- `Plain(text)`: the rest of the answer as plain text (the first one starts the plain part).
`finish()` gives the operations that end the stream.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Split a streamed answer into a new segment after this many characters, at a block edge.
SEGMENT_CHARS = 1200
# ... or after this many lines: an answer of tiny blocks (a list of one-word items) makes
# several widgets per line, and a live segment is laid out again on every append.
SEGMENT_LINES = 40
# One line of a paragraph longer than this is cut at a space into a new segment that runs
# on without a gap: Textual's Markdown wraps a paragraph whole on every append.
LONG_LINE_CHARS = 1500
# A long line that cannot be cut there (a list item, a heading, a table row, code, or
# unbalanced inline markup) goes on as plain text once it is this long.
LONG_LINE_PLAIN_CHARS = 8000
# An answer is shown as Markdown up to this many non-blank lines: Textual's Markdown makes
# widgets per block, so an answer of thousands of tiny blocks would take minutes. The
# rest is plain text.
MARKDOWN_LINES = 400

# After a blank line, these continue the block before it (list items, quotes, indented
# continuation, tables): never split there.
_CONTINUES_BLOCK = re.compile(r"[ \t]|[-*+][ \t]|\d{1,9}[.)][ \t]|>|\|")
# A top-level list item: a long list is split between two of them.
_LIST_ITEM = re.compile(r"(?:[-*+]|(\d{1,9})([.)]))(?:[ \t]|$)")
# Enough of a line to tell whether it starts a list item.
_LINE_START_CHARS = 12
_FENCE_OPEN = re.compile(r"(`{3,}|~{3,})(.*)$")
# A line starting like this is not a plain paragraph line: not cut; nor is a line cut
# where the rest would start like this (it would begin a new block).
_NOT_PARAGRAPH = re.compile(
    r"[ \t]|[-*+](?:[ \t]|$)|\d{1,9}[.)](?:[ \t]|$)|[>|#<=]|`{3}|~{3}|-{3}|_{3}|\*{3}")

_CITE = re.compile(r"\[(\d{1,3})\]")
# A possible citation cut at the end of a fragment: hold it until the next one.
_PARTIAL_CITE = re.compile(r"\[\d{0,3}$")


def link_citations(text: str, count: int) -> str:
    """`[N]` -> a `cite:N` Markdown link for 1 <= N <= count; others stay plain text."""

    def repl(match: re.Match[str]) -> str:
        n = int(match.group(1))
        return f"[\\[{n}\\]](cite:{n})" if 1 <= n <= count else match.group(0)

    return _CITE.sub(repl, text)


# The quiet mark after a questionable claim, by status (the help screen's legend says what
# each means); a `claim:K` link, K the claim's index in the answer's claim check.
CLAIM_MARKS = {"unsupported": "?", "misattributed": "≠"}
CLAIM_LEGEND = (
    (CLAIM_MARKS["misattributed"], "A claim its citation does not support; another source does (click it)"),
    (CLAIM_MARKS["unsupported"], "A claim none of the answer's sources supports (click it for why)"),
)


def mark_claims(text: str, marks: list[tuple[int, int, str, bool]]) -> str:
    """`text` with a `claim:K` link after each claim: `marks` are (K, end, status, row),
    `end` an offset into `text`; a table row's mark goes inside its last cell. Marks past
    the text or of another status are left out."""
    out: list[str] = []
    last = 0
    for index, end, status, row in sorted(marks, key=lambda m: m[1]):
        symbol = CLAIM_MARKS.get(status)
        if symbol is None or not last <= end <= len(text):
            continue
        at = end
        if row:
            body = text[last:end].rstrip()
            if body.endswith("|"):
                at = last + len(body) - 1
        out.append(text[last:at])
        space = "" if text[:at].endswith(" ") else " "
        out.append(f"{space}[{symbol}](claim:{index})")
        last = at
    out.append(text[last:])
    return "".join(out)


class CitationLinker:
    """Turn citations into links in a stream of fragments that may split `[12]`."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._held = ""

    def feed(self, fragment: str) -> str:
        text = self._held + fragment
        partial = _PARTIAL_CITE.search(text)
        if partial:
            self._held, text = text[partial.start() :], text[: partial.start()]
        else:
            self._held = ""
        return link_citations(text, self.count)

    def flush(self) -> str:
        text, self._held = self._held, ""
        return link_citations(text, self.count)


def markdown_head(text: str, max_lines: int) -> tuple[str, str]:
    """`text` cut after `max_lines` non-blank lines, outside a code fence when one ends
    soon after (a restored answer: the head as Markdown, the rest as plain text)."""
    lines = text.splitlines(keepends=True)
    in_fence = False
    count = 0
    for n, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        count += bool(line.strip())
        if count >= max_lines and not in_fence or count >= 2 * max_lines:
            return "".join(lines[: n + 1]), "".join(lines[n + 1 :])
    return text, ""


def _inline_balanced(text: str) -> bool:
    """No code span, emphasis or link text left open: a safe place to cut a paragraph."""
    return (text.count("`") % 2 == 0 and text.count("*") % 2 == 0
            and text.count("~~") % 2 == 0 and text.count("[") == text.count("]"))


@dataclass(frozen=True)
class Append:
    text: str


@dataclass(frozen=True)
class NewSegment:
    runs_on: bool = False


@dataclass(frozen=True)
class Plain:
    text: str


Operation = Append | NewSegment | Plain


class AnswerSegmenter:
    """The segmenting state of one streamed answer (see the module docstring)."""

    def __init__(self, source_count: int) -> None:
        self.linker = CitationLinker(source_count)
        self.plain = False  # past the Markdown part: everything goes on as plain text
        self.markdown_lines = 0  # non-blank lines streamed as Markdown
        self._ops: list[Operation] = []
        self._out: list[str] = []  # Markdown for the current segment, not yet in an Append
        self._segment_chars = 0  # characters of the current segment in Appends so far
        self._segment_lines = 0
        self._line = ""  # the current, unfinished line
        self._after_blank = True  # the line before the current one was blank (or none)
        self._runs_on = False  # the current line is the rest of a cut paragraph line
        self._in_fence = False
        self._fence_open = ""  # the line that opened the current code fence
        self._split_pending = False  # a long segment may split before the next line
        self._held = ""  # text held while deciding whether to split
        self._in_list = False  # the last block line was part of a top-level list
        self._list_next: int | None = None  # the number the next ordered item renders as
        self._list_marker = ""  # that list's bullet (- * +) or number delimiter (. or ))

    # -- operations ------------------------------------------------------------------
    def _append(self, text: str) -> None:
        self._ops.append(Append(text))
        self._segment_chars += len(text)

    def _write_out(self, extra: str = "") -> None:
        """What the current segment has gathered (and `extra`), as one Append."""
        text = "".join(self._out) + extra
        self._out.clear()
        self._append(text)

    def _new_segment(self, *, runs_on: bool = False) -> None:
        """Write out, then go on in a new segment."""
        self._write_out()
        self._ops.append(NewSegment(runs_on))
        self._segment_chars = self._segment_lines = 0

    def _to_plain(self, rest: str, extra: str = "") -> None:
        """Write out (closing an open code fence), then the rest as plain text."""
        self._write_out(extra)
        self._split_pending = False
        self.plain = True
        self._ops.append(Plain(rest))

    def _fence_close(self) -> str:
        opener = _FENCE_OPEN.match(self._fence_open.lstrip())
        return opener.group(1) if opener else "```"

    def _take_ops(self) -> list[Operation]:
        ops, self._ops = self._ops, []
        return ops

    # -- the stream ------------------------------------------------------------------
    def feed(self, text: str, *, final: bool = False) -> list[Operation]:
        """The operations for a streamed fragment (`final`: the stream ends after it)."""
        if self.plain:
            return [Plain(text)]
        self._feed(text, final)
        if not self.plain:
            self._write_out()
        return self._take_ops()

    def finish(self) -> list[Operation]:
        """The operations that end the stream: what was held back, then the last of the
        citation linker's text (in the Markdown part)."""
        ops: list[Operation] = []
        if not self.plain and self._split_pending:
            ops += self.feed("", final=True)
        if not self.plain:
            self._append(self.linker.flush())
            ops += self._take_ops()
        return ops

    def _link(self, text: str) -> str:
        if self._in_fence:
            return self.linker.flush() + text
        return self.linker.feed(text)

    def _feed(self, text: str, final: bool) -> None:
        out = self._out
        i = 0
        while i < len(text) or (final and self._split_pending):
            if self._split_pending:
                # A long segment ended a line: hold what follows until the start of the
                # next block line shows whether it may open a new segment.
                newline = text.find("\n", i)
                self._held += text[i:] if newline == -1 else text[i : newline + 1]
                i = len(text) if newline == -1 else newline + 1
                start = self._held.lstrip("\n")
                if not final and "\n" not in start and len(start) < _LINE_START_CHARS:
                    continue
                self._split_pending = False
                held, self._held = self._held, ""
                blank = held.startswith("\n")
                item = _LIST_ITEM.match(start)
                if start and item and (self._in_list or blank):
                    # The same list going on (another marker starts a new list): no gap
                    # between its two halves.
                    same_list = self._in_list and (item.group(2) or start[0]) == self._list_marker
                    self._new_segment(runs_on=same_list)
                    if item.group(1) and self._list_next is not None and same_list:
                        # The next list starts at the number this item renders as.
                        start = f"{self._list_next}{item.group(2)}" + start[item.end(2) :]
                    held = start
                elif start and blank and not _CONTINUES_BLOCK.match(start):
                    self._new_segment()
                    held = start
                # Run the held text through the line logic below.
                text, i = held + text[i:], 0
                if not held:
                    continue
            newline = text.find("\n", i)
            end = len(text) if newline == -1 else newline
            if len(self._line) + end - i >= LONG_LINE_CHARS:
                cut = self._long_line_cut(text, i, end)
                if cut is not None:
                    # Cut the paragraph after a space; the rest runs on in a new segment.
                    out.append(self._link(text[i:cut]) + self.linker.flush())
                    self._new_segment(runs_on=True)
                    self._line, self._runs_on = "", True
                    self.markdown_lines += 1
                    i = cut
                    continue
                if len(self._line) + end - i >= LONG_LINE_PLAIN_CHARS:
                    # A long line that cannot be cut: the rest of the answer as plain text.
                    close = "\n" + self._fence_close() + "\n" if self._in_fence else ""
                    self._to_plain(text[i:], close + self.linker.flush())
                    return
            if newline == -1:
                out.append(self._link(text[i:]))
                self._line += text[i:]
                break
            out.append(self._link(text[i : newline + 1]))
            line, self._line = self._line + text[i:newline], ""
            self._after_blank, self._runs_on = not line.strip(), False
            self._segment_lines += 1
            self.markdown_lines += bool(line.strip())
            stripped = line.lstrip()
            long = (
                self._segment_chars + sum(map(len, out)) >= SEGMENT_CHARS
                or self._segment_lines >= SEGMENT_LINES
            )
            if stripped.startswith(("```", "~~~")):
                if not self._in_fence:
                    self._fence_open = line
                self._in_fence = not self._in_fence
                self._in_list = False
            elif self._in_fence:
                opener = _FENCE_OPEN.match(self._fence_open)
                if long and opener:
                    # A long code block: close it here and open it again, with the same
                    # info string, in a new segment.
                    out.append(opener.group(1) + "\n")
                    self._new_segment()
                    out.append(self._fence_open + "\n")
            else:
                self._track_list(line)
                if long:
                    self._split_pending = True
            i = newline + 1
            if self.markdown_lines >= MARKDOWN_LINES and not self._held:
                # Enough Markdown for one answer: the rest as plain text.
                self._to_plain(text[i:], self._fence_close() + "\n" if self._in_fence else "")
                return

    def _long_line_cut(self, text: str, i: int, end: int) -> int | None:
        """Where to cut the current line, a long paragraph line: just after the first
        space past LONG_LINE_CHARS with the inline markup before it balanced and a word
        after it that does not start a block (None: not a paragraph line, or no such
        space in text[i:end] yet)."""
        if self._in_fence:
            return None
        if not self._runs_on:
            start = self._line or text[i:end]
            if _NOT_PARAGRAPH.match(start) or (self._in_list and not self._after_blank):
                return None  # not a paragraph line (or a list item's lazy continuation)
        if (len(self._line) >= LONG_LINE_CHARS and self._line.endswith(" ") and i < end
                and not _NOT_PARAGRAPH.match(text, i) and _inline_balanced(self._line)):
            return i  # the line so far ends with a space: cut before this fragment
        space = text.find(" ", i + max(0, LONG_LINE_CHARS - len(self._line)), end)
        while space != -1:
            if (space + 1 < end and not _NOT_PARAGRAPH.match(text, space + 1)
                    and _inline_balanced(self._line + text[i:space])):
                return space + 1
            if len(self._line) + space - i >= LONG_LINE_PLAIN_CHARS:
                return None
            space = text.find(" ", space + 1, end)
        return None

    def _track_list(self, line: str) -> None:
        """Whether the block lines so far end in a top-level list, and its numbering."""
        if not line.strip():
            return  # a blank line: the list may go on
        item = _LIST_ITEM.match(line)
        if item:
            marker = item.group(2) or line[0]
            if item.group(1) is None:
                self._list_next = None
            elif self._in_list and marker == self._list_marker and self._list_next is not None:
                self._list_next += 1
            else:
                self._list_next = int(item.group(1)) + 1
            self._in_list, self._list_marker = True, marker
        elif not line[:1].isspace():
            self._in_list = False
            self._list_next = None
