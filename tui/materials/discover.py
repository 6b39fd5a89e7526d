"""Discovery: files and folders to `SourceGroup`s (or `Refusal`s), before any parsing.

Folders are walked depth-first, entries in name order, a folder's files before
its subfolders, so the same tree gives the same sequence. Hidden files and
folders (`.obsidian/`, `.git/`) and files that are not material (thumbnails,
media, partial downloads) are skipped silently; material that cannot be
imported is refused with one line of reason: too large (by stat, before
reading), unreadable, a symlink loop or a broken link, an info.json with no
subtitles beside it, a `.pdf` that is not a PDF.

Kinds come from the content where the name is not enough: `NAME.info.json` with
`NAME.LANG.vtt` (or `.srt`) beside it is one yt-dlp download, a file of any
name starting `%PDF-` or `WEBVTT` is a PDF or subtitles, a `.pdf` without `%PDF-` is
refused, and so is a file whose name holds a control character or a bidi override
(every locator names its file). A `.json` saying `"format": "chrysopedia.kb/1"` (or with the KB's
`techniques`/`creators` lists), or named on its own, is a KB document (kind "kb"):
the KB importer's validator reads it whole and says what is wrong with it. Other
JSON in a folder (a `package.json`) is not material.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from tui.materials.model import Refusal, SourceGroup
from tui.materials.textio import LANG_SUFFIX, MAX_PDF_BYTES, MAX_TEXT_BYTES, is_webvtt, size_problem
from tui.text import CONTROL_CHARS

SUBTITLE_SUFFIXES = {".vtt", ".srt"}
NOTE_SUFFIXES = {".md", ".markdown"}
# Not material, never opened: media, pictures, partial downloads, yt-dlp's side files.
SKIP_SUFFIXES = {
    ".mp4", ".mkv", ".webm", ".mov", ".m4v", ".avi", ".flv", ".m4a", ".mp3", ".opus", ".ogg",
    ".wav", ".aif", ".aiff", ".flac", ".jpg", ".jpeg", ".png", ".webp", ".gif", ".svg", ".bmp",
    ".part", ".ytdl", ".temp", ".tmp", ".description", ".annotations", ".url", ".lnk",
    ".zip", ".7z", ".rar", ".gz", ".als", ".flp", ".logicx", ".ptx", ".mid", ".midi", ".fxp",
    ".nki", ".nkm", ".vstpreset", ".exe", ".dll", ".so", ".dylib", ".dmg", ".iso", ".pyc",
}
KB_LIKE = re.compile(rb'"format"\s*:\s*"chrysopedia\.kb/|"(?:techniques|creators)"\s*:\s*\[')
PLAYLIST_MARKER = re.compile(rb'"_type"\s*:\s*"playlist"')
AUTO_CAPTION_MARKER = re.compile(rb"<\d{2}:\d{2}:\d{2}\.\d{3}>")
PEEK = 4096
JSON_PEEK = 64 * 1024


def discover(paths: Iterable[str | Path]) -> Iterator[SourceGroup | Refusal]:
    """Every group of material under `paths` (files and folders, mixed), in a stable order.

    A file named on its own is grouped with its companions all the same (a
    subtitle file with the info.json beside it); a group is yielded once even
    when two paths reach it.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    yielded: set[Path] = set()
    visited: set[tuple[int, int]] = set()
    for raw in paths:
        path = Path(os.path.abspath(os.path.expanduser(str(raw))))
        try:
            st = path.stat()
        except OSError as exc:
            yield Refusal(path, _stat_problem(path, exc))
            continue
        if os.path.isdir(path):
            items = _walk(path, (st.st_dev, st.st_ino), visited)
        else:
            items = (
                item for item in _groups(path.parent, _listing(path.parent, path), named=path)
                if path in (item.files if isinstance(item, SourceGroup) else (item.path,))
            )
        for item in items:
            key = item.main if isinstance(item, SourceGroup) else item.path
            if key in yielded:
                continue
            yielded.add(key)
            yield _name_problem(item) or item


def _name_problem(item: SourceGroup | Refusal) -> Refusal | None:
    """A file whose path holds a control character or a bidi override is refused (as the KB
    validator refuses one in a locator): locators, exports and the screen name the file,
    and "open" needs its real name, so it cannot be cleaned."""
    if isinstance(item, Refusal) or item.kind == "kb":
        return None
    for path in item.files:
        bad = CONTROL_CHARS.search(str(path))
        if bad:
            return Refusal(item.main, f"its name holds a control character (U+{ord(bad.group()):04X}); "
                                      "rename it to import it")
    return None


