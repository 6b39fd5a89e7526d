"""One answer in the conversation: streamed, cited, stopped, failed or restored.

An answer streams through `Markdown.get_stream` (appends, batched while one is in
flight), never a whole re-render per token. `AnswerSegmenter` (tui/answer_segmenter.py,
pure) decides where the answer is split into segments and where it goes on as plain text;
`AssistantMessage` applies its operations: it mounts the segments, hands them their text
at most every FLUSH_INTERVAL, checks a closed segment against a fresh parse (rendering it
whole only if a block came out wrong) and freezes it into its rendered lines. Citations
`[N]` become `cite:N` links only when 1 <= N <= the number of sources of that answer.

One topic, an answer's lifecycle in the view (streaming, plain part, freezing, status),
hence its length; the decisions about the text are the segmenter's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from time import monotonic
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Button, Static

from tui.answer_segmenter import (
    LONG_LINE_CHARS,
    MARKDOWN_LINES,
    AnswerSegmenter,
    Append,
    NewSegment,
    Operation,
    Plain,
    link_citations,
    mark_claims,
    markdown_head,
)
from tui.widgets.removal import removed
from tui.widgets.safe_text import clean

if TYPE_CHECKING:
    from textual.widgets import Markdown
    from textual.widgets.markdown import MarkdownStream

    from tui.widgets.answer_markdown import FrozenSegment

# Hand streamed text to the Markdown at most this often (seconds): a few appends per second.
FLUSH_INTERVAL = 0.05
# ... and while tokens flood in faster than frames are drawn (see tui/pacing.py).
FLOOD_FLUSH_INTERVAL = 0.15
# A segment frozen lazily while tokens flood in renders the rest of its lines once the
# stream has been quiet this long (seconds).
SETTLE_AFTER_S = 0.5
# A restored answer is Markdown up to as many non-blank lines as a streamed one.
RESTORE_MARKDOWN_LINES = MARKDOWN_LINES
# The plain-text part of an answer: one Static per PLAIN_CHUNK_LINES lines ...
PLAIN_CHUNK_LINES = 200
# ... or this many characters (cut at a space where there is one): one long line too.
PLAIN_CHUNK_CHARS = 8000
PLAIN_NOTE = "… the rest of this long answer, as plain text:"


def _answer_markdown():
    """The module of an answer's Markdown widgets, imported at the first answer (the app's
    boot imports it after the first paint: see answer_markdown.py)."""
    from tui.widgets import answer_markdown

    return answer_markdown


@dataclass(frozen=True)
class AnswerMeta:
    """What the meta line under an answer says, from a `Done` event or a saved message."""

    model: str = ""
    fallback_used: bool = False
    cascade_tier: str = ""
    usage: dict[str, Any] = field(default_factory=dict)
    latency_ms: float | None = None
    truncated: bool = False
    claims: str = ""  # the claim check's one-line summary (given by the screen)

    @classmethod
    def of(cls, source: Any) -> AnswerMeta:
        """From an object with these attributes (a `Done` event) or a dict (a saved message)."""
        get = source.get if isinstance(source, dict) else (lambda k: getattr(source, k, None))
        return cls(model=get("model") or "", fallback_used=bool(get("fallback_used")),
                   cascade_tier=get("cascade_tier") or "", usage=get("usage") or {},
                   latency_ms=get("latency_ms"), truncated=bool(get("truncated")))

    def line(self) -> str:
        """'model · tier · N tokens · 1.2 s'."""
        parts = []
        if self.model:
            parts.append(str(self.model))
        if self.fallback_used:
            parts.append("fallback")
        if self.cascade_tier:
            parts.append(f"tier {self.cascade_tier}")
        tokens = self.usage.get("total_tokens") or self.usage.get("completion_tokens")
        if tokens:
            estimated = " (est.)" if self.usage.get("estimated") else ""
            parts.append(f"{tokens} tokens{estimated}")
        if self.latency_ms is not None:
            parts.append(f"{float(self.latency_ms) / 1000:.1f} s")
        if self.truncated:
            # The model ran past the stored-answer cap: generation was stopped there.
            parts.insert(0, "⚠ answer cut at the size limit")
        if self.claims:
            parts.append(self.claims)
        return " · ".join(clean(p) for p in parts)


@dataclass(frozen=True)
class ClaimMark:
    """A questionable claim of the answer: its index in the claim check, its characters
    in the answer's raw text, its status, and whether it is a table row."""

    index: int
    start: int
    end: int
    status: str
    row: bool = False


@dataclass(frozen=True)
class AnswerClaims:
    """What the answer shows of its claim check (the screen makes it from the service's
    payload): the meta line's summary, the marks, and per source how many claims it backs."""

    summary: str = ""
    marks: tuple[ClaimMark, ...] = ()
    backed: tuple[int, ...] = ()


