"""What the app does instead when it runs in a browser (tui/serve/browser.py)."""

from __future__ import annotations

import io

from tui.serve.browser import offer_download, open_video, video_target


class RecordingApp:
    """Only the two App methods the helpers call, recording what they were given."""

    def __init__(self) -> None:
        self.opened: list[tuple[str, bool]] = []
        self.delivered: list[tuple[bytes, dict]] = []

    def open_url(self, url: str, *, new_tab: bool = True) -> None:
        self.opened.append((url, new_tab))

    def deliver_binary(self, file: io.BytesIO, **options) -> str:
        self.delivered.append((file.read(), options))
        return "key"


def test_a_youtube_url_opens_at_its_second_in_a_new_tab():
    app = RecordingApp()
    message, ok = open_video(app, {"video_url": "https://www.youtube.com/watch?v=abc",
                                   "start_time": 95.5, "video_filename": "local.mp4"})
    assert ok and app.opened == [("https://www.youtube.com/watch?v=abc&t=95", True)]
    assert "at 01:35 in a new browser tab" in message


def test_another_url_gets_a_media_fragment():
    url, _ = video_target({"video_url": "https://example.com/v/1", "start_time": 690})
    assert url == "https://example.com/v/1#t=690"


def test_a_local_file_is_not_reachable_from_a_browser():
    app = RecordingApp()
    message, ok = open_video(app, {"video_filename": "dj-kiln-v05.mp4", "start_time": 10})
    assert not ok and app.opened == []
    assert "dj-kiln-v05.mp4 is a file on the server" in message


def test_bad_or_missing_urls_open_nothing():
    for source, words in (
        ({"video_url": "javascript:alert(1)"}, "not an http(s) URL"),
        ({"video_url": "file:///etc/passwd"}, "not an http(s) URL"),
        ({}, "no video URL"),
        ({"video_filename": "x\x1b[31m.mp4"}, "x.mp4 is a file on the server"),
    ):
        url, message = video_target(source)
        assert url is None and words in message, (source, message)


def test_export_is_offered_as_a_utf8_markdown_download():
    app = RecordingApp()
    message = offer_download(app, "# Café ✓\n", "chrysopedia-1234abcd.md")
    data, options = app.delivered[0]
    assert data == "# Café ✓\n".encode()
    assert options == {"save_filename": "chrysopedia-1234abcd.md",
                       "mime_type": "text/markdown; charset=utf-8"}
    assert message == "Export offered as a download: chrysopedia-1234abcd.md"
