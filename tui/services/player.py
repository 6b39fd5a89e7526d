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

A source with a document locator (`{"kind": "page", "file", "first_page"}`) opens
in a PDF viewer at its page: zathura (`-P N`), evince (`-i N`), okular (`-p N`),
else the system opener (`xdg-open` / `open`, which cannot be told a page). A
note (`{"kind": "heading", "file", "line"}`) opens in `$EDITOR` (else `$VISUAL`,
else vi) at its line (`EDITOR +LINE FILE`): an "editor" plan runs in this
terminal, so the app suspends itself around `run_in_terminal(plan)`.

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
# PDF viewers that open a document at a page, and the flag that says which (1-based).
PDF_VIEWERS = (("zathura", "-P"), ("evince", "-i"), ("okular", "-p"))
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
    opener), "browser" (open `url` with Python's webbrowser), "viewer" (argv starts
    a PDF viewer or the system opener on a document), "editor" (argv runs an editor
    in this terminal: see `run_in_terminal`) or "none" (nothing can open it;
    `message` says why).
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
    """Decide how to open `source` (a detail or `sources` event dict) at its start time,
    its page or its line.

    `path` overrides PATH for finding executables (tests point it at a temp dir).
    """
    loc = source.get("locator")
    if isinstance(loc, Mapping) and loc.get("kind") == "page":
        return plan_open_document(loc, path=path)
    if isinstance(loc, Mapping) and loc.get("kind") == "heading":
        return plan_open_note(loc)
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


def _local_file(value: Any) -> Path | None:
    """An existing regular file named by an absolute path (a locator's `file`), else None."""
    if not isinstance(value, str) or not value or "\x00" in value:
        return None
    file = Path(value)
    if not file.is_absolute() or not file.is_file():
        return None
    return file


def _page(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def pdf_viewer_command(viewer: str, executable: str, file: Path, page: int | None) -> list[str]:
    """argv to show `file` at `page` (1-based) in zathura, evince or okular."""
    flag = dict(PDF_VIEWERS)[viewer]
    argv = [executable]
    if page is not None:
        argv += [flag, str(page)]
    argv.append(str(file))
    return argv


def plan_open_document(locator: Mapping[str, Any], *, path: str | None = None) -> OpenPlan:
    """A PDF at its first page: a viewer that takes a page, else the system opener."""
    file = _local_file(locator.get("file"))
    shown = str(locator.get("path") or locator.get("file") or "the document")
    if file is None:
        return OpenPlan("none", f"Cannot open {shown}: the file is not there any more")
    page = _page(locator.get("first_page"))
    for viewer, _flag in PDF_VIEWERS:
        exe = shutil.which(viewer, path=path)
        if exe:
            at = f" at page {page}" if page else ""
            return OpenPlan("viewer", f"Opening {file.name} in {viewer}{at}",
                            tuple(pdf_viewer_command(viewer, exe, file, page)))
    for opener in URL_OPENERS:
        exe = shutil.which(opener, path=path)
        if exe:
            at = f" (go to page {page})" if page else ""
            return OpenPlan("viewer", f"Opening {file.name}{at}", (exe, str(file)))
    return OpenPlan("none", f"Cannot open {shown}: no PDF viewer (zathura, evince, okular) or xdg-open found")


def editor_argv(env: Mapping[str, str] | None = None) -> list[str]:
    """$EDITOR (else $VISUAL, else vi) split as a shell would split its words, never run by one."""
    import shlex

    env = os.environ if env is None else env
    for var in ("EDITOR", "VISUAL"):
        value = (env.get(var) or "").strip()
        if value:
            try:
                words = shlex.split(value)
            except ValueError:
                continue
            if words:
                return words
    return ["vi"]


def editor_command(file: Path, line: int | None, *, env: Mapping[str, str] | None = None) -> list[str]:
    """`EDITOR +LINE FILE`: the `+N` convention of vi, vim, nano, emacs, micro and kakoune."""
    argv = editor_argv(env)
    if line is not None and line > 1:
        argv.append(f"+{line}")
    argv.append(str(file))
    return argv


def plan_open_note(locator: Mapping[str, Any], *, env: Mapping[str, str] | None = None) -> OpenPlan:
    """A note in the user's editor at its heading's line (runs in this terminal)."""
    file = _local_file(locator.get("file"))
    shown = str(locator.get("path") or locator.get("file") or "the note")
    if file is None:
        return OpenPlan("none", f"Cannot open {shown}: the file is not there any more")
    line = _page(locator.get("line"))
    argv = editor_command(file, line, env=env)
    at = f" at line {line}" if line else ""
    return OpenPlan("editor", f"Editing {file.name}{at} in {Path(argv[0]).name}", tuple(argv))


def run_in_terminal(plan: OpenPlan) -> str:
    """Run an "editor" plan in the foreground, on this terminal; the caller suspends its
    own screen around it (Textual: `with app.suspend(): run_in_terminal(plan)`)."""
    try:
        subprocess.run(list(plan.argv), check=False)  # noqa: S603 - a list argv, no shell
    except OSError as exc:
        return f"Cannot run the editor: {plan.argv[0]}: {exc.strerror or exc}"
    return plan.message


def launch(plan: OpenPlan) -> str:
    """Carry out `plan` without touching this terminal; return the message to show.

    An "editor" plan needs the terminal: see `run_in_terminal`."""
    if plan.kind == "editor":
        return "Cannot open the note here: the editor needs the terminal (run_in_terminal)"
    if plan.kind in ("player", "url", "viewer"):
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
            what = "the document" if plan.kind == "viewer" else "the video"
            return f"Cannot open {what}: {plan.argv[0]}: {exc.strerror or exc}"
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
