"""The conversation pane: questions and streamed, cited answers.

An answer streams through `Markdown.get_stream` (appends, batched while one is
in flight), never a whole re-render per token; one final `update()` after the
stream stops repairs any block split mid-stream. Citations `[N]` become
`cite:N` links only when 1 <= N <= the number of sources of that answer.
The pane follows the bottom with `anchor()` until the user scrolls up, and
reports which answer is in view so the sidebar can show its sources.
"""

from __future__ import annotations

import re
from time import monotonic
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Button, Static

from tui.widgets.safe_text import clean

if TYPE_CHECKING:
    from textual.widgets import Markdown
    from textual.widgets.markdown import MarkdownStream

    from tui.widgets.answer_markdown import FrozenSegment

# Hand streamed text to the Markdown at most this often (seconds): a few appends per second.
FLUSH_INTERVAL = 0.05
# ... and while tokens flood in faster than frames are drawn (see tui/pacing.py).
FLOOD_FLUSH_INTERVAL = 0.15
# Split a streamed answer into a new segment after this many characters, at a block edge.
SEGMENT_CHARS = 1200
# ... or after this many lines: an answer of tiny blocks (a list of one-word items) makes
# several widgets per line, and a live segment is laid out again on every append.
SEGMENT_LINES = 40
# A segment frozen lazily while tokens flood in renders the rest of its lines once the
# stream has been quiet this long (seconds).
SETTLE_AFTER_S = 0.5
# After a blank line, these continue the block before it (list items, quotes, indented
# continuation, tables): never split there.
_CONTINUES_BLOCK = re.compile(r"[ \t]|[-*+][ \t]|\d{1,9}[.)][ \t]|>|\|")
# A top-level list item: a long list is split between two of them (two adjacent lists;
# an ordered one goes on at the right number).
_LIST_ITEM = re.compile(r"(?:[-*+]|(\d{1,9})([.)]))(?:[ \t]|$)")
# Enough of a line to tell whether it starts a list item.
_LINE_START_CHARS = 12
_FENCE_OPEN = re.compile(r"(`{3,}|~{3,})(.*)$")
# One line of a paragraph longer than this is cut at a space into a new segment that
# runs on without a gap: Textual's Markdown wraps a paragraph whole on every append, so
# one 100,000-character line without a break took ~12 s to stream.
LONG_LINE_CHARS = 1500
# A long line that cannot be cut there (a list item, a heading, a table row, code, or
# unbalanced inline markup) goes on as plain text once it is this long.
LONG_LINE_PLAIN_CHARS = 8000
# A line starting like this is not a plain paragraph line: not cut; nor is a line cut
# where the rest would start like this (it would begin a new block).
_NOT_PARAGRAPH = re.compile(
    r"[ \t]|[-*+](?:[ \t]|$)|\d{1,9}[.)](?:[ \t]|$)|[>|#<=]|`{3}|~{3}|-{3}|_{3}|\*{3}")

# An answer is shown as Markdown up to this many non-blank lines: Textual's Markdown makes
# widgets per block (~10 ms a list item), so an answer of thousands of tiny blocks would
# take minutes. The rest is shown as plain text, saying so (the source detail's rule),
# in chunks of PLAIN_CHUNK_LINES lines (one Static each).
MARKDOWN_LINES = 400
RESTORE_MARKDOWN_LINES = MARKDOWN_LINES
PLAIN_CHUNK_LINES = 200
# ... or this many characters (cut at a space where there is one): one long line too.
PLAIN_CHUNK_CHARS = 8000
PLAIN_NOTE = "… the rest of this long answer, as plain text:"

_CITE = re.compile(r"\[(\d{1,3})\]")
# A possible citation cut at the end of a fragment: hold it until the next one.
_PARTIAL_CITE = re.compile(r"\[\d{0,3}$")


def link_citations(text: str, count: int) -> str:
    """`[N]` -> a `cite:N` Markdown link for 1 <= N <= count; others stay plain text."""

    def repl(match: re.Match[str]) -> str:
        n = int(match.group(1))
        return f"[\\[{n}\\]](cite:{n})" if 1 <= n <= count else match.group(0)

    return _CITE.sub(repl, text)


