"""Readers of a user's own material (yt-dlp subtitles, notes, PDF manuals): see `model.py`.

The readers' entry points (implemented in this package):

- ``discover(paths) -> Iterator[SourceGroup | Refusal]``: files and folders, recursive,
  symlink loops and oversized files refused, yt-dlp pairs grouped, kinds told by content.
- ``read(group, *, creator=None) -> Material | Refusal``: one group, parsed and sectioned.
- ``content_hash(files) -> str``: sha256 over the files' bytes, read in chunks.
"""

from tui.materials.discover import discover
from tui.materials.model import (
    Material,
    MaterialSection,
    MaterialVideo,
    Refusal,
    SourceGroup,
    TimedSentence,
)
from tui.materials.read import content_hash, read

__all__ = [
    "Material",
    "MaterialSection",
    "MaterialVideo",
    "Refusal",
    "SourceGroup",
    "TimedSentence",
    "content_hash",
    "discover",
    "read",
]