class AssistantMessage(Vertical):
    """One answer: working indicator, Markdown body, a meta line, an error with Retry."""

    class RetryRequested(Message):
        """The user pressed Retry under this answer."""

        def __init__(self, answer: AssistantMessage) -> None:
            super().__init__()
            self.answer = answer

        @property
        def control(self) -> AssistantMessage:
            return self.answer

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
        self.meta = AnswerMeta()
        self.got_sources = False  # the service accepted the question (and archived it)
        self._segmenter: AnswerSegmenter | None = None  # set while the answer streams
        self._stream: MarkdownStream | None = None
        self._segment: Markdown | None = None  # the segment being streamed into
        self._segment_text = ""  # linked Markdown written to that segment
        self._segment_writes = 0  # texts handed to the segment's stream
        self._plain: Static | None = None  # past the Markdown part: the plain-text chunk written to
        self._plain_text = ""
        self._plain_dirty = False
        self._plain_total = 0  # characters written to the plain-text part
        self.plain_shown = 0  # ... of which handed to its widgets (a benchmark reads it)
        self._unsent = ""  # text for the segment not yet handed to its stream
        self._last_flush = 0.0
        self._flush_timer: Timer | None = None
        self._pacer: Any = None  # the app's FramePacer, if it has one (taken at the first token)
        self._unsettled: list[FrozenSegment] = []  # frozen lazily, lines left to render
        self.claims: dict[str, Any] | None = None  # the claim check, as the service gave it
        self._plain_marks: dict[int, Widget] = {}  # claim index -> plain chunk holding its mark
        self.claim_view = AnswerClaims()
        self.marked = False  # the text shows the marks of its questionable claims

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
            await removed(segment.remove())
        await removed(self.query_children(".body-plain").remove())
        self._plain, self._plain_text, self._plain_dirty = None, "", False
        self._plain_marks = {}
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
    # Each append re-lays-out one bounded segment instead of the whole answer, so the cost
    # of a token does not grow with the length of the answer (where the segments end is
    # the segmenter's decision).

    async def write(self, delta: str) -> None:
        """Append a streamed fragment."""
        delta = clean(delta)
        if not delta:
            return
        if self._segmenter is None:
            self._segmenter = AnswerSegmenter(len(self.sources))
            self.status = "streaming"
            self.query_one(".working").display = False
            self._segment = self.body
            self._segment_text = ""
            self._segment_writes = 0
            self._stream = _answer_markdown().AnswerMarkdown.get_stream(self._segment)
            self._pacer = getattr(self.app, "pacer", None)
        self.raw += delta
        pacer = self._pacer
        if pacer is None:
            await self._apply(self._segmenter.feed(delta))
            return
        # Frames are put off while tokens flood in; when they stop, what is left is sent
        # to the segment at once (not at the next flush tick) and drawn.
        if not pacer.active:  # the first token since the stream was last quiet
            pacer.when_quiet(self._flush_soon)
        pacer.token()
        try:
            await self._apply(self._segmenter.feed(delta))
        finally:
            pacer.taken()

    async def _apply(self, operations: list[Operation]) -> None:
        for operation in operations:
            match operation:
                case Append(text):
                    await self._write_segment(text)
                case NewSegment(runs_on):
                    await self._new_segment(runs_on=runs_on)
                case Plain(text):
                    if self._plain is None:
                        await self._start_plain()
                    await self._write_plain(text)

    def _flush_soon(self) -> None:
        if self._unsent or self._plain_dirty:
            self.call_next(self._flush)

    async def _start_plain(self) -> None:
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
        self._segment_writes = 0
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
        # Not attached: the app is closing (a retry queued after a refresh runs during the
        # shutdown, when the segment has no screen left to lay it out).
        if not segment.is_attached or getattr(segment, "retired", False):
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
            await removed(segment.remove())

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
        segmenter = self._segmenter
        if segmenter is None:
            return
        await self._apply(segmenter.finish())
        self._segmenter = None
        if self._plain is not None:
            await self._flush()
        else:
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
        self._segmenter = None
        self._plain, self._plain_text, self._plain_dirty = None, "", False
        self._plain_total = self.plain_shown = 0
        self.raw = ""
        for segment in self.segments[1:]:
            await removed(segment.remove())
        await self._fresh_body()
        self.status = "working"
        working = self.query_one(".working", Static)
        working.display = True
        working.update(Text(clean(f"Restarting: {reason}" if reason else "Restarting…")))

    async def finish(self, done: Any) -> None:
        """The answer is complete: `done` is the `Done` event (or anything AnswerMeta reads)."""
        await self._stop_stream()
        self.meta = AnswerMeta.of(done)
        self._show_status("answered")

    async def stop(self) -> None:
        """Cancelled by the user: keep the partial answer, mark it stopped."""
        await self._stop_stream()
        self._show_status("stopped")

    async def fail(self, message: str) -> None:
        await self._stop_stream()
        if not self.raw:
            self.body.display = False
        self._show_status("failed", error=message)

    def _show_status(self, status: str, *, error: str = "") -> None:
        """The end of an answer, streamed or restored: answered, stopped or failed."""
        self.status = status
        self.query_one(".working").display = False
        if status == "failed":
            self.add_class("-failed")
            self.query_one(".error-text", Static).update(Text("⚠ " + clean(error)))
        elif status == "stopped":
            self.add_class("-stopped")
            self._show_meta("⏹ stopped · " + self.meta.line())
        else:
            self._show_meta(self.meta.line())

    async def show_claims(self, claims: AnswerClaims) -> None:
        """Show the claim check: its summary in the meta line, a mark after each
        questionable claim (the answer's text rendered again with them, when it is all
        Markdown and its lines are of ordinary length)."""
        self.claim_view = claims
        self.meta = replace(self.meta, claims=claims.summary)
        if self.status != "failed":
            text = self.meta.line()
            if self.status == "stopped":
                text = "⏹ stopped · " + text
            if self.has_class("-previous"):
                text = "previous version · " + text
            self._show_meta(text)
        marks = [(m.index, m.end, m.status, m.row) for m in claims.marks]
        if not marks or self.status in ("working", "streaming"):
            return
        head, rest = markdown_head(self.raw, RESTORE_MARKDOWN_LINES)
        if any(len(line) > LONG_LINE_CHARS for line in head.split("\n")):
            return  # a very long line, shown in run-on segments: the meta line says it
        # Shown again as a restored answer is: its first RESTORE_MARKDOWN_LINES lines as
        # Markdown with a `claim:K` link after each questionable claim, the rest as plain
        # text with the same symbols after theirs (bench/claim_marks.py: what it costs).
        split = len(head)
        body = await self._fresh_body()
        await body.update(link_citations(
            mark_claims(head, [m for m in marks if m[1] <= split]), len(self.sources)))
        if rest:
            await self._restore_plain(rest, [(k, end - split, status)
                                             for k, end, status, _row in marks if end > split])
        self.marked = True

    def claim_block(self, index: int) -> Widget | None:
        """The block of the answer showing claim `index`'s mark (None: not shown)."""
        from textual.widgets.markdown import MarkdownBlock

        if index in self._plain_marks:
            return self._plain_marks[index]
        needle = f"](claim:{index})"
        for segment in self.segments:
            found = None
            for block in segment.query(MarkdownBlock):  # depth first: the innermost last
                if needle in (block.source or ""):
                    found = block
            if found is not None:
                return found
        return None

    def mark_previous(self) -> None:
        """A newer answer to the same question replaced this one."""
        self.add_class("-previous")
        self._show_meta("previous version · " + self._meta_text)

    async def restore(self, content: str, meta: dict[str, Any], status: str) -> None:
        """Show a saved answer (resuming a conversation)."""
        self.raw = clean(content)
        self.meta = AnswerMeta.of(meta)
        self.query_one(".working").display = False
        body = await self._fresh_body()
        head, rest = markdown_head(self.raw, RESTORE_MARKDOWN_LINES)
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
            self._show_status("failed", error=meta.get("error") or "failed")
        elif status in ("cancelled", "stopped", "incomplete"):
            self._show_status("stopped")
        else:
            self._show_status("answered")

    async def _restore_plain(self, rest: str, marks: list[tuple[int, int, str]] = ()) -> None:
        """The part of a restored answer past the Markdown limit, as plain text; `marks`
        (claim index, end offset in `rest`, status): the claim marks' symbols after them."""
        from tui.answer_segmenter import CLAIM_MARKS

        self._plain_marks = {}
        await self.mount(Static(Text(PLAIN_NOTE, style="italic"), classes="body-plain -note"),
                         after=self.segments[-1])
        lines = rest.splitlines(keepends=True)
        pending = sorted((end, k, status) for k, end, status in marks if status in CLAIM_MARKS)
        at = 0
        for start in range(0, len(lines), PLAIN_CHUNK_LINES):
            chunk = "".join(lines[start : start + PLAIN_CHUNK_LINES])
            text = Text()
            last = 0
            inside = []
            while pending and pending[0][0] <= at + len(chunk):
                end, k, status = pending.pop(0)
                text.append(chunk[last : end - at])
                text.append(" " + CLAIM_MARKS[status], style="bold reverse")
                last = end - at
                inside.append(k)
            text.append(chunk[last:])
            widget = Static(text, markup=False, classes="body-plain")
            await self.mount(widget, before=self.query_one(".meta"))
            for k in inside:
                self._plain_marks[k] = widget
            at += len(chunk)

    def _show_meta(self, text: str) -> None:
        self._meta_text = text.strip(" ·")
        meta = self.query_one(".meta", Static)
        meta.update(Text(self._meta_text))
        meta.display = bool(self._meta_text)

    @on(Button.Pressed, ".retry")
    def _retry(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.RetryRequested(self))
