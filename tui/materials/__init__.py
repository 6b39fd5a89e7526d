"""Readers of a user's own material (yt-dlp subtitles, notes, PDF manuals): see `model.py`."""
