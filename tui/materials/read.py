"""`read(group)`: one discovered group to a Material, or a Refusal, never an exception."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from tui.materials.model import Material, Refusal, SourceGroup
from tui.materials.textio import Refused
from tui.text import one_line

CHUNK = 1024 * 1024


def read(group: SourceGroup, *, creator: str | None = None) -> Material | Refusal:
    """Parse and section one group; any problem is a Refusal naming the file and the reason.

    `creator` is what the user passed as `--creator`: the creator of subtitles and
    PDFs, and the fallback for notes and yt-dlp downloads without a channel.
    """
    try:
        if group.kind == "ytdlp":
            from tui.materials.video import read_ytdlp

            return read_ytdlp(group, creator=creator)
        if group.kind == "subtitles":
            from tui.materials.video import read_subtitles

            return read_subtitles(group, creator=creator)
        if group.kind == "note":
            from tui.materials.notes import read_note

            return read_note(group, creator=creator)
        if group.kind == "pdf":
            from tui.materials.pdf import read_pdf

            return read_pdf(group, creator=creator)
        return Refusal(group.main, f"{group.kind}: not material the readers parse (the KB importer reads it)")
    except Refused as exc:
        return Refusal(group.main, one_line(exc.reason))
    except MemoryError:
        return Refusal(group.main, "too large to read into memory")
    except RecursionError:
        return Refusal(group.main, "nested too deeply to read")
    except Exception as exc:  # noqa: BLE001 - a reader bug must refuse one file, not end an import
        return Refusal(group.main, f"could not read: {type(exc).__name__}: {one_line(str(exc))[:200]}")


def content_hash(files: Iterable[Path]) -> str:
    """sha256 over the files' bytes, in order, read in 1 MiB chunks."""
    h = hashlib.sha256()
    for path in files:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    return h.hexdigest()
