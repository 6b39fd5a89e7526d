"""Readers of a user's own material (yt-dlp subtitles, notes, PDF manuals): see `model.py`.

The readers' entry points (implemented in this package):

- ``discover(paths) -> Iterator[SourceGroup | Refusal]``: files and folders, recursive,
  symlink loops and oversized files refused, yt-dlp pairs grouped, kinds told by content.
- ``read(group, *, creator=None) -> Material | Refusal``: one group, parsed and sectioned.
- ``content_hash(files) -> str``: sha256 over the files' bytes, read in chunks.
"""