def _stat_problem(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.ENOENT:
        return "broken symlink (its target is missing)" if path.is_symlink() else "no such file or folder"
    return f"cannot read: {exc.strerror or exc}"


def _listing(folder: Path, must: Path) -> list[Path]:
    """The visible files of `folder`, `must` among them (even if hidden)."""
    try:
        names = sorted(e.name for e in os.scandir(folder) if not e.name.startswith("."))
    except OSError:
        names = []
    files = [folder / n for n in names if (folder / n).is_file()]
    if must not in files:
        files.append(must)
    return files


def _walk(root: Path, root_key: tuple[int, int], visited: set[tuple[int, int]]) -> Iterator[SourceGroup | Refusal]:
    visited.add(root_key)
    # an explicit stack: a deep tree must not reach Python's recursion limit
    stack: list[tuple[Path, frozenset[tuple[int, int]]]] = [(root, frozenset({root_key}))]
    while stack:
        folder, ancestors = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            yield Refusal(folder, f"cannot read folder: {exc.strerror or exc}")
            continue
        files: list[Path] = []
        subfolders: list[tuple[Path, tuple[int, int]]] = []
        refusals: list[Refusal] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                st = os.stat(entry.path)  # follows links
            except OSError as exc:
                if _is_material_name(entry.name) or exc.errno == errno.ELOOP:
                    refusals.append(Refusal(path, _stat_problem(path, exc)))
                continue
            if os.path.isdir(entry.path):
                key = (st.st_dev, st.st_ino)
                if key in ancestors:
                    refusals.append(Refusal(path, "symlink loop (leads back to a folder above it)"))
                elif key not in visited:  # else the same folder, reached again through a link
                    visited.add(key)
                    subfolders.append((path, key))
            elif os.path.isfile(entry.path):
                files.append(path)
        items: list[SourceGroup | Refusal] = list(_groups(folder, files)) + refusals
        items.sort(key=lambda i: (i.main if isinstance(i, SourceGroup) else i.path).name)
        yield from items
        for path, key in reversed(subfolders):
            stack.append((path, ancestors | {key}))


def _is_material_name(name: str) -> bool:
    low = name.lower()
    return low.endswith((".vtt", ".srt", ".md", ".markdown", ".pdf", ".json"))


def _peek(path: Path, limit: int, what: str, n: int = PEEK) -> bytes | Refusal:
    """The first `n` bytes, after the size check; a Refusal when too large or unreadable."""
    try:
        with open(path, "rb") as f:
            problem = size_problem(os.fstat(f.fileno()).st_size, limit, what)
            if problem:
                return Refusal(path, problem)
            return f.read(n)
    except OSError as exc:
        return Refusal(path, f"cannot read: {exc.strerror or exc}")


def _lang(path: Path) -> str | None:
    stem = path.name[: -len(path.suffix)]
    m = LANG_SUFFIX.search(stem)
    return m.group(0)[1:] if m else None


def _subtitle_rank(path: Path, head: bytes) -> tuple:
    """English first, then manual subtitles over auto-captions, then `en` over `en-GB`, .vtt over .srt."""
    lang = (_lang(path) or "").lower()
    english = 2 if lang == "en" or lang.startswith(("en-", "en_")) else (1 if not lang else 0)
    manual = 0 if AUTO_CAPTION_MARKER.search(head) else 1
    return (english, manual, lang == "en", path.suffix.lower() == ".vtt", path.name)


def _groups(folder: Path, files: list[Path], named: Path | None = None) -> Iterator[SourceGroup | Refusal]:
    """The groups made by the files of one folder (`named`: the file the user named itself)."""
    from tui.materials.video import subtitle_stem

    infos: dict[str, Path] = {}
    subtitles: dict[str, list[tuple[Path, bytes]]] = {}
    for path in files:
        name = path.name
        low = name.lower()
        suffix = path.suffix.lower()
        if low.endswith(".info.json"):
            infos[name[: -len(".info.json")]] = path
        elif suffix in SUBTITLE_SUFFIXES:
            head = _peek(path, MAX_TEXT_BYTES, "subtitles")
            if isinstance(head, Refusal):
                yield head
            elif suffix == ".vtt" and not is_webvtt(head):
                yield Refusal(path, "not a WebVTT file (no WEBVTT header)")
            else:
                subtitles.setdefault(subtitle_stem(path), []).append((path, head))
        elif suffix in NOTE_SUFFIXES:
            head = _peek(path, MAX_TEXT_BYTES, "notes", 0)
            yield head if isinstance(head, Refusal) else SourceGroup("note", path, (path,))
        elif suffix == ".pdf":
            head = _peek(path, MAX_PDF_BYTES, "PDFs", 1024)
            if isinstance(head, Refusal):
                yield head
            elif b"%PDF-" in head:
                yield SourceGroup("pdf", path, (path,))
            else:
                yield Refusal(path, "not a PDF (no %PDF- header)")
        elif suffix == ".json":
            if low.endswith(".live_chat.json"):
                continue
            head = _peek(path, MAX_TEXT_BYTES, "KB documents", JSON_PEEK)
            if isinstance(head, Refusal):
                yield head
            elif path == named or KB_LIKE.search(head):
                # A KB document, or one meant to be (a named file, or one with the KB's keys):
                # the KB importer's validator says what is wrong with it, as it always has.
                yield SourceGroup("kb", path, (path,))
            # else: some other program's JSON in the folder (package.json ...): not material
        elif suffix in SKIP_SUFFIXES:
            continue
        else:  # an unknown name: the first bytes may still say what it is
            head = _peek(path, MAX_PDF_BYTES, "PDFs", 8)
            if isinstance(head, Refusal):
                continue
            if head.startswith(b"%PDF-"):
                yield SourceGroup("pdf", path, (path,))
            elif is_webvtt(head):
                subtitles.setdefault(path.name, []).append((path, head))
    for name in sorted(set(infos) | set(subtitles)):
        candidates = subtitles.get(name)
        info = infos.get(name)
        if candidates:
            best = max(candidates, key=lambda c: _subtitle_rank(*c))[0]
            if info is not None:
                problem = _peek(info, MAX_TEXT_BYTES, "an info.json", 0)
                if isinstance(problem, Refusal):
                    yield problem
                else:
                    yield SourceGroup("ytdlp", best, (best, info))
            else:
                yield SourceGroup("subtitles", best, (best,))
        elif info is not None:
            head = _peek(info, MAX_TEXT_BYTES, "an info.json", JSON_PEEK)
            if isinstance(head, Refusal):
                yield head
            elif PLAYLIST_MARKER.search(head):
                continue  # a playlist's own info.json: its videos have theirs
            else:
                yield Refusal(info, "yt-dlp info.json without subtitles beside it (no NAME.LANG.vtt or .srt; "
                              "download them with --write-subs --write-auto-subs)")
