"""What the app does differently when it runs in a browser (`App.is_web`).

The app process runs on the server, so anything it would start or write locally
(a video player, a file in the export folder) would happen on the server, out of the
user's reach. In a browser instead:

- "open video" opens the video's URL at its start time in a new browser tab
  (`App.open_url`, which the web driver hands to the page); a local video file is on
  the server, so the message says it cannot be played from the browser;
- export offers the Markdown as a download (`App.deliver_binary`: textual-serve serves
  it once at `/download/<key>` behind the same token);
- copy needs nothing here: `App.copy_to_clipboard` writes OSC 52, which the page's
  xterm.js puts on the browser's clipboard where the browser allows it (https or
  localhost).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from tui.services.player import safe_url, url_at_time
from tui.services.sources import format_timestamp, start_seconds
from tui.text import clean


def video_target(source: Mapping[str, Any]) -> tuple[str | None, str]:
    """(URL to open in a new tab, or None; the one-line message to show)."""
    start = start_seconds(source.get("start_time"))
    url = safe_url(source.get("video_url"))
    if url is not None:
        target = url_at_time(url, start)
        stamp = format_timestamp(start) or "the start"
        return target, f"Opening the video at {stamp} in a new browser tab: {target}"
    filename = source.get("video_filename")
    if filename:
        name = clean(str(filename)).replace("\n", " ")[:200]
        return None, (
            f"Cannot open the video here: {name} is a file on the server, which a browser "
            "cannot play; open it in the terminal app on that machine."
        )
    if source.get("video_url"):
        return None, "Cannot open the video: the video URL is not an http(s) URL."
    return None, "Cannot open the video: this source has no video URL."


def open_video(app: Any, source: Mapping[str, Any]) -> tuple[str, bool]:
    """Open the source's video in a new browser tab; (message, opened)."""
    url, message = video_target(source)
    if url is not None:
        app.open_url(url, new_tab=True)
    return message, url is not None


def offer_download(app: Any, text: str, filename: str) -> str:
    """Send `text` to the browser as a Markdown download; the message to show."""
    app.deliver_binary(
        io.BytesIO(text.encode("utf-8")),
        save_filename=filename,
        mime_type="text/markdown; charset=utf-8",
    )
    return f"Export offered as a download: {filename}"
