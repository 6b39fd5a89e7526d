"""PDF manuals, through pypdf: one page per document, sections from the outline.

With an outline (bookmarks) a section runs from its entry's page to the page
before the next entry's (a long one is split into parts of a few pages);
without one, pages are grouped until a group holds a screenful of text. Every
section keeps its page range. A PDF without extractable text (a scan) is
refused: OCR is not done here. An encrypted PDF opens only when it needs no
password to read (an owner password alone restricts editing, not reading).
"""

from __future__ import annotations

import io
import logging
import re
from contextlib import contextmanager

from tui.materials.model import Material, MaterialSection, SourceGroup
from tui.materials.textio import (
    MAX_PDF_BYTES,
    Refused,
    anchors,
    creator_slug,
    cut,
    fallback_title,
    read_bytes,
    sha256_hex,
    summary_from,
    top_terms,
    topic_category,
)
from tui.text import clean, one_line

MAX_PAGES = 5000
MAX_SECTION_PAGES = 6
GROUP_CHARS = 1500
GROUP_PAGES = 3


@contextmanager
def _pypdf_warnings(into: list[str]):
    """pypdf logs what it repairs; those lines become the Material's warnings, not stderr."""
    logger = logging.getLogger("pypdf")

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if len(into) < 5:
                into.append(f"pdf: {one_line(record.getMessage())[:160]}")

    handler = Collect(logging.WARNING)
    old = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = old


def _outline(reader) -> list[tuple[str, int]]:
    """(title, 0-based page) of the top outline level (or the level below a single root)."""
    try:
        items = reader.outline
    except Exception:  # noqa: BLE001 - a broken outline is no outline
        return []
    top = [x for x in items if not isinstance(x, list)]
    if len(top) == 1 and len(items) > 1 and isinstance(items[1], list):
        top = [x for x in items[1] if not isinstance(x, list)]
    out = []
    for dest in top:
        try:
            page = reader.get_destination_page_number(dest)
            title = one_line(clean(dest.title))
        except Exception:  # noqa: BLE001
            continue
        if page is not None and page >= 0:
            out.append((title, page))
    return out


def _page_text(text: str) -> str:
    text = clean(text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def read_pdf(group: SourceGroup, *, creator: str | None = None) -> Material:
    from pypdf import PdfReader

    path = group.main
    data = read_bytes(path, MAX_PDF_BYTES, "PDFs")
    if b"%%EOF" not in data[-2048:]:
        raise Refused("truncated PDF (no %%EOF at the end)")
    warnings: list[str] = []
    with _pypdf_warnings(warnings):
        try:
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted:
                try:
                    opened = reader.decrypt("")
                except Exception as exc:  # noqa: BLE001 - e.g. AES without the crypto library
                    raise Refused(f"encrypted PDF (cannot decrypt: {one_line(str(exc))[:120]})") from None
                if not opened:
                    raise Refused("encrypted PDF (needs a password)")
            count = len(reader.pages)
        except Refused:
            raise
        except Exception as exc:  # noqa: BLE001 - pypdf's errors on damaged files are many kinds
            raise Refused(f"broken PDF ({one_line(str(exc))[:120] or type(exc).__name__})") from None
        if count == 0:
            raise Refused("a PDF with no pages")
        if count > MAX_PAGES:
            raise Refused(f"{count} pages, over the {MAX_PAGES}-page limit")
        texts = []
        for number in range(count):
            try:
                texts.append(_page_text(reader.pages[number].extract_text() or ""))
            except Exception as exc:  # noqa: BLE001 - one bad page is a warning
                warnings.append(f"page {number + 1}: no text ({type(exc).__name__})")
                texts.append("")
        if not any(texts):
            raise Refused("no extractable text (scanned? OCR is not supported)")
        try:
            meta = reader.metadata or {}
            meta_title = one_line(clean(meta.get("/Title") or ""))
            author = one_line(clean(meta.get("/Author") or ""))
        except Exception:  # noqa: BLE001 - unreadable metadata is no metadata
            meta_title, author = "", ""
        outline = _outline(reader)

    if meta_title.lower() in ("untitled", "") or meta_title.lower().startswith("microsoft word -"):
        meta_title = ""
    title = meta_title or fallback_title(path)
    creator_name = one_line(creator or "") or author or fallback_title(path)

    ranges: list[tuple[str, int, int]] = []  # heading, first page, last page (1-based)
    entries = []
    for heading, page in outline:
        if entries and page < entries[-1][1]:
            continue  # out of order: not a usable boundary
        if entries and page == entries[-1][1]:
            entries[-1] = (entries[-1][0] + "; " + heading if entries[-1][0].count(";") < 2 else entries[-1][0], page)
            continue
        entries.append((heading or f"Page {page + 1}", page))
    if entries:
        if entries[0][1] > 0 and any(texts[: entries[0][1]]):
            ranges.append((title, 1, entries[0][1]))
        for k, (heading, page) in enumerate(entries):
            last = entries[k + 1][1] if k + 1 < len(entries) else count
            first = page + 1
            last = max(first, last)
            for part, a in enumerate(range(first, last + 1, MAX_SECTION_PAGES)):
                b = min(last, a + MAX_SECTION_PAGES - 1)
                ranges.append((heading if part == 0 else f"{heading} (continued)", a, b))
    else:
        a = 1
        while a <= count:
            b, size = a, len(texts[a - 1])
            while b < count and b - a + 1 < GROUP_PAGES and size < GROUP_CHARS:
                b += 1
                size += len(texts[b - 1])
            first_line = next((ln for ln in texts[a - 1 : b][0].split("\n") if ln.strip()), "") if texts[a - 1] else ""
            ranges.append((cut(first_line, 60) if first_line else f"Page {a}", a, b))
            a = b + 1

    kept = []
    for heading, a, b in ranges:
        text = "\n\n".join(t for t in texts[a - 1 : b] if t)
        if text:
            kept.append((heading, a, b, text))
    names = anchors([h for h, _, _, _ in kept])
    sections = [
        MaterialSection(anchor=n, heading=h, body=t, locator="page", first_page=a, last_page=b)
        for n, (h, a, b, t) in zip(names, kept, strict=False)
    ]
    everything = "\n".join(texts)
    tags = top_terms(everything, 5)
    return Material(
        kind="pdf", source=path, files=list(group.files), content_hash=sha256_hex([data]),
        key=f"pdf:{path}", creator_name=creator_name, creator_slug=creator_slug(creator_name),
        creator_key=None, title=title,
        summary=summary_from(sections[0].body.split("\n\n")) or cut(sections[0].body, 300),
        tags=tags, topic_category=topic_category(title, tags, everything), sections=sections,
        warnings=warnings,
    )