def _answer_markdown():
    """The module of an answer's Markdown widgets, imported at the first answer (the app's
    boot worker imports it after the first paint: see answer_markdown.py)."""
    from tui.widgets import answer_markdown

    return answer_markdown


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


def format_meta(done: dict[str, Any]) -> str:
    """'model · tier · N tokens · 1.2 s' from a done payload (or a saved message)."""
    parts = []
    if done.get("model"):
        parts.append(str(done["model"]))
    if done.get("fallback_used"):
        parts.append("fallback")
    if done.get("cascade_tier"):
        parts.append(f"tier {done['cascade_tier']}")
    usage = done.get("usage") or {}
    tokens = usage.get("total_tokens") or usage.get("completion_tokens")
    if tokens:
        estimated = " (est.)" if usage.get("estimated") else ""
        parts.append(f"{tokens} tokens{estimated}")
    latency = done.get("latency_ms")
    if latency is not None:
        parts.append(f"{float(latency) / 1000:.1f} s")
    if done.get("truncated"):
        # The model ran past the stored-answer cap: generation was stopped there.
        parts.insert(0, "⚠ answer cut at the size limit")
    return " · ".join(clean(p) for p in parts)


def _inline_balanced(text: str) -> bool:
    """No code span, emphasis or link text left open: a safe place to cut a paragraph."""
    return (text.count("`") % 2 == 0 and text.count("*") % 2 == 0
            and text.count("~~") % 2 == 0 and text.count("[") == text.count("]"))


def _markdown_head(text: str, max_lines: int) -> tuple[str, str]:
    """`text` cut after `max_lines` lines, outside a code fence when one ends soon after."""
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


class UserMessage(Static):
    """A question, shown as text (never markup)."""

    def __init__(self, text: str, **kwargs: Any) -> None:
        super().__init__(Text(clean(text)), markup=False, **kwargs)
        self.text = text


