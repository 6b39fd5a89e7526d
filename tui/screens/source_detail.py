"""The source detail modal: one cited section in full, with its video.

`SourceDetailScreen(detail, *, media_dir=None, player_path=None)` (a `ModalScreen[None]`)
- `detail`: a dict as returned by `tui.services.sources.source_detail(db, slug, anchor)`
  (title, creator_name, topic_category, tags, summary, section_heading,
  section_body, video_title, video_filename, video_url, video_upload_date, start_time,
  end_time, locator, locator_label).
  A `sources` event dict works too (no tags or body then); an optional `number`
  shows as "Source [N]" in the border.
- `media_dir`: where local video files live (`tui.services.player.default_media_dir(settings)`).
  None: only URLs can be opened.
- `player_path`: a PATH to search for mpv/vlc/xdg-open instead of $PATH (tests).
- `highlight`: `(field, start, end)` from `tui.services.claims.citation_span`: the words
  that support the selected citation, in `section_body` or `summary`. They are lit and
  scrolled into view; the section is then shown as text in paragraphs (Markdown would
  hide where the characters are), unless it is cut for display.

Keys (Binding ids for the keymap): `c` copy the reference
(`title — creator — video @ mm:ss`) with `App.copy_to_clipboard`
(`source_detail.copy_reference`); `o` opens the source where it is, one binding per
kind of locator, only the one for this source active: the video at the start time
(`source_detail.open_video`; local player, else the URL), the PDF at its first page
(`source_detail.open_document`; a viewer that takes a page, else the system opener),
the note in $EDITOR at its heading's line (`source_detail.edit_note`; the app suspends
while the editor runs); the outcome is a notification. A section of a distilled page
(`detail["raw"]`, `distill_store.raw_for_section`) says what it was written from
("from the transcript, 12:05–15:45") and `t` shows or hides that transcript text under
it (`source_detail.show_transcript`, active only then). Escape closes
(`source_detail.close`).
Result: always None (`dismiss()`); what copying or opening did is a notification.

All knowledge-base text is shown literally (Rich `Text`, escape sequences
stripped); the section body is Markdown in a `Markdown(open_links=False)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Markdown, Static

from tui.services.player import launch, plan_open
from tui.services.sources import reference_text, time_range
from tui.widgets.footer import AppFooter
from tui.widgets.safe_text import clean, one_line

# Section text shown at most (a knowledge base written by other tools may hold a
# multi-megabyte single line, or thousands of one-line list items at ~10 ms of
# Markdown layout each; either would freeze the screen).
MAX_BODY_CHARS = 20_000
MAX_BODY_LINES = 200


class SourceDetailScreen(ModalScreen[None]):
    """One source in full: page, creator, topic, tags, summary, section text, video."""

    DEFAULT_CSS = """
    SourceDetailScreen {
        align: center middle;
    }
    SourceDetailScreen > #source-detail {
        width: 90%;
        max-width: 110;
        height: auto;
        max-height: 100%;
        border: round $accent;
        border-title-style: bold;
        background: $surface;
        padding: 0 1;
    }
    SourceDetailScreen #sd-title {
        text-style: bold;
        color: $text;
    }
    SourceDetailScreen #sd-meta {
        color: $text-muted;
    }
    SourceDetailScreen #sd-summary {
        text-style: italic;
    }
    SourceDetailScreen #sd-body {
        /* auto up to half the terminal: short sections make a small dialog, long ones scroll,
           and the title and video lines always stay in view */
        height: auto;
        max-height: 50vh;
        border-top: solid $primary 50%;
        scrollbar-size-vertical: 1;
    }
    SourceDetailScreen #sd-heading {
        text-style: bold;
        color: $accent;
        margin-top: 1;
    }
    SourceDetailScreen #sd-section {
        margin: 0;
        padding: 0;
        background: $surface;
    }
    SourceDetailScreen #sd-section-text {
        height: auto;
    }
    SourceDetailScreen .sd-para {
        margin-bottom: 1;
    }
    SourceDetailScreen #sd-from {
        color: $text-muted;
        text-style: italic;
    }
    SourceDetailScreen #sd-raw {
        border-top: dashed $primary 50%;
        color: $text-muted;
        height: auto;
    }
    SourceDetailScreen #sd-video {
        border-top: solid $primary 50%;
        color: $text;
        height: auto;
    }
    """

    BINDINGS = [
        Binding("escape", "close", "Close", id="source_detail.close"),
        Binding("c", "copy_reference", "Copy reference", id="source_detail.copy_reference"),
        # One key, three meanings: only the binding for this source's kind is active.
        Binding("o", "open_video", "Open video", id="source_detail.open_video"),
        Binding("o", "open_document", "Open the PDF at its page", id="source_detail.open_document"),
        Binding("o", "edit_note", "Edit the note", id="source_detail.edit_note"),
        Binding("t", "show_transcript", "Transcript", id="source_detail.show_transcript"),
    ]

    def __init__(
        self,
        detail: Mapping[str, Any],
        *,
        media_dir: Path | None = None,
        player_path: str | None = None,
        highlight: tuple[str, int, int] | None = None,
    ) -> None:
        super().__init__()
        self.detail = dict(detail)
        self.media_dir = media_dir
        self.player_path = player_path
        self.highlight = highlight
        self.lit: list[Static] = []  # the widgets showing the highlighted words

    # -- the highlighted words -------------------------------------------------

    LIT_STYLE = "bold $text-accent on $accent-muted"

    def _lit_span(self, field: str) -> tuple[str, int, int] | None:
        """(the field's raw text, start, end) when the highlight is in `field` and fits it."""
        if not self.highlight:
            return None
        where, start, end = self.highlight
        text = self.detail.get(field)
        if where != field or not isinstance(text, str) or not 0 <= start < end <= len(text):
            return None
        return text, start, end

    def _lit_content(self, text: str, a: int, b: int, start: int, end: int) -> Content:
        """text[a:b], cleaned, with its part inside start..end lit (cleaned piece by piece,
        so the offsets into the raw text hold)."""
        cut = sorted({a, b, min(max(start, a), b), min(max(end, a), b)})
        parts: list[str | tuple[str, str]] = []
        for x, y in zip(cut, cut[1:], strict=False):
            piece = clean(text[x:y])
            parts.append((piece, self.LIT_STYLE) if start <= x and y <= end else piece)
        return Content.assemble(*parts)

    def _lit_paragraphs(self, text: str, start: int, end: int) -> list[Static]:
        """The section as paragraphs of text (split at blank lines), the span lit."""
        import re

        widgets: list[Static] = []
        a = 0
        for gap in [*re.finditer(r"\n[ \t]*\n\s*", text), None]:
            b = gap.start() if gap else len(text)
            if text[a:b].strip():
                para = Static(self._lit_content(text, a, b, start, end), classes="sd-para")
                if a < end and start < b:
                    para.add_class("-lit")
                    self.lit.append(para)
                widgets.append(para)
            if gap:
                a = gap.end()
        return widgets

    # -- what is shown -------------------------------------------------------

    @property
    def raw(self) -> Mapping[str, Any] | None:
        """What a distilled section was written from (None for any other section)."""
        raw = self.detail.get("raw")
        return raw if isinstance(raw, Mapping) and raw.get("label") else None

    def _raw_text(self) -> Text:
        """The transcript sentences behind the section, literally (cut like a long body)."""
        raw = self.raw or {}
        text = clean(raw.get("text")).strip()
        if len(text) > MAX_BODY_CHARS:
            text = text[:MAX_BODY_CHARS] + f"… (cut for display: {len(text):,} characters)"
        out = Text()
        out.append(one_line(raw.get("label")).capitalize() + ":\n", style="bold")
        out.append(text or "(no transcript text)")
        return out

    def _meta_line(self) -> Text:
        d = self.detail
        text = Text()
        parts = [
            ("by ", one_line(d.get("creator_name"))),
            ("", one_line(d.get("topic_category"))),
        ]
        for prefix, value in parts:
            if value:
                if text:
                    text.append("  ·  ")
                text.append(prefix)
                text.append(value, style="bold")
        tags = [one_line(t) for t in d.get("tags") or [] if one_line(t)]
        if tags:
            if text:
                text.append("  ·  ")
            text.append("  ".join(f"#{t}" for t in tags), style="italic")
        return text

    @property
    def kind(self) -> str:
        """"video", "page" or "heading": where this source is (no locator: a video's)."""
        locator = self.detail.get("locator")
        kind = locator.get("kind") if isinstance(locator, Mapping) else None
        return kind if kind in ("page", "heading") else "video"

    def _where_lines(self) -> Text:
        """The video, the document's pages or the note's heading, and what `o` does."""
        kind = self.kind
        if kind == "video":
            return self._video_lines()
        d = self.detail
        loc = d.get("locator") or {}
        text = Text()
        label = one_line(d.get("locator_label"))
        text.append("PDF    " if kind == "page" else "Note   ", style="bold")
        path = one_line(loc.get("path"))
        if kind == "page" and path:  # a note's label names its file already
            text.append(path + "  ")
        text.append(label or path or "(unknown)")
        file = one_line(loc.get("file"))
        if file:
            text.append("\nFile   ", style="bold")
            text.append(file)
        text.append("\n")
        text.append("o", style="bold")
        if kind == "page":
            page = loc.get("first_page")
            at = f" at page {page}" if isinstance(page, int) and not isinstance(page, bool) else ""
            text.append(f" opens the PDF{at}")
        else:
            line = loc.get("line")
            at = f" at line {line}" if isinstance(line, int) and not isinstance(line, bool) else ""
            text.append(f" edits the note{at} (the app returns when the editor quits)")
        return text

    def _video_lines(self) -> Text:
        d = self.detail
        text = Text()
        text.append("Video  ", style="bold")
        text.append(one_line(d.get("video_title")) or "(untitled)")
        span = time_range(d.get("start_time"), d.get("end_time"))
        if span:
            text.append("  @ ", style="dim")
            text.append(span, style="bold")
        uploaded = one_line(d.get("video_upload_date"))
        if uploaded:
            text.append("\nUploaded ", style="bold")
            text.append(uploaded)
        filename = one_line(d.get("video_filename"))
        url = one_line(d.get("video_url"))
        if filename:
            text.append("\nFile   ", style="bold")
            text.append(filename)
        if url:
            text.append("\nURL    ", style="bold")
            text.append(url)
        if not filename and not url and not d.get("video_title"):
            return Text("No video for this section.", style="italic")
        return text

    def compose(self) -> ComposeResult:
        d = self.detail
        body = clean(d.get("section_body"))
        lines = body.count("\n") + 1
        if len(body) > MAX_BODY_CHARS or lines > MAX_BODY_LINES:
            shown = "\n".join(body[:MAX_BODY_CHARS].split("\n")[:MAX_BODY_LINES])
            body = (f"*(section cut for display: the first {len(shown):,} of {len(body):,}"
                    f" characters, {shown.count(chr(10)) + 1:,} of {lines:,} lines)*"
                    f"\n\n{shown}…")
        with Vertical(id="source-detail") as box:
            number = d.get("number")
            box.border_title = f"Source [{number}]" if isinstance(number, int) else "Source"
            yield Static(Text(one_line(d.get("title")) or "(untitled)"), id="sd-title")
            yield Static(self._meta_line(), id="sd-meta")
            with VerticalScroll(id="sd-body"):
                summary = clean(d.get("summary")).strip()
                lit_summary = self._lit_span("summary")
                if lit_summary:
                    text, start, end = lit_summary
                    widget = Static(self._lit_content(text, 0, len(text), start, end),
                                    id="sd-summary")
                    self.lit.append(widget)
                    yield widget
                elif summary:
                    yield Static(Text(summary), id="sd-summary")
                heading = one_line(d.get("section_heading"))
                if heading:
                    yield Static(Text(heading), id="sd-heading")
                lit_body = self._lit_span("section_body")
                if lit_body and body == clean(d.get("section_body")):  # not cut for display
                    with Vertical(id="sd-section-text"):
                        yield from self._lit_paragraphs(*lit_body)
                else:
                    yield Markdown(body or "*No section text.*", open_links=False, id="sd-section")
                if self.raw is not None:
                    raw = Static(self._raw_text(), id="sd-raw")
                    raw.display = False
                    yield raw
            if self.raw is not None:
                yield Static(Text.assemble((one_line(self.raw.get("label")), ""), "  ·  ",
                                           ("t", "bold"), " shows it"), id="sd-from")
            yield Static(self._where_lines(), id="sd-video")
        yield AppFooter()

    def on_mount(self) -> None:
        # Arrow keys and Page Up/Down scroll the section text.
        self.query_one("#sd-body").focus()
        if self.lit:
            self.call_after_refresh(self._scroll_to_lit)

    def _scroll_to_lit(self) -> None:
        self.query_one("#sd-body", VerticalScroll).scroll_to_center(self.lit[0], animate=False)

    @on(Markdown.LinkClicked)
    def _link_clicked(self, event: Markdown.LinkClicked) -> None:
        # Links in knowledge-base text are never followed, nor mistaken by the App
        # for a citation link of the chat view.
        event.stop()

    # -- actions ---------------------------------------------------------------

    @property
    def reference(self) -> str:
        return one_line(reference_text(self.detail))

    def action_close(self) -> None:
        self.dismiss(None)

    def action_copy_reference(self) -> None:
        text = self.reference
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied: {text}", title="Reference", markup=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "show_transcript":
            return self.raw is not None
        wanted = {"open_video": "video", "open_document": "page", "edit_note": "heading"}
        return action not in wanted or wanted[action] == self.kind

    def action_show_transcript(self) -> None:
        """Show (or hide again) the transcript text the section was written from."""
        raw = self.query_one("#sd-raw", Static)
        raw.display = not raw.display
        shown = "hides" if raw.display else "shows"
        self.query_one("#sd-from", Static).update(Text.assemble(
            (one_line((self.raw or {}).get("label")), ""), "  ·  ", ("t", "bold"), f" {shown} it"))
        if raw.display:
            self.call_after_refresh(
                lambda: self.query_one("#sd-body", VerticalScroll).scroll_to_widget(raw, animate=False, top=True))

    def action_open_document(self) -> None:
        if self.app.is_web:
            self._opened("Cannot open the PDF here: it is a file on the server.", False)
            return
        self._open_video()  # plan_open picks the PDF viewer from the locator

    def action_edit_note(self) -> None:
        """The editor runs in this terminal: the app suspends until it quits."""
        from textual.app import SuspendNotSupported

        from tui.services.player import run_in_terminal

        if self.app.is_web:
            self._opened("Cannot edit the note here: it is a file on the server.", False)
            return
        plan = plan_open(self.detail, media_dir=self.media_dir, path=self.player_path)
        if plan.kind != "editor":
            self._opened(plan.message, False)
            return
        try:
            with self.app.suspend():
                message = run_in_terminal(plan)
        except SuspendNotSupported:
            self._opened("Cannot edit the note here: this terminal cannot hand over to an editor.",
                         False)
            return
        self._opened(message, not message.startswith("Cannot"))

    def action_open_video(self) -> None:
        if self.app.is_web:  # served: a new browser tab, nothing started on the server
            from tui.serve.browser import open_video

            self._opened(*open_video(self.app, self.detail))
            return
        self._open_video()

    @work(thread=True, exclusive=True, group="open-video", exit_on_error=False)
    def _open_video(self) -> None:
        # Looking for files and executables and starting a process: off the event loop.
        plan = plan_open(self.detail, media_dir=self.media_dir, path=self.player_path)
        message = launch(plan)
        ok = plan.ok and not message.startswith("Cannot open")
        self.app.call_from_thread(self._opened, message, ok)

    def _opened(self, message: str, ok: bool) -> None:
        title = {"page": "PDF", "heading": "Note"}.get(self.kind, "Video")
        self.notify(message, title=title, severity="information" if ok else "warning", markup=False)
