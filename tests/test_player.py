"""Opening a source's video: the argv built, real PATH lookups of fake executables."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import pytest

from tui.config import Settings
from tui.services.player import (
    OpenPlan,
    default_media_dir,
    find_player,
    launch,
    plan_open,
    player_command,
    resolve_media_file,
    safe_url,
    url_at_time,
)


def fake_exe(bin_dir: Path, name: str, body: str = "exit 0") -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = bin_dir / name
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return exe


@pytest.fixture
def media(tmp_path) -> Path:
    media_dir = tmp_path / "media"
    media_dir.mkdir()
    (media_dir / "ada-v1.mp4").write_bytes(b"\x00")
    return media_dir


LOCAL = {"video_filename": "ada-v1.mp4", "video_url": None, "start_time": 95, "end_time": 160}
REMOTE = {"video_filename": None, "video_url": "https://example.com/bo-v1", "start_time": 10}


def test_default_media_dir(tmp_path):
    assert default_media_dir(Settings(data_dir=tmp_path)) == tmp_path / "media"


def test_find_player_prefers_mpv(tmp_path):
    bin_dir = tmp_path / "bin"
    fake_exe(bin_dir, "vlc")
    assert find_player(str(bin_dir)) == ("vlc", str(bin_dir / "vlc"))
    fake_exe(bin_dir, "mpv")
    assert find_player(str(bin_dir)) == ("mpv", str(bin_dir / "mpv"))
    assert find_player(str(tmp_path / "empty")) is None


def test_player_command_start_options(tmp_path):
    f = tmp_path / "v.mp4"
    assert player_command("mpv", "/bin/mpv", f, 95.0) == ["/bin/mpv", "--start=95", str(f)]
    assert player_command("vlc", "/bin/vlc", f, 95.5) == ["/bin/vlc", "--start-time=95.5", str(f)]
    assert player_command("mpv", "/bin/mpv", f, None) == ["/bin/mpv", str(f)]
    assert player_command("mpv", "/bin/mpv", f, 0) == ["/bin/mpv", str(f)]


def test_plan_local_file_with_mpv(tmp_path, media):
    bin_dir = tmp_path / "bin"
    mpv = fake_exe(bin_dir, "mpv")
    fake_exe(bin_dir, "vlc")
    plan = plan_open(LOCAL, media_dir=media, path=str(bin_dir))
    assert plan.kind == "player"
    assert plan.argv == (str(mpv), "--start=95", str((media / "ada-v1.mp4").resolve()))
    assert plan.message == "Opening ada-v1.mp4 in mpv at 01:35"


def test_plan_local_file_with_vlc(tmp_path, media):
    bin_dir = tmp_path / "bin"
    vlc = fake_exe(bin_dir, "vlc")
    plan = plan_open(LOCAL, media_dir=media, path=str(bin_dir))
    assert plan.argv == (str(vlc), "--start-time=95", str((media / "ada-v1.mp4").resolve()))


def test_plan_file_name_starting_with_dash_is_not_an_option(tmp_path, media):
    (media / "--help.mp4").write_bytes(b"\x00")
    bin_dir = tmp_path / "bin"
    fake_exe(bin_dir, "mpv")
    plan = plan_open({"video_filename": "--help.mp4", "start_time": 1}, media_dir=media, path=str(bin_dir))
    assert plan.argv[-1] == str((media / "--help.mp4").resolve())
    assert plan.argv[-1].startswith("/")


def test_plan_local_file_without_player_falls_back_to_url(tmp_path, media):
    bin_dir = tmp_path / "bin"
    opener = fake_exe(bin_dir, "xdg-open")
    source = dict(LOCAL, video_url="https://example.com/v")
    plan = plan_open(source, media_dir=media, path=str(bin_dir))
    assert plan.kind == "url"
    assert plan.argv == (str(opener), "https://example.com/v#t=95")


def test_plan_local_file_without_player_or_url(tmp_path, media):
    plan = plan_open(LOCAL, media_dir=media, path=str(tmp_path / "empty"), allow_webbrowser=False)
    assert not plan.ok
    assert "no video player (mpv or vlc) found" in plan.message
    assert plan.message.startswith("Cannot open the video:")


def test_plan_missing_file_says_where_it_looked(tmp_path):
    bin_dir = tmp_path / "bin"
    fake_exe(bin_dir, "mpv")
    plan = plan_open(LOCAL, media_dir=tmp_path / "nomedia", path=str(bin_dir), allow_webbrowser=False)
    assert plan.kind == "none"
    assert f"ada-v1.mp4 not found in {tmp_path / 'nomedia'}" in plan.message


def test_plan_url_with_xdg_open(tmp_path):
    bin_dir = tmp_path / "bin"
    opener = fake_exe(bin_dir, "xdg-open")
    plan = plan_open(REMOTE, media_dir=None, path=str(bin_dir))
    assert plan.kind == "url"
    assert plan.argv == (str(opener), "https://example.com/bo-v1#t=10")
    assert plan.url == "https://example.com/bo-v1#t=10"


def test_plan_url_without_opener(tmp_path):
    plan = plan_open(REMOTE, media_dir=None, path=str(tmp_path / "empty"), allow_webbrowser=False)
    assert plan.kind == "none"
    assert "no browser to open https://example.com/bo-v1#t=10" in plan.message


def test_plan_rejects_non_http_urls(tmp_path):
    bin_dir = tmp_path / "bin"
    fake_exe(bin_dir, "xdg-open")
    for url in ("file:///etc/passwd", "javascript:alert(1)", "https://exa\nmple.com", "-x"):
        plan = plan_open({"video_url": url}, media_dir=None, path=str(bin_dir))
        assert plan.kind == "none", url
        assert "not an http(s) URL" in plan.message


def test_plan_nothing_to_open(tmp_path):
    plan = plan_open({"title": "x"}, media_dir=tmp_path, path=str(tmp_path))
    assert plan == OpenPlan("none", "Cannot open the video: this source has no video file or URL")


def test_resolve_media_file_stays_inside_media_dir(tmp_path, media):
    (tmp_path / "secret.mp4").write_bytes(b"\x00")
    assert resolve_media_file("ada-v1.mp4", media) == (media / "ada-v1.mp4").resolve()
    assert resolve_media_file("../secret.mp4", media) is None
    assert resolve_media_file(str(tmp_path / "secret.mp4"), media) is None
    assert resolve_media_file(str(media / "ada-v1.mp4"), media) == (media / "ada-v1.mp4").resolve()
    (media / "link.mp4").symlink_to(tmp_path / "secret.mp4")
    assert resolve_media_file("link.mp4", media) is None
    (media / "sub").mkdir()
    (media / "sub" / "b.mp4").write_bytes(b"\x00")
    assert resolve_media_file("sub/b.mp4", media) == (media / "sub" / "b.mp4").resolve()
    assert resolve_media_file("ada-v1.mp4", None) is None
    assert resolve_media_file("", media) is None
    assert resolve_media_file("a\x00b", media) is None
    assert resolve_media_file(".", media) is None  # a directory is not a video


def test_url_at_time():
    assert url_at_time("https://example.com/v", 95.7) == "https://example.com/v#t=95"
    assert url_at_time("https://example.com/v#chapter", 95) == "https://example.com/v#chapter"
    assert url_at_time("https://example.com/v", None) == "https://example.com/v"
    assert url_at_time("https://example.com/v", 0) == "https://example.com/v"
    assert url_at_time("https://www.youtube.com/watch?v=abc&t=5", 95) == (
        "https://www.youtube.com/watch?v=abc&t=95"
    )
    assert url_at_time("https://youtu.be/abc", 61) == "https://youtu.be/abc?t=61"


def test_safe_url():
    assert safe_url(" https://example.com/x ") == "https://example.com/x"
    assert safe_url("http://h") == "http://h"
    assert safe_url("ftp://h/x") is None
    assert safe_url("https:///nohost") is None
    assert safe_url(None) is None
    assert safe_url("https://h/\x1b[2J") is None


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell script as a fake player")
def test_launch_runs_argv_without_a_shell(tmp_path, media):
    """A fake mpv records its arguments: shell metacharacters arrive untouched."""
    out = tmp_path / "argv.txt"
    bin_dir = tmp_path / "bin"
    fake_exe(bin_dir, "mpv", f'for a in "$@"; do printf "%s\\n" "$a"; done > "{out}.tmp" && mv "{out}.tmp" "{out}"')
    name = "a b; $(touch pwned) `x`.mp4"
    (media / name).write_bytes(b"\x00")
    plan = plan_open({"video_filename": name, "start_time": 30}, media_dir=media, path=str(bin_dir))
    message = launch(plan)
    assert message == plan.message
    for _ in range(500):  # wait for the child to write its file (not a timing assertion)
        if out.exists():
            break
        time.sleep(0.01)
    assert out.read_text().splitlines() == ["--start=30", str((media / name).resolve())]
    assert not (Path(os.getcwd()) / "pwned").exists()


def test_launch_reports_a_missing_executable(tmp_path):
    plan = OpenPlan("player", "Opening", (str(tmp_path / "gone"), "f.mp4"))
    assert launch(plan).startswith(f"Cannot open the video: {tmp_path / 'gone'}")


def test_launch_none_returns_the_message():
    assert launch(OpenPlan("none", "Cannot open the video: x")) == "Cannot open the video: x"