class AssistantMessage(Vertical):
    """One answer: working indicator, Markdown body, a meta line, an error with Retry."""

    class RetryRequested(Message):
        def __init__(self, answer: AssistantMessage) -> None:
            super().__init__()
            self.answer = answer

    def __init__(
        self,
        sources: list[dict[str, Any]] | None = None,
        *,
        question: str = "",
        turn: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sources: list[dict[str, Any]] = list(sources or [])
        self.question = question
        self.turn = turn
        self.status = "working"  # working|streaming|answered|stopped|failed
        self._meta_text = ""
        self.raw = ""  # the answer as the model wrote it (cleaned), before linking
        self.meta: dict[str, Any] = {}
        self.got_sources = False  # the service accepted the question (and archived it)
        self._stream: MarkdownStream | None = None
        self._streaming = False
        self._linker: CitationLinker | None = None
        self._segment: Markdown | None = None  # the segment being streamed into
        self._segment_text = ""  # linked Markdown written to that segment
        self._line = ""  # the current, unfinished line (for fence tracking)
        self._after_blank = True  # the line before the current one was blank (or none)
        self._runs_on = False  # the current line is the rest of a cut paragraph line
        self._in_fence = False
        self._split_pending = False  # a long segment may split before the next line
        self._held = ""  # text held while deciding whether to split
        self._fence_open = ""  # the line that opened the current code fence
        self._in_list = False  # the last block line was part of a top-level list
        self._list_next: int | None = None  # the number the next ordered item renders as
        self._list_marker = ""  # that list's bullet (- * +) or number delimiter (. or ))
        self._segment_lines = 0
        self._segment_writes = 0  # texts handed to the segment's stream
        self._markdown_lines = 0  # non-blank lines of the answer streamed as Markdown
        self._plain: Static | None = None  # past MARKDOWN_LINES: the plain-text chunk written to
        self._plain_text = ""
        self._plain_dirty = False
        self._plain_total = 0  # characters written to the plain-text part
        self.plain_shown = 0  # ... of which handed to its widgets (a benchmark reads it)
        self._unsent = ""  # text for the segment not yet handed to its stream
        self._last_flush = 0.0
        self._flush_timer: Timer | None = None
        self._pacer: Any = None  # the app's FramePacer, if it has one (taken at the first token)
        self._unsettled: list[FrozenSegment] = []  # frozen lazily, lines left to render

    def compose(self) -> ComposeResult:
        yield Static("Searching the knowledge base…", classes="working")
        yield _answer_markdown().AnswerMarkdown(classes="body")
        meta = Static("", classes="meta", markup=False)
        meta.display = False
        yield meta
        with Horizontal(classes="error-row"):
            yield Static("", classes="error-text", markup=False)
            yield Button("Retry", classes="retry", variant="warning", compact=True)

    @property
    def body(self) -> Markdown:
        """The first Markdown segment."""
        return self.query_one(".body", _answer_markdown().AnswerMarkdown)

    async def _fresh_body(self) -> Markdown:
        """One empty Markdown segment in place of whatever the answer shows."""
        self._drop_unsettled()
        segments = self.segments
        body = _answer_markdown().AnswerMarkdown(classes="body")
        await self.mount(body, after=self.query_one(".working"))
        for segment in segments:
            await segment.remove()
        await self.query_children(".body-plain").remove()
        return body

    @property
    def segments(self) -> list[Markdown | FrozenSegment]:
        md = _answer_markdown()
        kinds = (md.AnswerMarkdown, md.FrozenSegment)
        return [
            w for w in self.children
            if isinstance(w, kinds) and not getattr(w, "retired", False)
        ]

    @property
    def plain_text(self) -> str:
        """What the answer shows as plain text past MARKDOWN_LINES (without the note)."""
        chunks = self.query_children(".body-plain").exclude(".-note")
        if self._plain is not None:
            self._plain.update(Text(self._plain_text))
            self._plain_dirty = False
        return "".join(str(chunk.render()) for chunk in chunks)

    @property
    def markdown_source(self) -> str:
        """The Markdown shown (citations as links), all segments."""
        return "".join(segment.source for segment in self.segments)

    def set_sources(self, sources: list[dict[str, Any]]) -> None:
        self.sources = list(sources)
        self.got_sources = True
        if self.status == "working":
            self.query_one(".working", Static).update(
                f"Thinking… ({len(sources)} sources found)" if sources else "Thinking…"
            )

    # -- streaming ---------------------------------------------------------------
    # A long answer is streamed into several Markdown segments, split at block
    # boundaries (~1,200 characters or 40 lines): between top-level list items (an
    # ordered list goes on at its number), inside a long code fence (closed and
    # reopened), never inside a quote. Each append then re-lays-out one bounded segment
    # instead of the whole answer, so the cost of a token does not grow with the length
    # of the answer. Past MARKDOWN_LINES the rest is plain text: Textual's Markdown makes
    # widgets per block, which no segmenting avoids.

    async def write(self, delta: str) -> None:
        """Append a streamed fragment."""
        delta = clean(delta)
        if not delta:
            return
        if not self._streaming:
            self._streaming = True
            self.status = "streaming"
            self.query_one(".working").display = False
            self._linker = CitationLinker(len(self.sources))
            self._segment = self.body
            self._segment_text = ""
            self._segment_lines = self._segment_writes = 0
            self._in_list, self._list_next = False, None
            self._stream = _answer_markdown().AnswerMarkdown.get_stream(self._segment)
            self._pacer = getattr(self.app, "pacer", None)
        self.raw += delta
        pacer = self._pacer
        if pacer is None:
            await self._feed(delta)
            return
        # Frames are put off while tokens flood in; when they stop, what is left is sent
        # to the segment at once (not at the next flush tick) and drawn.
        if not pacer.active:  # the first token since the stream was last quiet
            pacer.when_quiet(self._flush_soon)
        pacer.token()
        try:
            await self._feed(delta)
        finally:
            pacer.taken()

    def _flush_soon(self) -> None:
        if self._unsent or self._plain_dirty:
            self.call_next(self._flush)

    async def _feed(self, text: str, *, final: bool = False) -> None:
        if self._plain is not None:
            await self._write_plain(text)
            return
        out: list[str] = []
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
                    await self._write_segment("".join(out))
                    out.clear()
                    # The same list going on (another marker starts a new list): no gap
                    # between its two halves.
                    same_list = self._in_list and (item.group(2) or start[0]) == self._list_marker
                    await self._new_segment(runs_on=same_list)
                    if item.group(1) and self._list_next is not None and same_list:
                        # The next list starts at the number this item renders as.
                        start = f"{self._list_next}{item.group(2)}" + start[item.end(2) :]
                    held = start
                elif start and blank and not _CONTINUES_BLOCK.match(start):
                    await self._write_segment("".join(out))
                    out.clear()
                    await self._new_segment()
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
                    out.append(self._link(text[i:cut]) + self._linker.flush())
                    await self._write_segment("".join(out))
                    out.clear()
                    await self._new_segment(runs_on=True)
                    self._line, self._runs_on = "", True
                    self._markdown_lines += 1
                    i = cut
                    continue
                if len(self._line) + end - i >= LONG_LINE_PLAIN_CHARS:
                    # A long line that cannot be cut: the rest of the answer as plain text.
                    if self._in_fence:
                        opener = _FENCE_OPEN.match(self._fence_open.lstrip())
                        out.append("\n" + (opener.group(1) if opener else "```") + "\n")
                    await self._write_segment("".join(out) + self._linker.flush())
                    await self._start_plain()
                    await self._write_plain(text[i:])
                    return
            if newline == -1:
                out.append(self._link(text[i:]))
                self._line += text[i:]
                break
            out.append(self._link(text[i : newline + 1]))
            line, self._line = self._line + text[i:newline], ""
            self._after_blank, self._runs_on = not line.strip(), False
            self._segment_lines += 1
            self._markdown_lines += bool(line.strip())
            stripped = line.lstrip()
            long = (
                len(self._segment_text) + sum(map(len, out)) >= SEGMENT_CHARS
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
                    await self._write_segment("".join(out))
                    out.clear()
                    await self._new_segment()
                    out.append(self._fence_open + "\n")
            else:
                self._track_list(line)
                if long:
                    self._split_pending = True
            i = newline + 1
            if self._markdown_lines >= MARKDOWN_LINES and not self._held:
                # Enough Markdown for one answer: the rest as plain text.
                if self._in_fence:
                    opener = _FENCE_OPEN.match(self._fence_open.lstrip())
                    out.append((opener.group(1) if opener else "```") + "\n")
                await self._write_segment("".join(out))
                await self._start_plain()
                await self._write_plain(text[i:])
                return
        await self._write_segment("".join(out))

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

    async def _start_plain(self) -> None:
        self._split_pending = False
        await self._close_segment()
        note = Static(Text(PLAIN_NOTE, style="italic"), classes="body-plain -note")
        await self.mount(note, before=self.query_one(".meta"))
        await self._new_plain_chunk()

    async def _new_plain_chunk(self) -> None:
        if self._plain is not None:
            self._plain.update(Text(self._plain_text))
            self.plain_shown = self._plain_total
        chunk = Static("", markup=False, classes="body-plain")
        await self.mount(chunk, before=self.query_one(".meta"))
        self._plain, self._plain_text, self._plain_dirty = chunk, "", False

    async def _write_plain(self, text: str) -> None:
        """Append to the plain-text part (already cleaned), a new Static every
        PLAIN_CHUNK_LINES lines; shown at most every FLUSH_INTERVAL seconds."""
        while text:
            room = PLAIN_CHUNK_LINES - self._plain_text.count("\n")
            cut = 0
            for _ in range(room):
                newline = text.find("\n", cut)
                if newline == -1:
                    cut = len(text)
                    break
                cut = newline + 1
            room_chars = PLAIN_CHUNK_CHARS - len(self._plain_text)
            if cut > room_chars:
                space = text.rfind(" ", 0, room_chars)
                cut = space + 1 if space > 0 else max(room_chars, 1)
            self._plain_text += text[:cut]
            self._plain_total += cut
            self._plain_dirty = True
            text = text[cut:]
            if (text or self._plain_text.count("\n") >= PLAIN_CHUNK_LINES
                    or len(self._plain_text) >= PLAIN_CHUNK_CHARS):
                await self._new_plain_chunk()
        await self._write_segment("")

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

    def _link(self, text: str) -> str:
        if self._in_fence:
            return self._linker.flush() + text
        return self._linker.feed(text)

    async def _write_segment(self, text: str) -> None:
        """Queue text for the segment; hand it to the MarkdownStream at most every
        FLUSH_INTERVAL seconds (a timer sends what is left), so a flood of tokens
        becomes a few appends and a few layouts."""
        if text:
            self._segment_text += text
            self._unsent += text
        if not self._unsent and not self._plain_dirty:
            return
        pacer = self._pacer
        # While tokens flood in, frames are few: hand text over in fewer, larger appends
        # (each append re-parses the segment's last block and may rebuild it). When the
        # flood stops, the rest goes at once (`_flush_soon`).
        interval = FLOOD_FLUSH_INTERVAL if pacer is not None and pacer.active else FLUSH_INTERVAL
        if monotonic() - self._last_flush >= interval:
            await self._flush()
        elif self._flush_timer is None:
            self._flush_timer = self.set_timer(interval, self._flush)

    async def _flush(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        text, self._unsent = self._unsent, ""
        if text and self._stream is not None:
            await self._stream.write(text)
            self._segment_writes += 1
        if self._plain is not None and self._plain_dirty:
            self._plain_dirty = False
            self._plain.update(Text(self._plain_text))
            self.plain_shown = self._plain_total
        # Counted from when the loop gave control back: after a long render, the tokens
        # that piled up meanwhile are taken in one go instead of one per render.
        self._last_flush = monotonic()

    async def _new_segment(self, *, runs_on: bool = False) -> None:
        """Close the current segment (verified) and stream into a new one after it;
        `runs_on`: the new one goes on with the last paragraph or list (no gap between)."""
        if runs_on and self._segment is not None:
            self._segment.add_class("-runs-on")
        markdown = _answer_markdown().AnswerMarkdown
        segment = markdown(classes="body-more")
        await self.mount(segment, after=self._segment)
        await self._close_segment()
        self._segment = segment
        self._segment_text = ""
        self._segment_lines = self._segment_writes = 0
        self._stream = markdown.get_stream(segment)

    async def _close_segment(self, *, freeze: bool = True) -> None:
        await self._flush()
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        segment = self._segment
        if segment is not None:
            # `MarkdownStream.stop()` can return while its last (shielded) append still
            # runs; the append holds the document's lock, so wait for it.
            async with segment.lock:
                pass
        if segment is None:
            return
        # Streamed in one write, its blocks are a parse of the whole text: nothing to check.
        if (self._segment_writes > 1
                and not _answer_markdown().renders_as_parsed(segment, self._segment_text)):
            # A block cut mid-stream (a code fence, a list) came out wrong: render it whole.
            await segment.update(self._segment_text)
        if segment.has_class("-runs-on"):
            segment.mark_run_on_end()
        if freeze:
            # A closed segment becomes one widget of rendered lines at once (laid out by a
            # compositor of its own, not waiting for a frame), so frames and the layout of
            # the next appends do not walk its blocks again.
            await self._freeze(segment)

    async def _freeze(self, segment: Markdown, attempt: int = 0) -> None:
        if not segment.is_mounted or getattr(segment, "retired", False):
            return
        # While tokens flood in, its lines are rendered only as frames show them (most
        # scroll past unseen); the rest once the stream is quiet (`_settle_frozen`).
        pacer = self._pacer
        lazy = pacer is not None and pacer.active
        frozen = _answer_markdown().FrozenSegment.from_markdown(
            segment, self.content_region.width, lazy=lazy)
        if frozen is None:
            # Not laid out yet: try again after the next refresh (a few times).
            if attempt < 20:
                segment.call_after_refresh(self._freeze, segment, attempt + 1)
            return
        segment.retired = True  # replaced: no longer part of the answer's text
        await self.mount(frozen, before=segment)
        if frozen.pending:
            segment.display = False  # kept, hidden, to render the frozen lines from
            self._unsettled.append(frozen)
            pacer.when_quiet(self._settle_soon)
        else:
            await segment.remove()

    def _settle_soon(self) -> None:
        # Once the stream has been quiet a while: its last words and their frame come first.
        self.set_timer(SETTLE_AFTER_S, self._settle_frozen)

    def _settle_frozen(self) -> None:
        """Render the rest of one lazily frozen segment (and drop its hidden Markdown), then
        the next, each in a callback of its own so keys and frames come in between."""
        pacer = self._pacer
        if pacer is not None:
            if pacer.active:
                pacer.when_quiet(self._settle_soon)  # the stream went on: wait for it again
                return
            quiet_for = monotonic() - pacer.last_token
            if quiet_for < SETTLE_AFTER_S:  # it went on and is quiet again
                self.set_timer(SETTLE_AFTER_S - quiet_for, self._settle_frozen)
                return
        while self._unsettled:
            frozen = self._unsettled.pop(0)
            if frozen.is_attached and frozen.pending:
                frozen.settle()
                break
        if self._unsettled:
            self.call_later(self._settle_frozen)

    def _drop_unsettled(self) -> None:
        # The segments are on their way out: nothing left to render.
        for frozen in self._unsettled:
            frozen.release()
        self._unsettled.clear()

    async def _stop_stream(self) -> None:
        if not self._streaming:
            return
        if self._plain is None and self._split_pending:
            await self._feed("", final=True)
        if self._plain is not None:
            await self._flush()
            self._streaming = False
            return
        await self._write_segment(self._linker.flush() if self._linker else "")
        self._streaming = False
        await self._close_segment(freeze=False)

    async def reset(self, reason: str = "") -> None:
        """The model restarted the answer (fallback): clear the partial text."""
        self._unsent = ""
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        self._streaming = False
        self._split_pending, self._held, self._line, self._in_fence = False, "", "", False
        self._after_blank, self._runs_on = True, False
        self._in_list, self._list_next, self._segment_lines = False, None, 0
        self._markdown_lines, self._plain, self._plain_text, self._plain_dirty = 0, None, "", False
        self._plain_total = self.plain_shown = 0
        self.raw = ""
        for segment in self.segments[1:]:
            await segment.remove()
        await self._fresh_body()
        self.status = "working"
        working = self.query_one(".working", Static)
        working.display = True
        working.update(Text(clean(f"Restarting: {reason}" if reason else "Restarting…")))

    async def finish(self, done: dict[str, Any]) -> None:
        await self._stop_stream()
        self.status = "answered"
        self.meta = dict(done)
        self.query_one(".working").display = False
        self._show_meta(format_meta(done))

    async def stop(self) -> None:
        """Cancelled by the user: keep the partial answer, mark it stopped."""
        await self._stop_stream()
        self.status = "stopped"
        self.query_one(".working").display = False
        self.add_class("-stopped")
        self._show_meta("⏹ stopped" + (" · " + format_meta(self.meta) if self.meta else ""))

    async def fail(self, message: str) -> None:
        await self._stop_stream()
        self.status = "failed"
        self.query_one(".working").display = False
        if not self.raw:
            self.body.display = False
        self.add_class("-failed")
        self.query_one(".error-text", Static).update(Text("⚠ " + clean(message)))

    def mark_previous(self) -> None:
        """A newer answer to the same question replaced this one."""
        self.add_class("-previous")
        self._show_meta("previous version · " + self._meta_text)

    async def restore(self, content: str, meta: dict[str, Any], status: str) -> None:
        """Show a saved answer (resuming a conversation)."""
        self.raw = clean(content)
        self.meta = dict(meta)
        self.query_one(".working").display = False
        body = await self._fresh_body()
        head, rest = _markdown_head(self.raw, RESTORE_MARKDOWN_LINES)
        if any(len(line) > LONG_LINE_CHARS for line in head.split("\n")):
            # A very long line: shown the way it streamed (cut into run-on segments, or
            # plain text past the limits), not as one paragraph wrapped whole.
            text, self.raw = self.raw, ""
            await self.write(text)
            await self._stop_stream()
        else:
            await body.update(link_citations(head, len(self.sources)))
            if rest:
                await self._restore_plain(rest)
        if status == "failed":
            self.status = "failed"
            self.add_class("-failed")
            self.query_one(".error-text", Static).update(
                Text("⚠ " + clean(meta.get("error") or "failed"))
            )
        elif status in ("cancelled", "stopped", "incomplete"):
            self.status = "stopped"
            self.add_class("-stopped")
            self._show_meta("⏹ stopped · " + format_meta(meta))
        else:
            self.status = "answered"
            self._show_meta(format_meta(meta))

    async def _restore_plain(self, rest: str) -> None:
        """The part of a restored answer past the Markdown limit, as plain text."""
        await self.mount(Static(Text(PLAIN_NOTE, style="italic"), classes="body-plain -note"),
                         after=self.segments[-1])
        lines = rest.splitlines(keepends=True)
        for start in range(0, len(lines), PLAIN_CHUNK_LINES):
            chunk = "".join(lines[start : start + PLAIN_CHUNK_LINES])
            await self.mount(Static(Text(chunk), markup=False, classes="body-plain"),
                             before=self.query_one(".meta"))

    def _show_meta(self, text: str) -> None:
        self._meta_text = text.strip(" ·")
        meta = self.query_one(".meta", Static)
        meta.update(Text(self._meta_text))
        meta.display = bool(self._meta_text)

    @on(Button.Pressed, ".retry")
    def _retry(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.RetryRequested(self))


class ConversationView(VerticalScroll):
    """The scrolling transcript. Follows the bottom while the user has not scrolled up."""

    can_focus = True

    class AnswerInView(Message):
        """The answer whose sources the sidebar should show changed."""

        def __init__(self, answer: AssistantMessage | None) -> None:
            super().__init__()
            self.answer = answer

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._in_view: AssistantMessage | None = None

    WELCOME = (
        "Ask about synthesis, sound design, mixing, sampling or audio processing.\n\n"
        "Answers cite numbered sources from the knowledge base: click a [N], or press its "
        "digit outside the prompt, to find it in the sidebar. F3 picks a creator, F8 tunes "
        "their voice. F1 lists the keys, Ctrl+P every command."
    )

    def compose(self) -> ComposeResult:
        yield Static(self.WELCOME, classes="welcome", markup=False)

    def on_mount(self) -> None:
        self.anchor()

    @property
    def answers(self) -> list[AssistantMessage]:
        return list(self.query_children(AssistantMessage))

    @property
    def last_answer(self) -> AssistantMessage | None:
        answers = self.answers
        return answers[-1] if answers else None

    async def add_question(self, text: str) -> UserMessage:
        self.query_one(".welcome").display = False
        message = UserMessage(text, classes="question")
        await self.mount(message)
        return message

    async def add_answer(self, sources=None, *, question: str = "", turn: int = 0) -> AssistantMessage:
        answer = AssistantMessage(sources, question=question, turn=turn, classes="answer")
        await self.mount(answer)
        self.anchor()
        self._set_in_view(answer)
        return answer

    async def clear(self) -> None:
        await self.remove_children(".question, .answer")
        self.query_one(".welcome").display = True
        self._set_in_view(None)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if round(old_value) != round(new_value):
            self.call_after_refresh(self.update_in_view)

    def on_resize(self) -> None:
        self.call_after_refresh(self.update_in_view)

    def update_in_view(self) -> None:
        """The answer in view: the last one when at the bottom, else the one at mid-height."""
        answers = self.answers
        if not answers:
            self._set_in_view(None)
            return
        if self.scroll_y >= self.max_scroll_y - 1:
            self._set_in_view(answers[-1])
            return
        middle = self.scroll_y + self.scrollable_content_region.height / 2
        chosen = answers[0]
        for answer in answers:
            if answer.virtual_region.y <= middle:
                chosen = answer
            else:
                break
        self._set_in_view(chosen)

    def _set_in_view(self, answer: AssistantMessage | None) -> None:
        if answer is not self._in_view:
            self._in_view = answer
            self.post_message(self.AnswerInView(answer))
