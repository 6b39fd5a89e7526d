"""Open a source's video at its start time: a local player for a local file, else the URL.

`plan_open(source, media_dir=...)` decides what would happen and returns an
`OpenPlan` (argv or URL, plus a one-line message for the status bar);
`launch(plan)` carries it out. Tests check the plan without starting anything.

- A local file (`video_filename`) is looked up under the media dir (by default
  `Settings.data_dir / "media"`); a name that resolves outside it (`../x`, an
  absolute path, a symlink out) is not opened. The argv always carries an
  absolute path, so a file name starting with `-` is never read as an option.
- Players, in order: mpv (`mpv --start=SECONDS FILE`), then VLC
  (`vlc --start-time=SECONDS FILE`), found with `shutil.which` on PATH.
- Else an `http(s)` URL (`video_url`) with the start time added (`?t=` for
  YouTube, `#t=` media fragment otherwise), opened with `xdg-open` (or macOS
  `open`), else Python's `webbrowser` when it has a graphical browser (a
  console browser would take over the terminal the TUI is running in).
- Else a message saying why nothing can open it.

Nothing passes through a shell: every command is a list of arguments.
No Textual here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import webbrowser
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tui.services.sources import format_timestamp, start_seconds

PLAYERS = ("mpv", "vlc")
URL_OPENERS = ("xdg-open", "open")
YOUTUBE_HOSTS = ("youtube.com", "www.youtube.com", "m.youtube.com", "youtu.be")


def default_media_dir(settings: Any) -> Path:
    """Where local video files live: `settings.media_dir` (default `<data_dir>/media`)."""
    media = getattr(settings, "media_dir", None)
    return Path(media) if media else Path(settings.data_dir) / "media"


@dataclass(frozen=True)
class OpenPlan:
    """What opening a source would do.

    kind: "player" (argv starts a local player), "url" (argv starts a URL
    opener), "browser" (open `url` with Python's webbrowser) or "none"
    (nothing can open it; `message` says why).
    """

    kind: str
    message: str
    argv: tuple[str, ...] = ()
    url: str | None = None

    @property
    def ok(self) -> bool:
        return self.kind != "none"


def _seconds_arg(seconds: float) -> str:
    """95.0 -> "95", 95.5 -> "95.5" (both players take fractional seconds)."""
    return str(int(seconds)) if seconds == int(seconds) else f"{seconds:.3f}".rstrip("0")


def find_player(path: str | None = None) -> tuple[str, str] | None:
    """(name, executable) of the first player on PATH (or `path`), else None."""
    for name in PLAYERS:
        exe = shutil.which(name, path=path)
        if exe:
            return name, exe
    return None


def player_command(player: str, executable: str, file: Path, start: float | None) -> list[str]:
    """argv to play `file` from `start` seconds with mpv or vlc."""
    argv = [executable]
    if start is not None and start > 0:
        flag = "--start" if player == "mpv" else "--start-time"
        argv.append(f"{flag}={_seconds_arg(start)}")
    argv.append(str(file))
    return argv


def resolve_media_file(filename: str | None, media_dir: Path | None) -> Path | None:
    """The existing local file for `filename` under `media_dir`, or None.

    The name comes from the knowledge base, which is data: whatever it says
    (`../x`, an absolute path, a symlink out), only files inside the media dir open.
    """
    if not filename or "\x00" in filename or media_dir is None:
        return None
    base = Path(media_dir).expanduser().resolve()
    candidate = (base / Path(filename)).resolve()
    if not candidate.is_relative_to(base):
        return None
    return candidate if candidate.is_file() else None


def url_at_time(url: str, start: float | None) -> str:
    """`url` pointing at `start` seconds: `t=` for YouTube, a `#t=` media fragment otherwise."""
    if start is None or start <= 0:
        return url
    parts = urlsplit(url)
    seconds = str(int(start))
    if (parts.hostname or "").lower() in YOUTUBE_HOSTS:
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "t"]
        query.append(("t", seconds))
        return urlunsplit(parts._replace(query=urlencode(query)))
    if parts.fragment:  # the URL already points somewhere inside the page
        return url
    return urlunsplit(parts._replace(fragment=f"t={seconds}"))


def safe_url(url: Any) -> str | None:
    """The URL if it is a plain http(s) URL with a host, else None."""
    if not isinstance(url, str):
        return None
    url = url.strip()
    if not url or any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url


def _graphical_browser() -> bool:
    """True when webbrowser would start a browser outside this terminal."""
    try:
        controller = webbrowser.get()
    except webbrowser.Error:
        return False
    # Console browsers (lynx, w3m, www-browser) are GenericBrowser and run in the foreground.
    return type(controller) is not webbrowser.GenericBrowser


def plan_open(
    source: Mapping[str, Any],
    *,
    media_dir: Path | None,
    path: str | None = None,
    allow_webbrowser: bool = True,
) -> OpenPlan:
    """Decide how to open `source` (a detail or `sources` event dict) at its start time.

    `path` overrides PATH for finding executables (tests point it at a temp dir).
    """
    start = start_seconds(source.get("start_time"))
    stamp = format_timestamp(start) or "the start"
    filename = source.get("video_filename")
    local = resolve_media_file(filename, media_dir)
    problems: list[str] = []
    if local is not None:
        found = find_player(path)
        if found is not None:
            name, exe = found
            return OpenPlan(
                "player",
                f"Opening {local.name} in {name} at {stamp}",
                tuple(player_command(name, exe, local, start)),
            )
        problems.append(f"no video player (mpv or vlc) found for {local}")
    elif filename:
        where = f" in {media_dir}" if media_dir is not None else ""
        problems.append(f"{filename} not found{where}")

    url = safe_url(source.get("video_url"))
    if url is not None:
        target = url_at_time(url, start)
        for opener in URL_OPENERS:
            exe = shutil.which(opener, path=path)
            if exe:
                return OpenPlan("url", f"Opening {target}", (exe, target), target)
        if allow_webbrowser and _graphical_browser():
            return OpenPlan("browser", f"Opening {target}", (), target)
        problems.append(f"no browser to open {target}")
    elif source.get("video_url"):
        problems.append("the video URL is not an http(s) URL")

    if not filename and not source.get("video_url"):
        problems.append("this source has no video file or URL")
    return OpenPlan("none", "Cannot open the video: " + "; ".join(problems))


def launch(plan: OpenPlan) -> str:
    """Carry out `plan` without touching this terminal; return the message to show."""
    if plan.kind in ("player", "url"):
        try:
            proc = subprocess.Popen(  # noqa: S603 - a list argv, no shell
                list(plan.argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
                env=os.environ.copy(),
            )
        except OSError as exc:
            return f"Cannot open the video: {plan.argv[0]}: {exc.strerror or exc}"
        # Reap the child when it exits, so no zombie lingers while the app runs.
        threading.Thread(target=proc.wait, daemon=True).start()
        return plan.message
    if plan.kind == "browser" and plan.url:
        try:
            opened = webbrowser.open(plan.url)
        except webbrowser.Error as exc:
            return f"Cannot open the video: {exc}"
        return plan.message if opened else f"Cannot open the video: no browser for {plan.url}"
    return plan.message
